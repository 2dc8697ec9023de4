"""Tables as data, rendered twice: a `Table` (title, header, rows of cells, notes) is built once
where its numbers are known, and `to_markdown` / `to_latex` write it for REPORT.md and
REPORT.tex (and the task scripts' tables), so both hold the same text.

Cells are strings, already formatted (the renderers never format a number, so Markdown and
LaTeX cannot differ); None is shown as "-". A column whose cells all read as numbers is
right-aligned. In a cell, `code` spans become monospace in LaTeX, **bold** and *emphasis*
bold and italic; every other character that LaTeX treats specially is escaped.

Nothing here imports the rest of the project.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

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
        """Which columns hold numbers only (right-aligned)."""
        return [bool(cells) and all(not c or NUMBER.match(c) for c in cells)
                and any(c for c in cells)
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
    `code` in monospace, **bold**, *emphasis*, and [a link](target) as its text."""
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
            part = pattern.sub(lambda m: f"\x00{command}\x01{m.group(1)}\x02", part)
        out.append(_escape(part).replace("\x00", "\\").replace("\x01", "{")
                   .replace("\x02", "}"))
    return "".join(out)


def _escape(text: str) -> str:
    # "--" would print as a dash (a ligature): a flag like --data-dir keeps its two hyphens
    return "".join(LATEX_SPECIAL.get(ch) or LATEX_SYMBOLS.get(ch)
                   or ("-{}" if ch == "-" and text[i + 1:i + 2] == "-" else ch)
                   for i, ch in enumerate(text))


LINK = re.compile(r"\[([^\]]+)\]\([^)\s]+\)")
MARKS = [(re.compile(r"\*\*(\S(?:.*?\S)?)\*\*"), "textbf"),
         (re.compile(r"(?<![\w*])\*(\S(?:.*?\S)?)\*(?![\w*])"), "emph")]


LINE_CHARS = 88  # about how many characters of small text an A4 line with 2 cm margins holds


def column_widths(table: Table) -> list[float] | None:
    """Each column's share of the line width when the table would not fit as it is (None
    when it fits): numeric columns keep their width, text columns share what is left in
    proportion to their length, none narrower than its longest word."""
    numeric = table.numeric()
    cells = [[cell(h)] + [cell(r[i]) for r in table.rows] for i, h in enumerate(table.header)]
    natural = [max(len(c) for c in column[1:] or [""]) for column in cells]
    header = [len(cell(h)) for h in table.header]
    word = [max(len(w) for c in column for w in (c.split() or [""])) for column in cells]
    wanted = [max(n, h) for n, h in zip(natural, header)]
    gap = 2  # the space between two columns, in characters
    if sum(wanted) + gap * len(wanted) <= LINE_CHARS:
        return None
    fixed = {i: max(natural[i], word[i]) for i, right in enumerate(numeric) if right}
    free = LINE_CHARS - gap * len(wanted) - sum(fixed.values())
    text = [i for i in range(len(wanted)) if i not in fixed]
    total = sum(wanted[i] for i in text) or 1
    chars = {**fixed, **{i: max(word[i], min(wanted[i], free * wanted[i] / total))
                         for i in text}}
    scale = (LINE_CHARS - gap * len(wanted)) / max(sum(chars.values()), 1)
    return [min(1.0, chars[i] * min(1.0, scale) / LINE_CHARS) for i in range(len(wanted))]


def to_latex(table: Table, *, label: str = "") -> str:
    r"""A booktabs `longtable` in \small type (it may break across pages; its header repeats):
    numeric columns right-aligned, text columns left; when the table would be wider than the
    line, its columns become paragraph columns that wrap, sized by `column_widths`: the text
    keeps its size, nothing is scaled down."""
    numeric = table.numeric()
    widths = column_widths(table)
    if widths is None:
        spec = "".join("r" if right else "l" for right in numeric)
    else:
        spec = "".join((r">{\raggedleft\arraybackslash}" if right else
                        r">{\raggedright\arraybackslash}") + f"p{{{w:.3f}\\linewidth}}"
                       for right, w in zip(numeric, widths))
    # a short table is kept on one page; a long one may break after its first rows
    keep = len(table.rows) + 4 if len(table.rows) <= 12 else 6
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
    return "\n".join(lines) + "\n"
