"""The report as a student hands it in, each part a list of blocks (lines of text and
`Table`s) filled from the cited runs, that REPORT.md and REPORT.tex are both written from: the
title, a short summary beside the original report, the checklist of the handout's items, the
handout's items in order (Task 1, Task 2 with the bar (`reporting.task2`), Task 3), the
per-class accuracy, and an appendix, "Provenance" (how the report was made, the data, the runs
table, the other runs, the corrections to the original report); and its figures, drawn from
the cited runs into the output folder (PNG, and the PDF REPORT.tex includes), each shown
under its own caption or named as missing.

What the report shows of a model's layers (1c, 2a) it builds with the `model_of` it is given
(report.py gives the task scripts' models): reporting never imports a task script.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from reporting.architecture import parameter_data, training_data
from reporting.bar import bar_verdict
from reporting.cited import (
    CITED,
    LENET,
    MODEL21,
    RESNET,
    TASK_OUTPUT_RUNS,
    data_line,
    experiments_folders,
    load_groups,
    report_command,
    short,
    shown_groups,
    task2_groups,
    wall_cell,
)
from reporting.figures import (
    draw_best_task2,
    draw_gains,
    draw_task1,
    draw_task2,
    draw_task3,
    draw_task3d,
    plot_confusion,
)
from reporting.layout import anchor, confusion_figure, figure_lines, figure_there
from reporting.render import PAGE_BREAK, to_markdown_text
from reporting.results import (
    best_model,
    confused_data,
    confusion_counts,
    final_data,
    other_run_files,
    other_runs_section,
    per_class_data,
    runs_section,
    summary_data,
    summary_rows,
    test_images,
)
from reporting.table import Table
from reporting.task2 import RECIPES_OF_TASK2, bar_recipes, task2_section
from reporting.task2e import read_experiments
from reporting.words import (
    CHECKLIST,
    CORRECTIONS,
    FACTS,
    FIGURES,
    GENERATED,
    H_1A,
    H_1B,
    H_1C,
    H_2A,
    H_2B,
    H_2E,
    H_3A,
    H_3BC,
    H_3D,
    H_3EFG,
    H_APPENDIX,
    H_BAR,
    H_CORRECTIONS,
    H_MADE,
    H_MISSING,
    H_NOT_REPRODUCED,
    H_PER_CLASS,
    INTRO,
    ITEMS,
    NOT_REPRODUCED,
    PER_CLASS,
    QUICK_LOOK,
    TESTED_ON,
    VISUALISATION,
    WHICH,
    YOURS,
    ZIP_COMMAND,
)
from training.batches import CLASSES
from training.recipes import TASK2
from training.record import Run, RunGroup, format_mean_std, mean_std

# The model a run of a recipe trained, rebuilt for its tables: model_of(recipe label, one of
# its runs, or None when there is none) -> nn.Module.
ModelOf = Callable[[str, Run | None], nn.Module]


# --------------------------------------------------------------------------- the report
def build_report(results: Path, output_dir: Path | None = None, cited: dict | None = None,
                 drawn: set[str] | None = None, own_runs: bool | None = None,
                 best: str | None = None, loaded: dict | None = None, *, model_of: ModelOf
                 ) -> tuple[str, list[str]]:
    """REPORT.md's text and the list of missing runs (the arguments: `report_blocks`')."""
    blocks, missing = report_blocks(results, output_dir, cited, drawn, own_runs, best, loaded,
                                    model_of=model_of)
    return to_markdown_text(blocks), missing


def report_blocks(results: Path, output_dir: Path | None = None, cited: dict | None = None,
                  drawn: set[str] | None = None, own_runs: bool | None = None,
                  best: str | None = None, loaded: dict | None = None, *,
                  model_of: ModelOf) -> tuple[list, list[str]]:
    """The report as blocks (lines of text and tables; REPORT.md and REPORT.tex are written
    from them) and the list of missing runs.

    `results`: where the run files are; `output_dir` (default: `results`): where REPORT.md and
    its figures go; `cited`: which runs (default CITED); `drawn`: names of the figures
    `draw_figures` made (None: embed whatever figure files are in `output_dir`); `own_runs`:
    the specs name the task scripts' own runs (default: when `cited` is TASK_OUTPUT_RUNS),
    for the sentence that says so and the command that rebuilds the file; `best`: the Task 2
    model --best-model chose (a label; None: the best validation accuracy); `loaded`:
    `load_groups`' answer, when the caller has it; `model_of`: the model a run of a recipe
    trained (`ModelOf`), for the tables of its layers.
    """
    results = Path(results)
    out = Path(output_dir) if output_dir is not None else results
    cited = CITED if cited is None else cited
    own_runs = cited is TASK_OUTPUT_RUNS if own_runs is None else own_runs
    loaded = load_groups(results, cited) if loaded is None else loaded
    typed = shown_groups(loaded)
    task2 = task2_groups(typed)
    best_pick = best_model(task2, best if best in task2 else None) if task2 else None
    others = other_run_files(results, loaded)
    experiments = experiments_folders(results, cited)
    lines = [*_title(results, typed),
             *_summary(cited, loaded, typed),
             *_checklist(cited, typed, out, drawn, best_pick, experiments),
             PAGE_BREAK, "", *_task1(typed, out, drawn, model_of),
             PAGE_BREAK, "", *task2_section(typed, out, drawn, best_pick, results, model_of,
                                            experiments,
                                            experiments_folders(results, cited, existing=False)),
             *_task3(cited, typed, out, drawn, best_pick),
             *_per_class(typed, out, drawn),
             PAGE_BREAK, "", *_appendix(results, out, cited, loaded, typed, own_runs, best,
                                        others)]
    return lines, [name for name, g in loaded.items() if not g]


def _title(results: Path, shown: dict[str, RunGroup]) -> list[str]:
    return ["# TDT4265 Assignment 3: results", "",
            INTRO.format(results=results, appendix=anchor(H_APPENDIX)[1:]), ""]


def _summary(cited: dict, groups: dict, shown: dict[str, RunGroup]) -> list[str]:
    lines = ["## Summary: ours beside the original report (test accuracy)", "",
             summary_data(summary_rows(cited, groups)), ""]
    quick = [short(n) for n, g in shown.items() if g.quick_look]
    if quick:
        n_test = test_images(shown.values())
        joined = ("; " if any("," in q for q in quick) else ", ").join(quick)  # labels hold commas
        lines += [QUICK_LOOK.format(models=joined,
                                    were="was" if len(quick) == 1 else "were",
                                    tested=TESTED_ON.format(n_test=n_test) if n_test else ""),
                  ""]
    return lines


def _checklist(cited: dict, shown: dict, out: Path, drawn: set[str] | None,
               best_pick, experiments: list[Path]) -> list[str]:
    answers = _answers(cited, shown, out, drawn, best_pick, experiments)
    return ["## The handout, item by item", "", CHECKLIST, "",
            Table(["item", "the handout asks", "answered by"],
                  [[item, asks, answers[item]] for item, asks in ITEMS]), ""]


def _answers(cited: dict, shown: dict, out: Path, drawn: set[str] | None,
             best_pick, experiments: list[Path]) -> dict[str, str]:
    """What answers each item of ITEMS: a link into this file, or missing and its command."""
    best = next((r for r in RECIPES_OF_TASK2 if best_pick and r.label == best_pick[0]), None)

    def figure(item: str, recipe=None) -> str:
        name = FIGURES[item][1]
        if not figure_there(item, out, drawn):
            return "missing: " + _making(cited, item)
        return f"[{name}]({name})" + (f" ({recipe.label})" if recipe is best and best else "")

    def section(heading: str, run_name: str) -> str:
        if not shown.get(run_name):
            return "missing: " + _making(cited, run_name)
        return f"[{heading}]({anchor(heading)})"

    answers = {"code": f"`{ZIP_COMMAND}` writes it (the code, this file and its figures)",
               "1a": figure("1a", LENET), "1b": section(H_1B, LENET.run_name),
               "1c": f"[{H_1C}]({anchor(H_1C)})", "2c": figure("2c", best),
               "2d": figure("2d", best), "3a": section(H_3A, RESNET.run_name),
               "3b": figure("3b", RESNET), "3c": figure("3c", RESNET), "3d": figure("3d"),
               "3e": figure("3e"), "3f": figure("3f"), "3g": figure("3g")}
    task2 = next((r.run_name for r in RECIPES_OF_TASK2 if shown.get(r.run_name)),
                 MODEL21.run_name)
    for item, heading in (("2a", H_2A), ("2b", H_2B), ("2e", H_2E)):
        answers[item] = section(heading, task2)
    at_bar = bar_recipes(shown, experiments)
    answers["Task 2"] = (f"{bar_verdict(at_bar)} ([the bar]({anchor(H_BAR)}))" if at_bar
                         else "not measured: " + _making(cited, task2))
    return answers


def _making(cited: dict, what: str) -> str:
    """The command that makes what an item needs: a run, or the visualisation."""
    if what in ("3e", "3f", "3g"):
        return f"`{VISUALISATION}` (from a ResNet18 run or its ImageNet weights)"
    name = {"1a": LENET.run_name, "2c": MODEL21.run_name, "2d": MODEL21.run_name,
            "3b": RESNET.run_name, "3c": RESNET.run_name, "3d": RESNET.run_name}.get(what, what)
    spec = cited.get(name) or TASK_OUTPUT_RUNS.get(name, {})
    return f"`{spec.get('command', '?')}`"


def _task1(shown: dict[str, RunGroup], out: Path, drawn: set[str] | None, model_of: ModelOf
           ) -> list[str]:
    lines = ["## Task 1: LeNet", "", f"### {H_1A}", "", *figure_lines(out, ["1a", "1b"], drawn)]
    group = shown.get(LENET.run_name)
    if group:
        table = final_data({LENET.label: group}, {LENET.label: LENET.original})
        n_test = test_images([group])
        if n_test:
            table.notes.append(f"Test columns: the {n_test} test images the runs kept.")
        lines += [f"### {H_1B}", "", table, ""]
    lenet = model_of(LENET.label, group.first if group else None)
    lines += [f"### {H_1C}", "", parameter_data(lenet), ""]
    if group:
        lines += [training_data(group, title="LeNet: training details"), ""]
    return lines


def _task3(cited: dict, typed: dict[str, RunGroup], out: Path, drawn: set[str] | None,
           best_pick) -> list[str]:
    lines = ["## Task 3: ResNet18 transfer learning", ""]
    group = typed.get(RESNET.run_name)
    if not group:
        spec = cited.get(RESNET.run_name, TASK_OUTPUT_RUNS[RESNET.run_name])
        why = spec.get("missing")
        return lines + [f"### {H_NOT_REPRODUCED}", "",
                        NOT_REPRODUCED.format(why=f": {why}" if why else "",
                                              command=spec["command"]), ""]
    test = group.values("test")
    best = next((typed[r.run_name] for r in RECIPES_OF_TASK2
                 if best_pick and r.label == best_pick[0]), None)
    best_test = best.values("test") if best else []
    facts = [(f"- ResNet18: test accuracy {format_mean_std(test, 4)}; "
             f"{group.first.config.get('trainable_parameters', 0):,} trainable "
             f"parameters; {wall_cell(group.runs)} of training on {group.first.device}.")]
    if best_test and None not in test + best_test:
        facts.append(f"- Against {best_pick[0]} ({format_mean_std(best_test, 4)}): "
                     f"{100 * (mean_std(test)[0] - mean_std(best_test)[0]):+.2f} points.")
    return lines + [f"### {H_3A}", "", training_data(group), "",
                    final_data({RESNET.label: group}), "",
                    f"### {H_3BC}", "", *figure_lines(out, ["3b", "3c"], drawn),
                    f"### {H_3D}", "", *figure_lines(out, ["3d"], drawn), FACTS, "", *facts, "",
                    f"### {H_3EFG}", "", *figure_lines(out, ["3e", "3f", "3g"], drawn),
                    YOURS.format(what="3d's comparison and 3e-3g's observations"), ""]


def _per_class(shown: dict[str, RunGroup], out: Path, drawn: set[str] | None) -> list[str]:
    lines = [f"## {H_PER_CLASS}", ""]
    if not shown:
        return lines + ["No cited run is in the results folder.", ""]
    runs = {short(n): g for n, g in shown.items()}
    counts = sorted({r.data.get("n_test") for g in shown.values() for r in g.runs
                     if r.data.get("n_test")})
    n_test = (" or ".join(f"{n:,}" for n in counts) if counts else "")
    lines += [PER_CLASS.format(n_test=n_test).replace("on the  test", "on the test"), "",
              per_class_data(runs, CLASSES), "",
              confused_data(runs, CLASSES, "Most confused (true -> predicted)"), ""]
    for name, group in shown.items():
        figure, label = confusion_figure(group), short(name)
        if confusion_counts(group)[0] is None:
            continue
        caption = f"{label}: test confusion matrix"
        if (drawn is None or figure in drawn) and (out / figure).is_file():
            lines += [f"![{caption}]({figure})", ""]
        else:
            lines += [f"*{caption}*: missing; `{figure}` is not in the output folder.", ""]
    return lines


def _appendix(results: Path, out: Path, cited: dict, loaded: dict, shown: dict,
              own_runs: bool, best: str | None, others: list[Run]) -> list:
    """The appendix for the curious reader: how the report was made (its command, the cited
    runs, the data), the runs table, the other runs, the corrections, the missing runs."""
    names = ", ".join(f"`{n}`" for n in cited)
    missing = [n for n, g in loaded.items() if not g]
    return [f"## {H_APPENDIX}", "", f"### {H_MADE}", "",
            GENERATED.format(command=report_command(results, out, own_runs, best),
                             results=results, which=WHICH[own_runs].format(names=names)), "",
            data_line(shown), "",
            *runs_section(results, cited, loaded, own_runs),
            *other_runs_section(results, others),
            "", f"### {H_CORRECTIONS}", "", *(f"- {line}" for line in CORRECTIONS), "",
            *(["", f"### {H_MISSING}", ""] + [
                f"- {cited[n]['label']}: `{cited[n]['command']}`"
                + (f" (not made: {cited[n]['missing']})" if cited[n].get("missing") else "")
                for n in missing] if missing else [])]


# --------------------------------------------------------------------------- figures
def draw_figures(results: Path, out: Path, cited: dict | None = None,
                 best: str | None = None, loaded: dict | None = None) -> list[Path]:
    """Every figure REPORT.md embeds that run files can give, drawn into `out` (`best`: the
    Task 2 model --best-model chose, a label; None: the best validation accuracy among every
    Task 2 recipe; `loaded`: `load_groups`' answer, when the caller has it)."""
    cited = CITED if cited is None else cited
    loaded = load_groups(results, cited) if loaded is None else loaded
    groups = shown_groups(loaded)
    paths = []
    if groups.get(LENET.run_name):
        paths += draw_task1(groups[LENET.run_name], out)
    task2 = task2_groups(groups)
    best = best if best in task2 else None
    report = {label: g for label, g in task2.items() if label in {r.label for r in TASK2}}
    ten = {label: g for label, g in task2.items() if label not in report}
    if report:
        paths += draw_task2(report, out, best_figures=False)
    if ten:
        paths += draw_task2(ten, out, prefix=RECIPES_OF_TASK2[-1].figure_prefix,
                            best_figures=False)
    if task2:
        paths += draw_best_task2(task2, out, best)
    resnet = groups.get(RESNET.run_name)
    if resnet:
        paths += draw_task3(resnet, out)
        if task2:
            paths.append(draw_task3d(task2, resnet, out, best))
    experiments = experiments_folders(results, cited)
    if experiments:
        paths += draw_gains(*read_experiments(experiments),
                            out / Path(FIGURES["2e, gains"][1]).stem)
    for name, group in groups.items():
        if confusion_counts(group)[0] is not None:
            paths.append(plot_confusion(group, out / confusion_figure(group),
                                        f"{short(name)}: test confusion matrix", CLASSES))
    return paths
