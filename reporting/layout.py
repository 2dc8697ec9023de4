"""Where the report's figures stand in its lines: each figure as `![caption](file)` (its
caption its only title: no heading repeats it), or one line saying it is missing; the file
of a model's confusion matrix; the #anchor GitHub gives a heading.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from reporting.words import FIGURES, MODEL_FIGURES
from training.record import Run


def confusion_figure(group: Sequence[Run]) -> str:
    """The confusion matrix's file of a model's runs."""
    return f"confusion_{group[0].model or 'model'}.png"


def figure_there(item: str, out: Path, drawn: set[str] | None) -> bool:
    name = FIGURES[item][1]
    return (drawn is None or name in drawn or name in MODEL_FIGURES) and (out / name).is_file()


def figure_lines(out: Path, items: list[str], drawn: set[str] | None) -> list[str]:
    """Each item's figure under its own caption (`![caption](file)`), or a line saying it is
    missing and why."""
    lines = []
    for item in items:
        caption, name = FIGURES[item]
        if figure_there(item, out, drawn):
            lines += [f"![{caption}]({name})", ""]
        elif drawn is not None and name not in MODEL_FIGURES:
            lines += [f"*{caption}*: missing; its runs are not in the results folder.", ""]
        else:
            lines += [f"*{caption}*: missing; `{name}` is not in the output folder.", ""]
    return lines


def anchor(heading: str) -> str:
    """The #anchor GitHub gives a heading: lower case, punctuation but - and _ dropped,
    spaces as hyphens."""
    return "#" + re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", "")
                        ).replace(" ", "-")
