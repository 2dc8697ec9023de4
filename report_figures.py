"""The report's figures: drawn from the cited runs into the output folder (PNG, and the PDF
REPORT.tex includes), and each shown under its caption or named as missing.
"""
from __future__ import annotations

import re
from pathlib import Path

from comparison import draw_gains, read_experiments
from dataloaders import CLASSES
from plots import draw_task1, draw_task2, draw_task3, draw_task3d, plot_confusion
from report_cited import (CITED, LENET, RESNET, experiments_folders, load_groups, one_or_list,
                          runs_of, short,
                          shown_groups, task2_groups)
from report_text import FIGURES, MODEL_FIGURES
from run_tables import confusion_counts, runs_in

def draw_figures(results: Path, out: Path, cited: dict | None = None,
                 best: str | None = None, loaded: dict | None = None) -> list[Path]:
    """Every figure REPORT.md embeds that run files can give, drawn into `out` (`best`: the
    Task 2 model --best-model chose, a label; None: the best validation accuracy; `loaded`:
    `load_groups`' answer, when the caller has it)."""
    cited = CITED if cited is None else cited
    loaded = load_groups(results, cited) if loaded is None else loaded
    groups = runs_of(shown_groups(loaded))
    paths = []
    if groups.get(LENET.run_name):
        paths += draw_task1(one_or_list(groups[LENET.run_name]), out)
    task2 = {label: one_or_list(g) for label, g in task2_groups(groups).items()}
    best = best if best in task2 else None
    if task2:
        paths += draw_task2(task2, out, best=best)
    resnet = groups.get(RESNET.run_name)
    if resnet:
        paths += draw_task3(one_or_list(resnet), out)
        if task2:
            paths.append(draw_task3d(task2, one_or_list(resnet), out, best))
    experiments = experiments_folders(results, cited)
    if experiments:
        paths += draw_gains(*read_experiments(experiments),
                            out / Path(FIGURES["2e, gains"][1]).stem)
    for name, group in groups.items():
        if confusion_counts(group)[0] is not None:
            paths.append(plot_confusion(group, out / confusion_figure(group),
                                        f"{short(name)}: test confusion matrix", CLASSES))
    return paths


def confusion_figure(group) -> str:
    """The confusion matrix's file of a group (runs as read, or Runs)."""
    return f"confusion_{runs_in(group)[0].model or 'model'}.png"


def figure_there(item: str, out: Path, drawn: set[str] | None) -> bool:
    name = FIGURES[item][1]
    return (drawn is None or name in drawn or name in MODEL_FIGURES) and (out / name).is_file()


def figure_lines(out: Path, items: list[str], drawn: set[str] | None) -> list[str]:
    """Each item's figure under its caption (a heading of its own for a handout item)."""
    lines = []
    for item in items:
        caption, name = FIGURES[item]
        title = f"#### {caption}" if re.fullmatch(r"\d[a-g]", item) else f"**{caption}**"
        if figure_there(item, out, drawn):
            lines += [title, "", f"![{caption}]({name})", ""]
        elif drawn is not None and name not in MODEL_FIGURES:
            lines += [title, "", "Missing: its runs are not in the results folder.", ""]
        else:
            lines += [title, "", f"Missing: `{name}` is not in the output folder.", ""]
    return lines


def anchor(heading: str) -> str:
    """The #anchor GitHub gives a heading: lower case, punctuation but - and _ dropped,
    spaces as hyphens."""
    return "#" + re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", "")
                        ).replace(" ", "-")
