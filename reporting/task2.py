"""Task 2's part of the report, in the handout's order: the bar (two models at 75 % test
accuracy within 10 epochs), 2a (each architecture's layers once, and the training details of
the report's recipe beside this project's 10-epoch recipe, with what the latter changes), 2b
(the final numbers of every recipe beside the report's), 2c and 2d (the best model, chosen
among every recipe by validation accuracy) and 2e (the experiments' facts).

What it shows of a model's layers it builds with the `model_of` it is given (report.py gives
the task scripts' models): reporting never imports a task script.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from reporting.architecture import architecture_data, training_data
from reporting.bar import RecipeAtBar, bar_label, bar_table, experiment_runs, recipe_at_bar
from reporting.cited import EXPERIMENTS_COMMAND, wall_cell
from reporting.layout import figure_lines
from reporting.results import final_data, test_images
from reporting.table import Table
from reporting.task2e import experiment_tables, facts
from reporting.words import (
    BAR,
    BAR_SOURCES,
    BEST_MODEL,
    CHANGES,
    EXPERIMENTS_FACTS,
    EXPERIMENTS_MISSING,
    EXPERIMENTS_TEXT,
    FACTS,
    H_2A,
    H_2B,
    H_2CD,
    H_2E,
    H_BAR,
    NO_TEST_CURVE,
    SAME_LAYERS,
    TASK2_TRAIN_COLUMNS,
    YOURS,
)
from training.recipes import TASK2, TASK2_10EP, Recipe
from training.record import Run, RunGroup, format_mean_std, no_test_curve, predates_test_curve

ModelOf = Callable[[str, Run | None], nn.Module]
RECIPES_OF_TASK2 = [*TASK2, *TASK2_10EP]  # the report's two, then this project's two


def bar_recipes(typed: dict[str, RunGroup], experiments: list[Path]) -> list[RecipeAtBar]:
    """Every Task 2 recipe with runs against the bar (`reporting.bar`): this project's 10-epoch
    recipes from their own runs; the report's from Task 2e's 10-epoch runs of them, else from
    their own runs (read within their first 10 epochs)."""
    found = []
    for recipe in [*TASK2_10EP, *TASK2]:
        runs = list(typed.get(recipe.run_name) or [])
        if recipe.family == "report":
            runs = experiment_runs(experiments, recipe) or runs
        if runs:
            found.append(recipe_at_bar(bar_label(recipe), recipe, runs))
    return found


def task2_section(typed: dict[str, RunGroup], out: Path, drawn: set[str] | None, best_pick,
                  results: Path, model_of: ModelOf, experiments: list[Path],
                  expected: list[Path]) -> list:
    """Task 2's blocks; `experiments`: the folders of 2e's runs that are there, `expected`:
    all those it reads."""
    lines: list = ["## Task 2: Model 2.1 and Model 2.2", ""]
    task2 = {r.label: typed[r.run_name] for r in RECIPES_OF_TASK2 if typed.get(r.run_name)}
    tables = experiment_tables(experiments)[0] if experiments else []
    tables = tables if any(t.rows for t in tables) else []
    at_bar = bar_recipes(typed, experiments)
    if at_bar:
        n_test = test_images([r.runs for r in at_bar])
        lines += [f"### {H_BAR}", "",
                  BAR.format(tested=f" (on {n_test} test images)" if n_test else ""), "",
                  bar_table(at_bar, n_test), ""]
        held = sorted({run.path.parent for r in at_bar if r.recipe.family == "report"
                       for run in r.runs if run.experiment})
        if held:
            lines += [BAR_SOURCES.format(command=EXPERIMENTS_COMMAND + " --only model21 model22",
                                         folders=_folders(held, results)), ""]
    if task2:
        lines += [f"### {H_2A}", "", *_architectures(typed, model_of)]
        reference = {r.label: r.original for r in TASK2 if r.label in task2}
        n_test = test_images(task2.values())
        table = final_data(task2, reference, beside=True)
        if n_test:
            table.notes.append(f"Test columns: the {n_test} test images the runs kept.")
        lines += [f"### {H_2B}", "", table, "", TASK2_TRAIN_COLUMNS, ""]
    if best_pick:
        lines += [f"### {H_2CD.format(label=best_pick[0])}", "",
                  BEST_MODEL.format(label=best_pick[0], why=best_pick[1]), ""]
    old = [label for label, g in task2.items() if no_test_curve(g)]
    if old and best_pick and best_pick[0] in old:  # said once, before the first such figure
        lines += [NO_TEST_CURVE.format(models=", ".join(old), predates=predates_test_curve(2)),
                  ""]
    lines += figure_lines(out, ["2c", "2d"], drawn)
    if any(r.label in task2 for r in TASK2):
        if old and not (best_pick and best_pick[0] in old):
            lines += [NO_TEST_CURVE.format(models=", ".join(old),
                                           predates=predates_test_curve(2)), ""]
        lines += figure_lines(out, ["2, accuracy", "2, loss"], drawn)
    if any(r.label in task2 for r in TASK2_10EP):
        lines += figure_lines(out, ["2, 10-epoch accuracy", "2, 10-epoch loss"], drawn)
    if task2 or tables:
        lines += [f"### {H_2E}", ""]
        if tables:  # the ladder's ranked table and the claims table, in words
            lines += [EXPERIMENTS_FACTS.format(facts=" ".join(facts(tables[0], tables[3]))),
                      ""]
        lines += [FACTS, "", *_facts_task2(task2), ""]
        if tables:
            lines += [EXPERIMENTS_TEXT.format(command=EXPERIMENTS_COMMAND,
                                              folders=_folders(experiments, results)), "",
                      *figure_lines(out, ["2e, gains"], drawn)]
            for table in tables[:-1]:  # the last, the 10-epoch bar, is the bar's own table
                lines += [table, ""] if table.rows else []
        else:
            lines += [EXPERIMENTS_MISSING.format(command=EXPERIMENTS_COMMAND,
                                                 folders=_folders(expected, results)), ""]
        lines += [YOURS.format(what="2e's discussion"), ""]
    return lines


def _folders(folders: list[Path], results: Path) -> str:
    return ", ".join(f"`{f.relative_to(results) if f.is_relative_to(results) else f}`"
                     for f in folders)


def _architectures(typed: dict[str, RunGroup], model_of: ModelOf) -> list:
    """2a: each architecture's layers once (both of its recipes train them), its recipes'
    training details side by side, and what the 10-epoch recipe changes."""
    lines: list = []
    for report in TASK2:
        recipes = [r for r in RECIPES_OF_TASK2 if r.choice == report.choice
                   and typed.get(r.run_name)]
        if not recipes:
            continue
        models = {r.label: model_of(r.label, typed[r.run_name].first) for r in recipes}
        layers = architecture_data(models[recipes[0].label], title=f"{report.label}: layers")
        lines += [layers, ""]
        if len(recipes) > 1:
            lines += [SAME_LAYERS.format(label=report.label,
                                         differs=_layers_differ(layers, recipes[1].label,
                                                                models[recipes[1].label])), ""]
        lines += [_details(report.label, recipes, typed), ""]
        for recipe in recipes:
            if recipe.changes:
                lines += [CHANGES.format(label=recipe.label), "",
                          *(f"- {change}" for change in recipe.changes), ""]
    return lines


def _layers_differ(layers: Table, label: str, model: nn.Module) -> str:
    """' (Model 2.2, 10-epoch recipe: Dropout2D p = 0.1 where this table says p = 0.5)' when
    the other recipe's layers differ in a setting, else ''."""
    other = architecture_data(model)
    changed = dict.fromkeys(f"{b[1]} {b[2]} where this table says {a[2]}"
                            for a, b in zip(layers.rows, other.rows) if a != b and a[1] == b[1])
    return f" ({label}: {'; '.join(changed)})" if changed else ""


def _details(title: str, recipes: list[Recipe], typed: dict[str, RunGroup]) -> Table:
    """The training details of an architecture's recipes, one column each."""
    tables = [training_data(typed[r.run_name]) for r in recipes]
    if len(tables) == 1:
        tables[0].title = f"{title}: training details" + (
            f" ({recipes[0].label})" if recipes[0].family != "report" else "")
        return tables[0]
    header = ["setting", *("the report's recipe" if r.family == "report" else r.label
                           for r in recipes)]
    rows = [[row[0], *(dict(t.rows).get(row[0]) for t in tables)] for row in tables[0].rows]
    return Table(header, rows, title=f"{title}: training details")


def _facts_task2(task2: dict[str, RunGroup]) -> list[str]:
    """Each Task 2 recipe's cited runs in one line, and the two models of each kind of recipe
    side by side (the LeNet ladder's facts are the experiments' own)."""
    lines = []
    for label, group in task2.items():
        best = [r.best_epoch for r in group]
        lines.append(f"- {label}: test accuracy {format_mean_std(group.values('test'), 4)}"
                     + (f" over {len(group)} seeds (mean ± sample standard deviation)"
                        if len(group) > 1 else " (one run)")
                     + f", train {format_mean_std(group.values('train'), 4)}; best checkpoint "
                     f"at epoch {format_mean_std(best, 1)} of {group.first.epochs or '?'}; "
                     f"training took {wall_cell(group.runs)} on {group.first.device}.")
    for family in (TASK2, TASK2_10EP):
        means = {r.label: (task2[r.label].mean_std(), len(task2[r.label])) for r in family
                 if r.label in task2 and task2[r.label].mean_std()}
        if len(means) != 2:
            continue
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
