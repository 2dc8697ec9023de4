"""Rendering: a `Table` (reporting/table.py) written as Markdown (`to_markdown`) and as LaTeX
(`to_latex`); the report, a list of blocks (lines of text and `Table`s), written as REPORT.md
(`to_markdown_text`) and as REPORT.tex (`to_latex_text`); and REPORT.tex compiled to
REPORT.pdf where a TeX installation is found (`compile_pdf`). In a cell, `code` spans become
monospace in LaTeX, **bold** and *emphasis* bold and italic; every other character that LaTeX
treats specially is escaped.

The report's lines use the few Markdown marks REPORT.md needs (headings, bullets, a fenced
block, a figure `![caption](file)`, `>` for a place the student writes in, **bold**,
*emphasis*, `code`, [links](#x)); each becomes its LaTeX counterpart, a figure included from
its PDF (the vector copy beside the PNG). Standard packages only (texlive-latex-recommended
and lmodern): lmodern (vector fonts), graphicx, array, booktabs, longtable, hyperref, float,
geometry, pdflscape (a table too wide for a portrait line goes on a landscape page).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reporting.table import Table, cell, column_widths, is_wide, table_keep

LATEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "_": r"\_", "%": r"\%",
                 "#": r"\#", "&": r"\&", "$": r"\$", "~": r"\textasciitilde{}",
                 "^": r"\textasciicircum{}"}
# Characters pdflatex's default input encoding does not know, as math.
LATEX_SYMBOLS = {"±": r"\ensuremath{\pm}", "×": r"\ensuremath{\times}",
                 "≥": r"\ensuremath{\geq}", "≤": r"\ensuremath{\leq}", "−": "-",
                 "→": r"\ensuremath{\rightarrow}", "✓": "yes", "✗": "no", "…": r"\ldots{}",
                 "–": "--", "—": "---", "≈": r"\ensuremath{\approx}", "Δ": r"\ensuremath{\Delta}",
                 "√": r"\ensuremath{\surd}"}


# --------------------------------------------------------------------------- Markdown
def to_markdown(table: Table, *, title_level: int = 0) -> str:
    """A GitHub Markdown table; the title as bold text (or a heading of `title_level`)."""
    def md(text: str) -> str:
        return cell(text).replace("|", r"\|").replace("\n", " ")

    lines = []
    if table.title:
        lines += [("#" * title_level + " " if title_level else "**") + table.title
                  + ("" if title_level else "**"), ""]
    lines.append("| " + " | ".join(md(h) for h in table.header) + " |")
    lines.append("|" + "|".join("---:" if right else "---" for right in table.numeric()) + "|")
    lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in table.rows]
    if table.notes:
        lines += [""] + [note for note in table.notes]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- LaTeX
def latex_escape(text: str) -> str:
    """`text` as LaTeX prints it literally, with the few Markdown marks the report's text uses:
    `code` in monospace, **bold**, *emphasis*, and [a link](target) as its text. Outside code,
    a quote that opens a word opens it (‘ or “, never ’), and the minus of a number is a
    minus that never ends a line ("[-0.0721, -0.0504]" stays whole)."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unmatched backtick is a character
        parts = [str(text)]
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            breakable = _escape(part).replace("/", "/\\allowbreak{}").replace(
                r"\_", r"\_\allowbreak{}")  # a long path may break after / and _
            out.append(rf"\texttt{{{breakable}}}")
            continue
        part = LINK.sub(r"\1", part)
        for pattern, command in MARKS:
            part = pattern.sub(lambda m, c=command: f"\x00{c}\x01{m.group(1)}\x02", part)
        out.append(_escape(part, prose=True).replace("\x00", "\\").replace("\x01", "{")
                   .replace("\x02", "}"))
    return "".join(out)


OPENS = " \t([{\x01"  # a quote after one of these (or at the start) opens


def _escape(text: str, prose: bool = False) -> str:
    # "--" would print as a dash (a ligature): a flag like --data-dir keeps its two hyphens
    out = []
    for i, ch in enumerate(text):
        before, after = text[i - 1:i], text[i + 1:i + 3]
        if prose and ch in "'\"" and (not before or before in OPENS):
            out.append("`" if ch == "'" else "``")  # an opening quote
        elif prose and ch == '"':
            out.append("''")
        elif prose and ch == "-" and not (before and (before.isalnum() or before in ".-")) and (
                after[:1].isdigit() or (after[:1] == "." and after[1:2].isdigit())):
            out.append(r"\ensuremath{-}")  # a number's minus: no line break after it
        else:
            out.append(LATEX_SPECIAL.get(ch) or LATEX_SYMBOLS.get(ch)
                       or ("-{}" if ch == "-" and text[i + 1:i + 2] == "-" else ch))
    return "".join(out)


LINK = re.compile(r"\[([^\]]+)\]\([^)\s]+\)")
MARKS = [(re.compile(r"\*\*(\S(?:.*?\S)?)\*\*"), "textbf"),
         (re.compile(r"(?<![\w*])\*(\S(?:.*?\S)?)\*(?![\w*])"), "emph")]


def to_latex(table: Table, *, label: str = "", page: bool = True) -> str:
    r"""A booktabs `longtable` in \small type (it may break across pages; its header repeats):
    numeric columns right-aligned, text columns left; when the table would be wider than the
    line, its columns become paragraph columns that wrap, sized by `column_widths`: the text
    keeps its size, nothing is scaled down. A wide table (`is_wide`) is set on landscape
    pages (pdflscape's `landscape`), unless `page` is False: the caller places it there."""
    numeric = table.numeric()
    widths = column_widths(table)
    if widths is None:
        spec = "".join("r" if right else "l" for right in numeric)
    else:
        spec = "".join((r">{\raggedleft\arraybackslash}" if right else
                        r">{\raggedright\arraybackslash}") + f"p{{{w:.3f}\\linewidth}}"
                       for right, w in zip(numeric, widths))
    # a short table is kept on one page; a long one may break after its first rows
    keep = table_keep(table)
    lines = [rf"\needspace{{{keep}\baselineskip}}",
             r"\begingroup\small\setlength{\LTpre}{0.5em}\setlength{\LTpost}{0.5em}",
             rf"\begin{{longtable}}{{@{{}}{spec}@{{}}}}"]
    if table.title:
        lines.append(rf"\caption{{{latex_escape(table.title)}}}"
                     + (rf"\label{{{label}}}" if label else "") + r"\\")
    header = " & ".join(latex_escape(cell(h)) for h in table.header) + r" \\"
    lines += [r"\toprule", header, r"\midrule", r"\endhead"]
    lines += [" & ".join(latex_escape(cell(c)) for c in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{longtable}"]
    if table.notes:
        lines += [latex_escape(note) + r"\par" for note in table.notes]
    lines.append(r"\endgroup")
    if page and is_wide(table):
        lines = [LANDSCAPE[True]] + lines + [LANDSCAPE[False]]
    return "\n".join(lines) + "\n"


LANDSCAPE = {True: r"\begin{landscape}", False: r"\end{landscape}"}  # opening, closing


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
% Landscape pages for tables too wide for a portrait line (shown upright in a PDF viewer).
\IfFileExists{pdflscape.sty}{\usepackage{pdflscape}}{\usepackage{lscape}}
\usepackage{float}
\usepackage[hidelinks]{hyperref}
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.5em}
\setlength{\emergencystretch}{3em}
\tolerance=1000  % a line of long `code` may stretch its spaces rather than run over
\setlength{\tabcolsep}{4pt}
\setlength{\LTcapwidth}{\linewidth}  % a table's title as wide as the line
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
PAGE_BREAK = "<!-- new page -->"  # in REPORT.md a comment; in REPORT.tex a new page
IMAGE = re.compile(r"^!\[(?P<caption>[^\]]*)\]\((?P<file>[^)]+)\)$")
HEADINGS = {1: r"\section*{{{}}}", 2: r"\section{{{}}}", 3: r"\subsection{{{}}}",
            4: r"\subsubsection*{{{}}}"}


def to_markdown_text(blocks: Sequence[Block], title: TitleBlock | None = None) -> str:
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

    turned = False  # on a landscape page: wide tables in a row share it, with their heading

    def turn(landscape: bool):
        nonlocal turned
        if landscape != turned:
            out.append(LANDSCAPE[landscape] + "\n")
            turned = landscape

    flat = _lines(blocks)
    for i, line in enumerate(flat):
        if isinstance(line, Table):
            flush()
            turn(is_wide(line))
            out.append(to_latex(line, page=False))
            continue
        if line.strip() and verbatim is None:  # text ends a landscape page, but a heading
            following = _next(flat, i) if re.match(r"^#{1,4} ", line) else None
            wide = isinstance(following, Table) and is_wide(following)  # goes with its table
            if wide != turned:
                flush()
                turn(wide)
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
        elif line.strip() == PAGE_BREAK:
            flush()
            out.append("\\clearpage\n")
        elif heading:
            flush()
            following = _next(flat, i)
            room = ("0.45\\textheight" if isinstance(following, str) and IMAGE.match(following)
                    else f"{table_keep(following) + 4}\\baselineskip"
                    if isinstance(following, Table) else "8\\baselineskip")
            out.append(f"\\needspace{{{room}}}\n"
                       + HEADINGS[len(heading.group(1))].format(latex_escape(heading.group(2)))
                       + "\n")
        elif image:
            if paragraph == [f"**{image['caption']}**"]:  # the caption, as the figure's
                paragraph.clear()
            flush()
            out.append("\\begin{figure}[H]\n\\centering\n"
                       f"\\includegraphics[width=0.8\\linewidth,height=0.42\\textheight,"
                       "keepaspectratio]"
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
    turn(False)
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
                                  check=False,
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
