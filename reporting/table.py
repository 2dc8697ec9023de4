"""A table of the report, and how wide its columns print. `Table` (title, header, rows of
cells, notes) is built once where its numbers are known; reporting/render.py writes it as
Markdown and as LaTeX. For the LaTeX, this module sizes its columns from the widths of its
characters in the PDF's type (`column_widths`), and says when it needs a landscape page
(`is_wide`) and about how many lines it takes (`table_lines`, `table_keep`).

Cells are strings, already formatted (the renderers never format a number, so Markdown and
LaTeX cannot differ); None is shown as "-". A column whose cells all read as numbers is
right-aligned, and never wrapped in the PDF.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

NUMBER = re.compile(r"^[-+−]?[\d.,]+(e[-+]?\d+)?( ?± ?[\d.,]+)?\s*%?( \(\d+\))?$")


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
            **dict.fromkeys("()", 3.89), "-": 3.33, "%": 8.33, "*": 5.0,
            **dict.fromkeys("IJ", 4.5), **dict.fromkeys("MW", 9.5)}
CAPITAL_PT, SYMBOL_PT, MONO_PT = 7.3, 7.78, 5.25  # other capitals; +, =, ±, ≥, Δ, ...
SPACE_PT = 3.33  # between two words


@lru_cache(maxsize=4096)  # a cell is measured again at each width tried
def _pieces(text: str) -> tuple[tuple[float, bool], ...]:
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
    return tuple(pieces + [(width, space)] if width else pieces)


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
        sum(full) > portrait and _balanced(columns, numeric, full, portrait)[1] > TALL)
    page = LANDSCAPE_PT if wide else LINE_PT
    if sum(full) <= page - gaps:
        return wide, None
    line = page - gaps - len(columns) * page / 1000  # room for rounding each width up
    if sum(least) > line:  # too wide even for a landscape page: its words run over
        widths = [m / sum(least) * line for m in least]
    else:
        widths = _balanced(columns, numeric, full, line)[0]
    return wide, tuple(math.ceil(w / page * 1000) / 1000 for w in widths)  # as printed


def _balanced(columns: list[list[str]], numeric: tuple, full: list[float],
              line: float) -> tuple[list[float], int]:
    """Column widths (points) that fill `line` with no cell over as few lines as can be,
    and that number of lines: each column as narrow as holds its cells in that many lines,
    what is left shared in proportion to how much more each column would take (`full`:
    each column's width unwrapped)."""
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
