"""Tables and facts from runs, as `Table` data (Markdown and LaTeX alike), each taking typed
runs (`training.record.Run`; a model's seeds as a `RunGroup` or a list of Runs): the final
numbers beside the original report's (1b, 2b, 3a), the training details (2a, 3a), per-class
accuracy and the most confused pairs, the handout's 10-epoch bar, the best Task 2 model and
why; a model's parameters (1c) and layers (2a) from `training.architecture`'s rows; and the
report's tables of runs: the summary beside the original report (and run_all.py's console
copy of it), the runs table (command, code version, device, data, date), the other runs in
the results folder, README's results table.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from reporting.bar import bar_table, recipe_at_bar
from reporting.cited import (
    CITED,
    RESNET,
    acc_cell,
    command_cell,
    command_differs,
    data_cell,
    dates_cell,
    is_imagenet,
    load_groups,
    no_final,
    provenance,
    run_date,
    run_label,
    short,
    shown_command,
    shown_groups,
)
from reporting.render import to_markdown
from reporting.table import Table
from reporting.words import CHECK_CITATION, H_OTHER, H_RUNS, RUNS_INTRO, RUNS_WHO
from training.batches import CLASSES
from training.errors import UserError
from training.recipes import BAR_ACCURACY, BAR_EPOCHS, RECIPES, Recipe, by_run_name
from training.record import (
    Run,
    RunGroup,
    format_mean_std,
    no_test_curve,
    quick_look_note,
    spread_note,
    weights_file_name,
)

Runs = Sequence[Run]  # a model's seeds: a RunGroup, or a list of Runs


def best_val_accuracy(group: Runs) -> float | None:
    """The validation accuracy of a model's best checkpoints (mean over its seeds): from the
    final evaluation, else the best check of a run still going."""
    values = []
    for run in group:
        final = run.accuracy("val")
        checks = [h["val_accuracy"] for h in run.history if h.get("val_accuracy") is not None]
        value = final if final is not None else (max(checks) if checks else None)
        if value is not None:
            values.append(value)
    return float(np.mean(values)) if values else None


def best_model(models: dict[str, Runs], chosen: str | None = None) -> tuple[str, str]:
    """(label, why) of the Task 2 model that 2c, 2d and 3d show: `chosen` (a label, from
    --best-model), else the one whose best checkpoints have the best validation accuracy.
    `why` says which and by how much, for titles and REPORT.md."""
    scores = {label: best_val_accuracy(runs) for label, runs in models.items()}
    known = {label: v for label, v in scores.items() if v is not None}
    if chosen is not None and chosen not in models:
        raise ValueError(f"{chosen} has no run here (have: {', '.join(models) or 'none'})")
    label = chosen or (max(known, key=known.get) if known else next(iter(models)))
    others = "; ".join(f"{other}: {v:.4f}" for other, v in known.items() if other != label)
    value = f"{known[label]:.4f}" if label in known else "-"
    why = ("chosen with --best-model" if chosen else "the best validation accuracy") + \
        f": {value}" + (f" against {others}" if others else "")
    return label, why


# --------------------------------------------------------------------------- the bar
def bar_data(models: dict[str, Runs], title: str = "") -> Table:
    """The handout's bar for Task 2 (`reporting.bar`), one row per seed of each model
    ({label: its runs}) and its mean ± sample standard deviation."""
    table = bar_table([recipe_at_bar(label, by_label(label), group)
                       for label, group in models.items()], test_images(models.values()))
    table.title = title
    return table


def by_label(label: str) -> Recipe | None:
    return next((r for r in RECIPES.values() if r.label == label), None)


def test_images(groups) -> str:
    """'300' (or '300 or 2,000'): the test images the runs of `groups` were measured on, when
    any run kept fewer than the whole test split (a --subset quick look); '' otherwise."""
    runs = [r for g in groups for r in g]
    counts = sorted({r.data.get("n_test") for r in runs if r.data.get("n_test")})
    if not any(r.args.get("subset") is not None for r in runs):
        return ""
    return " or ".join(f"{n:,}" for n in counts)


def ten_epoch_line(label: str, group: Sequence[Run]) -> str:
    """A recipe against the bar as one console line."""
    r = recipe_at_bar(label, None, group)
    if not r.measured:
        why = no_test_curve(group) or "no check within them recorded the test split"
        return f"{label}: no test accuracy within {BAR_EPOCHS} epochs ({why})"
    best = format_mean_std([s.best_test for s in r.measured], 4)
    lasts = [s.last_test for s in r.seeds if s.last_test is not None]
    seeds = f" over {len(r.seeds)} seeds" if len(r.seeds) > 1 else ""
    verdict = ("reaches" if r.passes else "misses" if not r.passing else "reaches")
    return (f"{label}: test accuracy {best}{seeds} at the best-validation check within "
            f"{BAR_EPOCHS} epochs (at epoch {BAR_EPOCHS}: {format_mean_std(lasts, 4)}): "
            f"{verdict} the handout's bar of {BAR_ACCURACY:.2f}"
            + (f" in {r.count}" if r.passing and not r.passes else ""))


def final_data(runs: dict[str, Runs], reference: dict[str, dict] | None = None,
               title: str = "", beside: bool = False) -> Table:
    """The Task 2.2-style table (test/val/train loss and accuracy per run).

    A model of several seeds has cells are 'mean ± sample standard
    deviation', said in the table's note.
    `reference` rows (the original report's numbers) are added below ours with '(report)'
    after the name (`beside`: each right under our row of the same name); a missing value
    prints as '-'.
    """
    cols = [("test", "loss"), ("test", "accuracy"), ("val", "loss"), ("val", "accuracy"),
            ("train", "loss"), ("train", "accuracy")]
    header = ["model"] + [f"{s} {'acc' if m == 'accuracy' else m}" for s, m in cols]

    rows = []
    for name, group in runs.items():
        note = quick_look_note(group)
        rows.append([name + (f" ({len(group)} seeds)" if len(group) > 1 else "")
                     + (f", {note}" if note else "")]
                    + [format_mean_std([getattr(r.final.get(s), m, None) for r in group], 3)
                       for s, m in cols])
    for name, final in (reference or {}).items():  # the original report's, from training/recipes.py
        row = [f"{name} (report)"] + [format_mean_std([final.get(s, {}).get(m)], 3)
                                      for s, m in cols]
        at = list(runs).index(name) + 1 + sum(r[0].endswith(" (report)") for r in rows) \
            if beside and name in runs else len(rows)
        rows.insert(at, row)
    note = spread_note([len(group) for group in runs.values()])
    return Table(header, rows, title=title, notes=[note] if note else [])


def final_table(runs: dict[str, Runs],
                reference: dict[str, dict] | None = None) -> tuple[str, str]:
    """`final_data` as (fixed-width text, Markdown)."""
    table = final_data(runs, reference)
    rows, header = table.rows, table.header
    w0 = max(len(r[0]) for r in rows + [header])
    w = max(len(c) for r in rows + [header] for c in r[1:]) + 2
    text = "\n".join(f"{r[0]:<{w0}}" + "".join(f"{c:>{w}}" for c in r[1:]) for r in [header] + rows)
    return "\n".join([text, *table.notes]), to_markdown(table)


def confusion_counts(group: Runs) -> tuple[np.ndarray | None, int]:
    """The test confusion matrix (row = true class, column = predicted), summed over the
    runs that recorded one, and how many did; (None, 0) when none did."""
    matrices = [np.asarray(r.confusion, dtype=np.int64) for r in group if r.confusion]
    if not matrices:
        return None, 0
    return np.sum(matrices, axis=0), len(matrices)


def most_confused(counts: np.ndarray, classes: Sequence[str], n: int = 3
                  ) -> list[tuple[str, str, int, float]]:
    """The `n` largest off-diagonal cells: (true, predicted, count, share of the true class);
    ties by class order."""
    totals = counts.sum(axis=1)
    cells = [(-int(counts[i, j]), i, j) for i in range(len(classes))
             for j in range(len(classes)) if i != j and counts[i, j] > 0]
    return [(classes[i], classes[j], -c, -c / totals[i] if totals[i] else float("nan"))
            for c, i, j in sorted(cells)[:n]]


def per_class_data(runs: dict[str, Runs], classes: Sequence[str] = CLASSES,
                   title: str = "") -> Table:
    """Per-class test accuracy, one row per class and one column per model (several seeds:
    mean ± sample standard deviation, said in the table's note), '-' where a run has no
    per-class data; a last row with the overall test accuracy."""
    groups = runs
    header = ["class"] + [label + (f" ({len(g)} seeds)" if len(g) > 1 else "")
                          for label, g in groups.items()]
    rows = [[name] + [format_mean_std(
        [(r.per_class or [None] * len(classes))[k] for r in g], digits=3)
        for g in groups.values()] for k, name in enumerate(classes)]
    rows.append(["**all (test accuracy)**"] + [
        format_mean_std([r.accuracy("test") for r in g], digits=3) for g in groups.values()])
    note = spread_note([len(g) for g in groups.values()])
    return Table(header, rows, title=title, notes=[note] if note else [])


def confused_data(runs: dict[str, Runs], classes: Sequence[str] = CLASSES,
                  title: str = "") -> Table:
    """Each model's three most confused (true -> predicted) pairs, from the confusion counts
    summed over its seeds."""
    rows = []
    for label, group in runs.items():
        counts, n_runs = confusion_counts(group)
        if counts is None:
            why = ("no final evaluation in its run file yet (status "
                   + ", ".join(sorted({r.status for r in group})) + ")"
                   if not any(r.finished for r in group)
                   else "no per-class data (the run predates it)")
            rows.append([label, why, None, None])
            continue
        summed = f" (summed over {n_runs} seeds)" if n_runs > 1 else ""
        rows += [[label + summed, f"{t} -> {p}", f"{c:,}", f"{s:.1%}"]
                 for t, p, c, s in most_confused(counts, classes)]
    return Table(["model", "true -> predicted", "test images", "share of the true class"],
                 rows, title=title)


def per_class_table(runs: dict[str, Runs], classes: Sequence[str] = CLASSES) -> str:
    """`per_class_data` and `confused_data` in Markdown."""
    return (to_markdown(per_class_data(runs, classes)) + "\n"
            + to_markdown(confused_data(runs, classes,
                                        "Most confused (true -> predicted)")))


# --------------------------------------------------------------------------- the summary
def summary_rows(cited: dict, groups: dict[str, RunGroup], why_missing: dict | None = None
                 ) -> list[tuple[str, str, str, str, str]]:
    """(run name, model, ours, original report, note) per model: the summary of REPORT.md and
    of run_all.py's console, beside the original report's test accuracy. `why_missing`: what to
    say instead of the command that makes a missing run (run_all knows why it skipped one)."""
    rows = []
    for name, spec in cited.items():
        group, recipe = groups.get(name) or RunGroup(name, []), by_run_name(name)
        report = recipe.original_test_accuracy if recipe else None
        if not group:
            ours = (why_missing or {}).get(name) or f"missing: `{spec['command']}`"
        elif name == RESNET.run_name and not is_imagenet(group):
            weights = weights_file_name(group.first.config)
            ours = ("not reproduced yet (the saved run did not start from ImageNet weights"
                    + (f": {weights}" if weights else "") + ")")
        else:
            ours = acc_cell(group)
            if no_final(group):
                ours += f" (no final evaluation yet: {no_final(group)})"
            if group.quick_look:
                ours += f", *{group.quick_look}*"
        rows.append((name, spec["label"], ours, "-" if report is None else str(report),
                     recipe.original_note if recipe else ""))
    return rows


def summary_data(rows) -> Table:
    return Table(["model", "ours", "original report", "note"],
                 [[model, ours, report, note] for _, model, ours, report, note in rows])


def summary_text(rows) -> list[str]:
    """The summary as fixed-width console lines (run_all.py's): short model names, Markdown
    marks removed."""
    plain = [(short(name), *(cell.replace("*", "").replace("`", "") for cell in cells))
             for name, _, *cells in rows]
    header = ("model", "test acc (ours)", "original report", "note")
    widths = [max(len(r[i]) for r in [header, *plain]) + 2 for i in range(3)]
    return [("".join(f"{c:<{widths[i]}}" for i, c in enumerate(r[:3])) + r[3]).rstrip()
            for r in [header, *plain]]


def runs_section(results: Path, cited: dict, loaded: dict[str, RunGroup], own_runs: bool
                 ) -> list[str]:
    lines = [f"### {H_RUNS}", "",
             RUNS_INTRO.format(who=RUNS_WHO[own_runs]), ""]
    rows, checks = [], []
    for name, group in loaded.items():
        if not group:
            continue
        spec = cited[name]
        device, precision, torch_version, wall = provenance(group.runs)
        files = ", ".join(f"`{run_label(results, r.path)}`" for r in group)
        dates = dates_cell([run_date(results, r) for r in group])
        status = ", ".join(sorted({status_cell(r) for r in group}))
        if group.quick_look:
            status += f"; *{group.quick_look}*"
        sources = ", ".join(dict.fromkeys(data_cell(r) for r in group))
        code = ", ".join(dict.fromkeys(r.code_version or "-" for r in group))
        made = (f"code {code}; {device}, {precision}, torch {torch_version}; {dates}; "
                f"{status}; {wall}; data: {sources}")
        rows.append([f"**{short(name)}**: {files}", command_cell(spec, group.runs), made])
        if "files" in spec:  # a citation: the runs' own commands must be the cited one
            checks += [CHECK_CITATION.format(run=run_label(results, r.path), recorded=differs)
                       for r in group if (differs := command_differs(spec, r))]
    lines.append(Table(["run: files", "command",
                        "code; device, precision, torch; date; status; training time; data"],
                       rows))
    return lines + ([""] + checks if checks else [])


def other_run_files(results: Path, loaded: dict[str, RunGroup]) -> list[Run]:
    """Every run file under `results` that no spec shows (variants, comparisons); not the
    experiments' runs (2e's tables show them) nor the earlier runs a rerun kept in
    `previous/`."""
    known = {r.path.resolve() for group in loaded.values() for r in group}
    found = []
    for p in sorted(results.rglob("*.json")):
        if p.resolve() in known or p.name == "benchmark.json" or "previous" in p.parts:
            continue
        try:
            run = Run.load(p)
        except UserError:
            continue  # not a run
        if not run.experiment:
            found.append(run)
    return found


def other_runs_section(results: Path, others: list[Run]) -> list:
    rows = []
    for run in others:
        test = run.accuracy("test")
        device, precision, _, wall = provenance([run])
        note = quick_look_note([run])
        if run.model == RESNET.key and run.pretrained_source != "imagenet":
            test_cell = "random stand-in weights: not transfer learning"
        else:
            test_cell = "-" if test is None else f"{test:.4f}"
        rows.append([f"`{run_label(results, run.path)}`", test_cell,  # a path breaks at / and _
                     status_cell(run) + (f"; *{note}*" if note else ""),
                     f"`{shown_command(run.command or '?')}`",
                     f"{device}, {precision}; {run_date(results, run)}; {wall}"])
    if not rows:
        return []
    return ["", f"### {H_OTHER}", "",
            Table(["run", "test acc", "status", "command", "device, precision; date; training time"],
                  rows)]


STILL_RUNNING_S = 3600  # a run whose last check is older than this is no longer running


def status_cell(run: Run, now: float | None = None) -> str:
    """A run's status as the runs tables show it: a file that still says 'running' long
    after its last check (or that predates the record of start times) was stopped, by a time
    cap or a kill, before its final evaluation: said so, with what its file says."""
    if run.status != "running":
        return run.status.replace("_", " ")  # "early stopped" may break between its words
    where = f"epoch {run.last_epoch:.1f} of {run.epochs or '?'}"
    if run.started and run.history:
        started = datetime.fromisoformat(run.started).timestamp()
        last = started + float(run.history[-1].get("elapsed_s") or 0)
        if (now if now is not None else time.time()) - last < STILL_RUNNING_S:
            return f"running, at {where}"
    return (f"stopped at {where} without a final evaluation (its file still says "
            "'running')")


# Left out of README's short rows, said once under the table: where the data is, and no bars.
README_LEFT_OUT = ("--data-dir", "DATA", "--no-progress")
README_NOTE = ("Each run above was made with `--data-dir DATA` (DATA: the JPEG copy of CIFAR-10) "
               "and `--no-progress` as well; [results/README.md](results/README.md) gives "
               "every folder's commands in full.")


def readme_table(results: Path, cited: dict | None = None) -> str:
    """README's results table, from the cited run files alone (a test holds README to it): one
    short row per model (test accuracy, seeds, command, where and when) beside the report's."""
    cited = cited or CITED
    loaded = load_groups(results, cited)
    header = "| model | test acc | seeds | command | device (threads), precision, date | "
    lines = [header + "original report |", "|---|---:|---:|---|---|---:|"]
    notes = []
    for name, spec in cited.items():
        typed = loaded[name]
        original = by_run_name(name).original_test_accuracy or "-"
        shown, _, comment = shown_command(spec["command"]).partition(" # ")
        command = f"`{' '.join(t for t in shown.split() if t not in README_LEFT_OUT)}`"
        if comment:
            notes += [comment] if comment not in notes else []
            command += f" ({notes.index(comment) + 1})"
        if not shown_groups({name: typed}):
            lines.append(f"| {spec['label']} | not measured | | {command} | | {original} |")
            continue
        device, precision, _, _ = provenance(typed.runs)
        days = sorted({run_date(results, r)[:10] for r in typed})
        date = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
        test = no_final(typed) or format_mean_std(typed.values("test"), 4)
        quick = typed.quick_look
        lines.append(f"| {spec['label']} | {test}" + (f", *{quick}*" if quick else "")
                     + f" | {len(typed)} | {command} | {device}, {precision}, {date} | "
                     f"{original} |")
    notes = [f"({i}) {n[0].upper()}{n[1:]}." for i, n in enumerate(notes, 1)]
    return "\n".join(lines + ["", " ".join([README_NOTE, *notes])]) + "\n"
