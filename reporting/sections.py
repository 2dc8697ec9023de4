"""The report's sections, the handout item by item: each a list of blocks (lines of text and
`Table`s) filled from the cited runs, that REPORT.md and REPORT.tex are both written from; and
its figures, drawn from the cited runs into the output folder (PNG, and the PDF REPORT.tex
includes), each shown under its caption or named as missing.

What the report shows of a model's layers (1c, 2a) it builds with the `model_of` it is given
(report.py gives the task scripts' models): reporting never imports a task script.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from torch import nn

from reporting.architecture import architecture_data, parameter_data, training_data
from reporting.cited import (
    CITED,
    EXPERIMENTS_COMMAND,
    LENET,
    MODEL21,
    MODEL22,
    RESNET,
    TASK_OUTPUT_RUNS,
    data_line,
    experiments_folders,
    load_groups,
    report_command,
    run_label,
    short,
    shown_command,
    shown_groups,
    task2_groups,
    wall_cell,
)
from reporting.figures import draw_task1, draw_task2, draw_task3, draw_task3d, plot_confusion
from reporting.render import Table, to_markdown_text
from reporting.results import (
    at_epoch,
    bar_data,
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
)
from reporting.task2e import draw_gains, experiment_tables, facts, read_experiments
from reporting.words import (
    BAR,
    BAR_REACHED_BY,
    BEST_MODEL,
    CHECKLIST,
    CORRECTIONS,
    EXPERIMENTS_FACTS,
    EXPERIMENTS_MISSING,
    EXPERIMENTS_TEXT,
    FACTS,
    FIGURES,
    H_1B,
    H_1C,
    H_2A,
    H_2B,
    H_2E,
    H_3A,
    H_BAR,
    INTRO,
    ITEMS,
    MODEL_FIGURES,
    NO_TEST_CURVE,
    NOT_REPRODUCED,
    PER_CLASS,
    QUICK_LOOK,
    TASK2_TRAIN_COLUMNS,
    VISUALISATION,
    WHICH,
    YOURS,
    ZIP_COMMAND,
)
from training.batches import CLASSES
from training.recipes import BAR_ACCURACY, TASK2
from training.record import (
    Run,
    RunGroup,
    format_mean_std,
    mean_std,
    no_test_curve,
    predates_test_curve,
)

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
    lines = [*_header(results, out, cited, own_runs, typed, best_pick, best),
             *_summary(cited, loaded),
             *_checklist(cited, typed, out, drawn, best_pick),
             *_task1(typed, out, drawn, model_of),
             *_task2(typed, out, drawn, best_pick, others, results, model_of,
                     experiments_folders(results, cited),
                     experiments_folders(results, cited, existing=False)),
             *_task3(cited, typed, out, drawn, best_pick),
             *_per_class(typed, out, drawn),
             *_corrections(),
             *runs_section(results, cited, loaded, own_runs),
             *other_runs_section(results, others),
             *_missing(cited, loaded)]
    return lines, [name for name, g in loaded.items() if not g]


def _header(results: Path, out: Path, cited: dict, own_runs: bool,
            shown: dict[str, RunGroup], best_pick, best: str | None) -> list[str]:
    names = ", ".join(f"`{n}`" for n in cited)
    lines = ["# TDT4265 Assignment 3: results", "",
             INTRO.format(command=report_command(results, out, own_runs, best), results=results,
                          which=WHICH[own_runs].format(names=names)),
             "", data_line(shown), ""]
    quick = [short(n) for n, g in shown.items() if g.quick_look]
    if quick:
        lines += [QUICK_LOOK.format(models=", ".join(quick),
                                    were="was" if len(quick) == 1 else "were"), ""]
    old = [short(n) for n, g in shown.items() if no_test_curve(g)]
    if old:
        lines += [NO_TEST_CURVE.format(models=", ".join(old),
                                       predates=predates_test_curve(2)), ""]
    if best_pick:
        lines += [BEST_MODEL.format(label=best_pick[0], why=best_pick[1]), ""]
    return lines


def _summary(cited: dict, groups: dict) -> list[str]:
    return ["## Summary: ours beside the original report (test accuracy)", "",
            summary_data(summary_rows(cited, groups)), ""]


def _checklist(cited: dict, shown: dict, out: Path, drawn: set[str] | None,
               best_pick) -> list[str]:
    answers = _answers(cited, shown, out, drawn, best_pick)
    return ["## The handout, item by item", "", CHECKLIST, "",
            Table(["item", "the handout asks", "answered by"],
                  [[item, asks, answers[item]] for item, asks in ITEMS]), ""]


def _answers(cited: dict, shown: dict, out: Path, drawn: set[str] | None,
             best_pick) -> dict[str, str]:
    """What answers each item of ITEMS: a link into this file, or missing and its command."""
    best = next((r for r in TASK2 if best_pick and r.label == best_pick[0]), None)

    def figure(item: str, recipe=None) -> str:
        name = FIGURES[item][1]
        if not figure_there(item, out, drawn):
            return "missing: " + _making(cited, item)
        notes = [recipe.label] if recipe is best and best else []
        why = no_test_curve(shown.get(recipe.run_name, [])) if recipe else None
        if why:
            notes.append(f"no test curve: {why}")
        return f"[{name}]({name})" + (f" ({'; '.join(notes)})" if notes else "")

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
    task2 = next((r.run_name for r in TASK2 if shown.get(r.run_name)), MODEL21.run_name)
    for item, heading in (("Task 2", H_BAR), ("2a", H_2A), ("2b", H_2B), ("2e", H_2E)):
        answers[item] = section(heading, task2)
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
    lines = ["## Task 1: LeNet", "", *figure_lines(out, ["1a", "1b"], drawn)]
    group = shown.get(LENET.run_name)
    if group:
        table = final_data({LENET.label: group}, {LENET.label: LENET.original})
        lines += [f"### {H_1B}", "", table, ""]
    lenet = model_of(LENET.label, group.first if group else None)
    lines += [f"### {H_1C}", "", parameter_data(lenet), "",
              "### LeNet: layers and training details", "", architecture_data(lenet), ""]
    if group:
        lines += [training_data(group), ""]
    return lines


def _task2(typed: dict[str, RunGroup], out: Path, drawn: set[str] | None, best_pick,
           others: list[Run], results: Path, model_of: ModelOf, experiments: list[Path],
           expected: list[Path]) -> list[str]:
    """Task 2's items; `experiments`: the folders of 2e's runs that are there, `expected`:
    all those it reads."""
    lines = ["## Task 2: Model 2.1 and Model 2.2", ""]
    task2 = task2_groups(typed)
    tables = experiment_tables(experiments)[0] if experiments else []
    tables = tables if any(t.rows for t in tables) else []
    if task2:
        lines += [f"### {H_2A}", ""]
        for label, group in task2.items():
            lines += [architecture_data(model_of(label, group.first),
                                        title=f"{label}: layers"), "",
                      training_data(group, title=f"{label}: training details"), ""]
        table = final_data(task2,
                           {r.label: r.original for r in TASK2 if r.label in task2})
        lines += [f"### {H_2B}", "", table, "", TASK2_TRAIN_COLUMNS, "",
                  *_bar(task2, others, results, tables[-1:])]
    if best_pick:
        lines += [f"### 2c, 2d: the best model, {best_pick[0]}", "",
                  BEST_MODEL.format(label=best_pick[0], why=best_pick[1]), ""]
    lines += figure_lines(out, ["2c", "2d", "2, accuracy", "2, loss"], drawn)
    if task2 or tables:
        def shown(folders):
            return ", ".join(f"`{f.relative_to(results) if f.is_relative_to(results) else f}`"
                             for f in folders)
        lines += [f"### {H_2E}", ""]
        if tables:  # the ladder's ranked table and the claims table, in words
            lines += [EXPERIMENTS_FACTS.format(facts=" ".join(facts(tables[0], tables[3]))),
                      ""]
        lines += [FACTS, "", *_facts_task2(typed), ""]
        if tables:
            lines += [EXPERIMENTS_TEXT.format(command=EXPERIMENTS_COMMAND,
                                              folders=shown(experiments)), "",
                      *figure_lines(out, ["2e, gains"], drawn)]
            for table in tables[:-1]:  # the last, the 10-epoch bar, is the bar's section's
                lines += [table, ""] if table.rows else []
        else:
            lines += [EXPERIMENTS_MISSING.format(command=EXPERIMENTS_COMMAND,
                                                 folders=shown(expected)), ""]
        lines += [YOURS.format(what="2e's discussion"), ""]
    return lines


def _bar(task2: dict, others: list[Run], results: Path, experiments: list[Table]
         ) -> list[str]:
    lines = [f"### {H_BAR}", "", BAR, "", bar_data(task2), ""]
    lines += [block for table in experiments if table.rows for block in (table, "")]
    missed = [g for g in task2.values()
              if not all((at_epoch(r) or (0, 0))[1] >= BAR_ACCURACY for r in g)]
    reach = [(run, at_epoch(run)) for run in others
             if run.model in (MODEL21.key, MODEL22.key)
             and at_epoch(run) and at_epoch(run)[1] >= BAR_ACCURACY]
    if missed and reach:
        lines += [BAR_REACHED_BY, ""] + [
            f"- `{run_label(results, run.path)}`: {value:.4f} at epoch {epoch:.1f}, "
            f"`{shown_command(run.command or '?')}`"
            for run, (epoch, value) in reach] + [""]
    return lines


def _facts_task2(typed: dict[str, RunGroup]) -> list[str]:
    """Model 2.1's and 2.2's cited runs, side by side (the LeNet ladder's facts are the
    experiments' own, against its own baseline)."""
    task2 = {r.label: typed[r.run_name] for r in TASK2 if r.run_name in typed}
    lines = []
    for label, group in task2.items():
        best = [r.best_epoch for r in group]
        lines.append(f"- {label}: test accuracy {format_mean_std(group.values('test'), 4)}"
                     + (f" over {len(group)} seeds (mean ± sample standard deviation)"
                        if len(group) > 1 else " (one run)")
                     + f", train {format_mean_std(group.values('train'), 4)}; best checkpoint "
                     f"at epoch {format_mean_std(best, 1)} of {group.first.epochs or '?'}; "
                     f"training took {wall_cell(group.runs)} on {group.first.device}.")
    means = {label: (g.mean_std(), len(g)) for label, g in task2.items() if g.mean_std()}
    if len(means) == 2:
        (a, ((ma, sa), na)), (b, ((mb, sb), nb)) = sorted(means.items(),
                                                          key=lambda kv: -kv[1][0][0])
        spread = [f"{100 * std:.2f} ({label})" for label, std, n in
                  ((a, sa, na), (b, sb, nb)) if n > 1]
        lines.append(f"- {a} is ahead of {b} by {100 * (ma - mb):.2f} points of test accuracy"
                     + (f"; the seeds' sample standard deviation, in points: "
                        f"{', '.join(spread)}"
                        + (", wider than the gap" if ma - mb <= max(sa, sb) else "")
                        if spread else "; one run each: seed noise unknown") + ".")
    return lines


def _task3(cited: dict, typed: dict[str, RunGroup], out: Path, drawn: set[str] | None,
           best_pick) -> list[str]:
    lines = ["## Task 3: ResNet18 transfer learning", ""]
    group = typed.get(RESNET.run_name)
    if not group:
        spec = cited.get(RESNET.run_name, TASK_OUTPUT_RUNS[RESNET.run_name])
        why = spec.get("missing")
        return lines + ["### 3a, 3b, 3c, 3d, 3e, 3f, 3g: not reproduced yet", "",
                        NOT_REPRODUCED.format(why=f": {why}" if why else "",
                                              command=spec["command"]), ""]
    lines += [f"### {H_3A}", "", training_data(group), "",
              final_data({RESNET.label: group}), ""]
    lines += figure_lines(out, ["3b", "3c", "3d", "3e", "3f", "3g"], drawn)
    resnet = typed[RESNET.run_name]
    test = resnet.values("test")
    best = next((typed[r.run_name] for r in TASK2 if best_pick and r.label == best_pick[0]),
                None)
    best_test = best.values("test") if best else []
    facts = [(f"- ResNet18: test accuracy {format_mean_std(test, 4)}; "
             f"{resnet.first.config.get('trainable_parameters', 0):,} trainable "
             f"parameters; {wall_cell(resnet.runs)} of training on {resnet.first.device}.")]
    if best_test and None not in test + best_test:
        facts.append(f"- Against {best_pick[0]} ({format_mean_std(best_test, 4)}): "
                     f"{100 * (mean_std(test)[0] - mean_std(best_test)[0]):+.2f} points.")
    return lines + [FACTS, "", *facts, "",
                    YOURS.format(what="3d's comparison and 3e-3g's observations"), ""]


def _per_class(shown: dict[str, RunGroup], out: Path, drawn: set[str] | None) -> list[str]:
    lines = ["## Per-class test accuracy", ""]
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
        if (drawn is None or figure in drawn) and (out / figure).is_file():
            caption = f"{label}: test confusion matrix"
            lines += [f"**{caption}**", "", f"![{caption}]({figure})", ""]
        else:
            lines += [(f"**{label}: test confusion matrix**: missing (`{figure}` is not in the "
                      "output folder)"), ""]
    return lines


def _corrections() -> list[str]:
    return ["## Corrections to the original report", "",
            *(f"- {line}" for line in CORRECTIONS), ""]


def _missing(cited: dict, groups: dict) -> list[str]:
    missing = [n for n, g in groups.items() if not g]
    if not missing:
        return []
    return ["", "## Missing runs", ""] + [
        f"- {cited[n]['label']}: `{cited[n]['command']}`"
        + (f" (not made: {cited[n]['missing']})" if cited[n].get("missing") else "")
        for n in missing]


# --------------------------------------------------------------------------- figures
def draw_figures(results: Path, out: Path, cited: dict | None = None,
                 best: str | None = None, loaded: dict | None = None) -> list[Path]:
    """Every figure REPORT.md embeds that run files can give, drawn into `out` (`best`: the
    Task 2 model --best-model chose, a label; None: the best validation accuracy; `loaded`:
    `load_groups`' answer, when the caller has it)."""
    cited = CITED if cited is None else cited
    loaded = load_groups(results, cited) if loaded is None else loaded
    groups = shown_groups(loaded)
    paths = []
    if groups.get(LENET.run_name):
        paths += draw_task1(groups[LENET.run_name], out)
    task2 = task2_groups(groups)
    best = best if best in task2 else None
    if task2:
        paths += draw_task2(task2, out, best=best)
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


def confusion_figure(group: Sequence[Run]) -> str:
    """The confusion matrix's file of a model's runs."""
    return f"confusion_{group[0].model or 'model'}.png"


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
