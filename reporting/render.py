"""REPORT.tex and REPORT.pdf: the report's blocks (the same list REPORT.md is written from) as a
LaTeX document, and its compilation where a TeX installation is found.

A report is a list of blocks: `Table`s (rendered by tables.py) and lines of text with the few
Markdown marks REPORT.md uses (headings, bullets, a fenced block, a figure `![caption](file)`,
`>` for a place the student writes in, **bold**, *emphasis*, `code`, [links](#x)). Each becomes
its LaTeX counterpart here; a figure is included from its PDF (the vector copy beside the PNG).
Standard packages only (texlive-latex-recommended and lmodern): lmodern (vector fonts),
graphicx, array, booktabs, longtable, hyperref, float, geometry.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tables import Table, latex_escape, to_latex, to_markdown

Block = str | Table

PREAMBLE = r"""\documentclass[11pt,a4paper]{article}
% Vector fonts: Latin Modern with T1 where it is installed, else the default OT1 Computer
% Modern (T1 without lmodern or cm-super falls back to bitmap fonts).
\IfFileExists{lmodern.sty}{\usepackage[T1]{fontenc}\usepackage{lmodern}}{}
\usepackage[utf8]{inputenc}
\usepackage[margin=2cm]{geometry}
\usepackage{graphicx}
\usepackage{array}
\usepackage{booktabs}
\usepackage{longtable}
\usepackage{float}
\usepackage[hidelinks]{hyperref}
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.5em}
\setlength{\emergencystretch}{3em}
% \needspace{h}: start a new page unless h of it is left (what the needspace package does),
% so that a heading stays with its figure or table and a short table is not split.
\makeatletter
\providecommand{\needspace}[1]{\par\penalty-100\begingroup\setlength{\dimen@}{#1}%
  \dimen@ii\pagegoal\advance\dimen@ii-\pagetotal
  \ifdim\dimen@>\dimen@ii\ifdim\dimen@ii>\z@\vfil\fi\penalty-\@M\fi\endgroup}
\makeatother
"""
# A place where the handout asks for the student's own words.
YOURS_BOX = (r"\par\noindent\fbox{\parbox{\dimexpr\linewidth-2\fboxsep-2\fboxrule}{"
             r"\textbf{Your words.} {text}\par\vspace{4em}}}\par")
IMAGE = re.compile(r"^!\[(?P<caption>[^\]]*)\]\((?P<file>[^)]+)\)$")
HEADINGS = {1: r"\section*{{{}}}", 2: r"\section{{{}}}", 3: r"\subsection{{{}}}",
            4: r"\subsubsection*{{{}}}"}


def to_markdown_text(blocks: Sequence[Block], title: "TitleBlock | None" = None) -> str:
    """REPORT.md: the lines as they are, each table in Markdown; `title`'s fields under the
    first level-1 heading."""
    out, titled = [], title is None
    for block in blocks:
        if isinstance(block, Table):
            out.append(to_markdown(block).rstrip("\n"))
            continue
        if not titled and re.match(r"^# ", block):
            first, _, rest = block.partition("\n")
            block = "\n".join([first, "", title.markdown()] + ([rest] if rest else []))
            titled = True
        out.append(block)
    return "\n".join(out) + "\n"


def figure_pdf(file: str) -> str:
    """The PDF a figure is included from: the vector copy beside its PNG."""
    return str(Path(file).with_suffix(".pdf"))


def included_figures(tex: str) -> list[str]:
    return re.findall(r"\\includegraphics(?:\[[^\]]*\])?\{([^}]+)\}", tex)


@dataclass(frozen=True)
class TitleBlock:
    """What the title page names: the student fills them (report.py --author, --student-id,
    --date); an empty field prints as a visible placeholder."""
    author: str = ""
    student_id: str = ""
    date: str = ""

    def fields(self) -> list[tuple[str, str]]:
        return [("Name", self.author or "[your name]"),
                ("Student number", self.student_id or "[your student number]"),
                ("Date", self.date or "[date]")]

    def markdown(self) -> str:
        """The same fields as one line of REPORT.md."""
        return " · ".join(f"**{name}:** {value}" for name, value in self.fields())


def _lines(blocks: Sequence[Block]) -> list[str | Table]:
    """The blocks as one list: each line of text, each table."""
    flat: list[str | Table] = []
    for block in blocks:
        if isinstance(block, Table):
            flat.append(block)
        else:
            flat += block.split("\n")
    return flat


def _next(flat: list, i: int) -> str | Table | None:
    """The first table or non-blank line after position i that is not a heading."""
    return next((x for x in flat[i + 1:] if isinstance(x, Table) or
                 (x.strip() and not re.match(r"^#{1,4} ", x))), None)


def to_latex_text(blocks: Sequence[Block], title: TitleBlock | None = None) -> str:
    """REPORT.tex: the same blocks, in the same order, as a LaTeX document. The first level-1
    heading is the title, set with `title`'s fields under it; a heading is kept on one page
    with the figure or the start of the table or text that follows it."""
    title = title or TitleBlock()
    out, paragraph, items, verbatim = [PREAMBLE, "\\begin{document}\n"], [], [], None
    titled = False

    def flush():
        if paragraph:
            out.append(latex_escape(" ".join(paragraph)) + "\n")
            paragraph.clear()
        if items:
            out.append("\\begin{itemize}\n" + "".join(
                f"\\item {latex_escape(item)}\n" for item in items) + "\\end{itemize}\n")
            items.clear()

    flat = _lines(blocks)
    for i, line in enumerate(flat):
        if isinstance(line, Table):
            flush()
            out.append(to_latex(line))
            continue
        if verbatim is not None:
            if line.startswith("```"):
                out.append("\\begin{verbatim}\n" + "\n".join(verbatim) + "\n\\end{verbatim}\n")
                verbatim = None
            else:
                verbatim.append(line)
            continue
        heading = re.match(r"^(#{1,4}) (.*)$", line)
        image = IMAGE.match(line)
        if line.startswith("```"):
            flush()
            verbatim = []
        elif heading and len(heading.group(1)) == 1 and not titled:
            flush()
            titled = True
            out.append(f"\\title{{{latex_escape(heading.group(2))}}}\n\\author{{"
                       + r" \\ ".join(latex_escape(f"{name}: {value}")
                                       for name, value in title.fields()[:2])
                       + f"}}\n\\date{{{latex_escape(title.fields()[2][1])}}}\n\\maketitle\n")
        elif heading:
            flush()
            following = _next(flat, i)
            room = ("0.45\\textheight" if isinstance(following, str) and IMAGE.match(following)
                    else "8\\baselineskip")
            out.append(f"\\needspace{{{room}}}\n"
                       + HEADINGS[len(heading.group(1))].format(latex_escape(heading.group(2)))
                       + "\n")
        elif image:
            if paragraph == [f"**{image['caption']}**"]:  # the caption, as the figure's
                paragraph.clear()
            flush()
            out.append("\\begin{figure}[H]\n\\centering\n"
                       f"\\includegraphics[width=0.8\\linewidth]"
                       f"{{{figure_pdf(image['file'])}}}\n"
                       f"\\caption{{{latex_escape(image['caption'])}}}\n\\end{{figure}}\n")
        elif line.startswith("> "):
            flush()
            out.append(YOURS_BOX.replace("{text}", latex_escape(line[2:])) + "\n")
        elif line.startswith("|"):
            raise ValueError(f"a Markdown table among the report's lines: {line[:60]}")
        elif line.startswith("- "):
            if paragraph:
                flush()
            items.append(line[2:])
        elif not line.strip():
            flush()
        elif items:
            items[-1] += " " + line.strip()
        else:
            paragraph.append(line.strip())
    flush()
    out.append("\\end{document}\n")
    return "\n".join(out)


# --------------------------------------------------------------------------- compiling
HOW_TO_COMPILE = ("no TeX installation found (latexmk or pdflatex), so REPORT.pdf was not "
                  "made: upload {folder}/ to Overleaf and compile REPORT.tex there, or install "
                  "TeX (Debian/Ubuntu: apt install texlive-latex-recommended latexmk; macOS: "
                  "MacTeX; Windows: MiKTeX) and run report.py again")


# The same .tex, the same PDF bytes: pdfTeX dates the file from SOURCE_DATE_EPOCH.
REPRODUCIBLE = {**os.environ, "SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1"}


def tex_command() -> list[str] | None:
    """The command that compiles a .tex in its folder, or None when no TeX is on PATH."""
    if shutil.which("latexmk"):
        return ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-quiet"]
    if shutil.which("pdflatex"):
        return ["pdflatex", "-interaction=nonstopmode", "-halt-on-error"]
    return None


def compile_pdf(tex: Path, timeout_s: float = 300) -> tuple[Path | None, str]:
    """Compile `tex` to a PDF beside it (quietly; the log kept beside it as <name>.log).
    Returns (the PDF or None, one line saying what happened)."""
    tex = Path(tex)
    command = tex_command()
    if command is None:
        return None, HOW_TO_COMPILE.format(folder=tex.parent)
    log = tex.with_suffix(".log")
    tex.with_suffix(".pdf").unlink(missing_ok=True)  # never an older PDF beside this .tex
    runs = 1 if command[0] == "latexmk" else 2  # pdflatex: twice, for the references
    try:
        for _ in range(runs):
            done = subprocess.run([*command, tex.name], cwd=tex.parent, capture_output=True,
                                  text=True, timeout=timeout_s, stdin=subprocess.DEVNULL,
                                  env=REPRODUCIBLE)
            if done.returncode != 0:
                break
    except subprocess.TimeoutExpired:
        return None, f"compiling {tex} took over {timeout_s:.0f} s and was stopped; see {log}"
    pdf = tex.with_suffix(".pdf")
    if done.returncode != 0 or not pdf.is_file():
        if not log.is_file():
            log.write_text(done.stdout + done.stderr)
        return None, f"could not compile {tex} to a PDF; see {log}"
    for suffix in (".aux", ".out", ".fls", ".fdb_latexmk"):  # keep the folder to what matters
        tex.with_suffix(suffix).unlink(missing_ok=True)
    return pdf, f"compiled {pdf} ({command[0]}; log: {log})"
