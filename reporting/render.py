"""Rendering: a `Table` (title, header, rows of cells, notes) built once where its numbers
are known, written as Markdown (`to_markdown`) and as LaTeX (`to_latex`); the report, a list
of blocks (lines of text and `Table`s), written as REPORT.md (`to_markdown_text`) and as
REPORT.tex (`to_latex_text`); and REPORT.tex compiled to REPORT.pdf where a TeX installation
is found (`compile_pdf`).

Cells are strings, already formatted (the renderers never format a number, so Markdown and
LaTeX cannot differ); None is shown as "-". A column whose cells all read as numbers is
right-aligned. In a cell, `code` spans become monospace in LaTeX, **bold** and *emphasis*
bold and italic; every other character that LaTeX treats specially is escaped.

The report's lines use the few Markdown marks REPORT.md needs (headings, bullets, a fenced
block, a figure `![caption](file)`, `>` for a place the student writes in, **bold**,
*emphasis*, `code`, [links](#x)); each becomes its LaTeX counterpart, a figure included from
its PDF (the vector copy beside the PNG). Standard packages only (texlive-latex-recommended
and lmodern): lmodern (vector fonts), graphicx, array, booktabs, longtable, hyperref, float,
geometry, pdflscape (a table too wide for a portrait line goes on a landscape page).
"""
from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

NUMBER = re.compile(r"^[-+−]?[\d.,]+(e[-+]?\d+)?( ?± ?[\d.,]+)?\s*%?( \(\d+\))?$")
LATEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "_": r"\_", "%": r"\%",
                 "#": r"\#", "&": r"\&", "$": r"\$", "~": r"\textasciitilde{}",
                 "^": r"\textasciicircum{}"}
# Characters pdflatex's default input encoding does not know, as math.
LATEX_SYMBOLS = {"±": r"\ensuremath{\pm}", "×": r"\ensuremath{\times}",
                 "≥": r"\ensuremath{\geq}", "≤": r"\ensuremath{\leq}", "−": "-",
                 "→": r"\ensuremath{\rightarrow}", "✓": "yes", "✗": "no", "…": r"\ldots{}",
                 "–": "--", "—": "---", "≈": r"\ensuremath{\approx}", "Δ": r"\ensuremath{\Delta}",
                 "√": r"\ensuremath{\surd}"}


@dataclass
class Table:
    """header: column names; rows: one list of cells (str or None) per row, as long as the
    header; notes: sentences printed under the table."""
    header: list[str]
    rows: list[list[str | None]]
    title: str = ""
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        for row in self.rows:
            if len(row) != len(self.header):
                raise ValueError(f"a row of {len(row)} cells under {len(self.header)} "
                                 f"columns: {row}")

    def column(self, name: str) -> list[str | None]:
        i = self.header.index(name)
        return [row[i] for row in self.rows]

    def numeric(self) -> list[bool]:
        """Which columns hold numbers only, '-' (no value) aside (right-aligned)."""
        return [bool(cells) and all(not c or c == "-" or NUMBER.match(c) for c in cells)
                and any(c and c != "-" for c in cells)
                for cells in zip(*self.rows)] if self.rows else [False] * len(self.header)


def cell(value: str | None) -> str:
    return "-" if value is None else str(value)


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


# A table's columns are sized by the width of their text in its \small type, 10 pt Latin
# Modern (the widths of its characters, in points; `code` in monospace); the lines they go on,
# A4 with 2 cm margins, less nothing: the table's outer column sides are trimmed (@{}).
LINE_PT = 483.7  # a portrait page's line, 17 cm
LANDSCAPE_PT = 731.3  # a landscape page's line, 25.7 cm
GAP_PT = 8.0  # between two columns: 2 \tabcolsep
TALL = 6  # a table whose cells would wrap over more lines on a portrait page goes landscape
LETTER_PT = dict(zip("abcdefghijklmnopqrstuvwxyz", (
    5.0, 5.56, 4.44, 5.56, 4.44, 3.06, 5.0, 5.56, 2.78, 3.06, 5.28, 2.78, 8.33, 5.56, 5.0,
    5.56, 5.28, 3.92, 3.94, 3.89, 5.56, 5.28, 7.22, 5.28, 5.28, 4.44)))
OTHER_PT = {**dict.fromkeys("0123456789/", 5.0), **dict.fromkeys(".,:;[]!'`|", 2.78),
            **dict.fromkeys("()", 3.89), " ": 3.33, "-": 3.33, "%": 8.33, "*": 5.0,
            **dict.fromkeys("IJ", 4.5), **dict.fromkeys("MW", 9.5)}
CAPITAL_PT, SYMBOL_PT, MONO_PT = 7.3, 7.78, 5.25  # other capitals; +, =, ±, ≥, Δ, ...


def _pieces(text: str) -> list[tuple[float, bool]]:
    """The pieces of a cell (Markdown marks and all) a line may break between, each as (its
    width in the table's type, whether a space comes before it): its words, and in `code`
    the parts ending in / or _ (where REPORT.tex lets a path break)."""
    pieces, width, space, mono = [], 0.0, False, False
    for ch in text.replace("**", ""):
        if ch == "`":
            mono = not mono
        elif ch.isspace():
            if width:
                pieces.append((width, space))
                width = 0.0
            space = True
        else:
            width += 1.02 * (MONO_PT if mono else LETTER_PT.get(ch) or OTHER_PT.get(ch) or (
                CAPITAL_PT if ch.isupper() else SYMBOL_PT))  # 2 % over: rounded widths
            if mono and ch in "/_":
                pieces.append((width, space))
                width, space = 0.0, False
    return pieces + [(width, space)] if width else pieces


SPACE_PT = 3.33


def text_pt(text: str) -> float:
    """About how wide `text` (a cell, Markdown marks and all) prints on one line in the
    table's type."""
    return sum(w + (SPACE_PT if space and i else 0.0)
               for i, (w, space) in enumerate(_pieces(text)))


def wrapped_lines(text: str, width: float) -> int:
    """How many lines `text` takes in a column `width` points wide."""
    lines, used = 1, 0.0
    for w, space in _pieces(text):
        more = (SPACE_PT if space and used else 0.0) + w
        if used and used + more > width:
            lines, used = lines + 1, w
        else:
            used += more
    return lines


def _longest_piece(text: str) -> float:
    return max([w for w, _ in _pieces(text)] or [0.0])


def _narrowest(text: str, lines: int) -> float:
    """The narrowest column (in points, to 0.25) in which `text` takes at most `lines` lines."""
    low, high = _longest_piece(text), text_pt(text)
    while high - low > 0.25:
        mid = (low + high) / 2
        low, high = (low, mid) if wrapped_lines(text, mid) <= lines else (mid, high)
    return high


def _least(column: list[str], numeric: bool) -> float:
    """A column's least width: its longest word (a numeric column: its longest number)."""
    return max(text_pt(c) if numeric and n else _longest_piece(c) for n, c in enumerate(column))


def is_wide(table: Table) -> bool:
    """Whether `table` goes on a landscape page: on a portrait line its columns cannot all be
    as wide as their longest word (a numeric column's, its longest number), or only with a
    cell wrapped over more than `TALL` lines."""
    return _layout(*_key(table))[0]


def column_widths(table: Table) -> list[float] | None:
    """Each column's share of the line width (a landscape page's line for a wide table,
    `is_wide`) when the table would not fit as it is (None when it fits): the narrowest
    widths that hold every cell in as few lines as can be (a numeric column never wraps a
    number), what is left shared among the columns that would take more; only a table too
    wide even for a landscape page has its columns narrowed below their longest word."""
    widths = _layout(*_key(table))[1]
    return None if widths is None else list(widths)


def _key(table: Table) -> tuple[tuple, tuple, tuple]:
    return (tuple(cell(h) for h in table.header),
            tuple(tuple(cell(c) for c in row) for row in table.rows), tuple(table.numeric()))


@lru_cache(maxsize=256)
def _layout(header: tuple, rows: tuple, numeric: tuple) -> tuple[bool, tuple | None]:
    """(is_wide, column_widths) of the table with these cells."""
    columns = [[h] + [r[i] for r in rows] for i, h in enumerate(header)]
    least = [_least(c, n) for c, n in zip(columns, numeric)]
    full = [max(text_pt(c) for c in column) for column in columns]
    gaps = GAP_PT * (len(columns) - 1)
    portrait = LINE_PT - gaps
    wide = sum(least) > portrait or (
        sum(full) > portrait and _balanced(columns, numeric, portrait)[1] > TALL)
    page = LANDSCAPE_PT if wide else LINE_PT
    if sum(full) <= page - gaps:
        return wide, None
    line = page - gaps - len(columns) * page / 1000  # room for rounding each width up
    if sum(least) > line:  # too wide even for a landscape page: its words run over
        widths = [m / sum(least) * line for m in least]
    else:
        widths = _balanced(columns, numeric, line)[0]
    return wide, tuple(math.ceil(w / page * 1000) / 1000 for w in widths)  # as printed


def _balanced(columns: list[list[str]], numeric: tuple,
              line: float) -> tuple[list[float], int]:
    """Column widths (points) that fill `line` with no cell over as few lines as can be,
    and that number of lines: each column as narrow as holds its cells in that many lines,
    what is left shared in proportion to how much more each column would take."""
    full = [max(text_pt(c) for c in column) for column in columns]
    for most in range(1, 1000):
        need = [full[i] if numeric[i] and most == 1 else
                max(_least(column, numeric[i]), *(_narrowest(c, most) for c in column))
                for i, column in enumerate(columns)]
        if sum(need) <= line:
            break
    more = [f - n for f, n in zip(full, need)]
    left = line - sum(need)
    return [n + left * m / (sum(more) or 1) for n, m in zip(need, more)], most


def table_lines(table: Table) -> int:
    """About how many lines of small type `table` takes (its title, header and rules, and
    each row as tall as its longest wrapped cell)."""
    widths = column_widths(table)
    if widths is None:
        body = len(table.rows)
    else:
        line = LANDSCAPE_PT if is_wide(table) else LINE_PT
        body = sum(max(wrapped_lines(cell(c), w * line) for c, w in zip(row, widths))
                   for row in table.rows)
    return body + 3 + (2 if table.title else 0)


def table_keep(table: Table) -> int:
    """The lines of `table` kept on one page: a short table whole, a long one's first rows."""
    return min(table_lines(table) + 1, 30) if len(table.rows) <= 16 else 8


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
