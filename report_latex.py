"""REPORT.tex and REPORT.pdf: the report's blocks (the same list REPORT.md is written from) as a
LaTeX document, and its compilation where a TeX installation is found.

A report is a list of blocks: `Table`s (rendered by tables.py) and lines of text with the few
Markdown marks REPORT.md uses (headings, bullets, a fenced block, a figure `![caption](file)`,
`>` for a place the student writes in, **bold**, *emphasis*, `code`, [links](#x)). Each becomes
its LaTeX counterpart here; a figure is included from its PDF (the vector copy beside the PNG).
Standard packages only: graphicx, booktabs, hyperref, float, geometry.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from tables import Table, latex_escape, to_latex, to_markdown

Block = str | Table

PREAMBLE = r"""\documentclass[11pt,a4paper]{article}
\usepackage[T1]{fontenc}
\usepackage[utf8]{inputenc}
\usepackage[margin=2cm]{geometry}
\usepackage{graphicx}
\usepackage{booktabs}
\usepackage{float}
\usepackage[hidelinks]{hyperref}
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.5em}
\setlength{\emergencystretch}{3em}
\begin{document}
"""
# A place where the handout asks for the student's own words.
YOURS_BOX = (r"\par\noindent\fbox{\parbox{\dimexpr\linewidth-2\fboxsep-2\fboxrule}{"
             r"\textbf{Your words.} {text}\par\vspace{4em}}}\par")
IMAGE = re.compile(r"^!\[(?P<caption>[^\]]*)\]\((?P<file>[^)]+)\)$")
HEADINGS = {1: r"\section*{{{}}}", 2: r"\section{{{}}}", 3: r"\subsection{{{}}}",
            4: r"\subsubsection*{{{}}}"}


def to_markdown_text(blocks: Sequence[Block]) -> str:
    """REPORT.md: the lines as they are, each table in Markdown."""
    out = []
    for block in blocks:
        out.append(to_markdown(block).rstrip("\n") if isinstance(block, Table) else block)
    return "\n".join(out) + "\n"


def figure_pdf(file: str) -> str:
    """The PDF a figure is included from: the vector copy beside its PNG."""
    return str(Path(file).with_suffix(".pdf"))


def included_figures(tex: str) -> list[str]:
    return re.findall(r"\\includegraphics(?:\[[^\]]*\])?\{([^}]+)\}", tex)


def to_latex_text(blocks: Sequence[Block]) -> str:
    """REPORT.tex: the same blocks, in the same order, as a LaTeX document."""
    out, paragraph, items, verbatim = [PREAMBLE], [], [], None

    def flush():
        if paragraph:
            out.append(latex_escape(" ".join(paragraph)) + "\n")
            paragraph.clear()
        if items:
            out.append("\\begin{itemize}\n" + "".join(
                f"\\item {latex_escape(item)}\n" for item in items) + "\\end{itemize}\n")
            items.clear()

    for block in blocks:
        if isinstance(block, Table):
            flush()
            out.append(to_latex(block))
            continue
        for line in block.split("\n"):
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
            elif heading:
                flush()
                out.append(HEADINGS[len(heading.group(1))].format(latex_escape(heading.group(2)))
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
