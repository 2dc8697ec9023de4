"""The handout's bar for Task 2: two models that reach at least 75 % test accuracy within 10
epochs, measured seed by seed from each run's test curve.

A seed is read at two checks of its history, both at or before epoch 10: the check its
validation measure chose (the recipe's stop metric: the best validation accuracy, or the
lowest validation loss), and the last check. The test split is read there and chooses
nothing: a later check, or the check with the best test accuracy, is never read. A seed
passes when the test accuracy of its best-validation check is at least 0.75; a recipe passes
when every seed of it was measured and passes; the bar is met when each of the two
architectures (Model 2.1, Model 2.2) has a recipe that passes.

Which runs: this project's 10-epoch recipes (their own runs), and the report's recipes
trained for 10 epochs (Task 2e's runs of the variants `model21` and `model22`; without
those, the report's recipes' own runs, read within their first 10 epochs).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reporting.table import Table
from training.recipes import BAR_ACCURACY, BAR_EPOCHS, TASK2, Recipe
from training.record import Run, format_mean_std, no_test_curve

WITHIN = BAR_EPOCHS + 1e-6  # a check at or before epoch 10


@dataclass(frozen=True)
class SeedAtBar:
    """One run against the bar: its best-validation check within 10 epochs and the test
    accuracy read there, the last check within 10 epochs and its test accuracy (None: not
    recorded), and how far the run trained."""
    seed: int | None
    best_epoch: float | None
    best_test: float | None
    last_epoch: float | None
    last_test: float | None
    trained: float

    @property
    def measured(self) -> bool:
        return self.best_test is not None

    @property
    def passes(self) -> bool:
        return self.measured and self.best_test >= BAR_ACCURACY


def at_bar(run: Run) -> SeedAtBar:
    """`run` against the bar (see the module's docstring): the test accuracy of its
    best-validation check within 10 epochs is the check's own record, else the run's final
    test evaluation when that was of the same check's weights; never another check's."""
    metric = run.stop_metric
    checks = [h for h in run.history if h.get("epoch", 0) <= WITHIN
              and h.get(metric) is not None]
    best = (min if metric == "val_loss" else max)(checks, key=lambda h: h[metric]) \
        if checks else None
    best_test = None
    if best is not None:
        best_test = best.get("test_accuracy")
        if best_test is None and run.best_epoch is not None \
                and abs(run.best_epoch - best["epoch"]) < 1e-6:
            best_test = run.accuracy("test")  # the final evaluation, of that check's weights
    within = [h for h in run.history if h.get("epoch", 0) <= WITHIN]
    last = within[-1] if within else None
    return SeedAtBar(run.seed, best["epoch"] if best else None, best_test,
                     last["epoch"] if last else None,
                     last.get("test_accuracy") if last else None, run.last_epoch)


@dataclass(frozen=True)
class RecipeAtBar:
    """A recipe's runs against the bar: its label as the bar shows it, its recipe (None: not
    one of Task 2's) and each seed."""
    label: str
    recipe: Recipe | None
    seeds: list[SeedAtBar]
    runs: Sequence[Run] = ()

    @property
    def measured(self) -> list[SeedAtBar]:
        return [s for s in self.seeds if s.measured]

    @property
    def passing(self) -> int:
        return sum(s.passes for s in self.seeds)

    @property
    def passes(self) -> bool:
        """Every seed measured, and each at least 0.75."""
        return bool(self.seeds) and all(s.passes for s in self.seeds)

    @property
    def misses(self) -> bool:
        """A measured seed below 0.75."""
        return any(s.measured and not s.passes for s in self.seeds)

    @property
    def count(self) -> str:
        """'3 of 3 seeds' pass."""
        return f"{self.passing} of {len(self.seeds)} seed{'s' if len(self.seeds) != 1 else ''}"


def recipe_at_bar(label: str, recipe: Recipe | None, runs: Sequence[Run]) -> RecipeAtBar:
    return RecipeAtBar(label, recipe, [at_bar(r) for r in runs], tuple(runs))


def bar_label(recipe: Recipe) -> str:
    """How the bar names a recipe: the report's as 'Model 2.1, the report's recipe'."""
    return f"{recipe.label}, the report's recipe" if recipe.family == "report" else recipe.label


def experiment_runs(folders: Sequence[Path], recipe: Recipe) -> list[Run]:
    """Task 2e's finished runs of a report's recipe for 10 epochs (the variant named as its
    key, a baseline), in the order of their seeds, from the folders that are there."""
    runs = []
    for folder in folders:
        for path in sorted(Path(folder).glob(f"{recipe.key}_seed*.json")):
            run = Run.load(path)
            exp = run.experiment or {}
            if exp.get("variant") == recipe.key and exp.get("baseline") is None \
                    and run.finished:
                runs.append(run)
    return sorted(runs, key=lambda r: (r.seed is None, r.seed or 0))


def _accuracy(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def bar_table(recipes: Sequence[RecipeAtBar], n_test: str = "") -> Table:
    """One row per seed of each recipe (its best-validation check within 10 epochs, the test
    accuracy there and at the last check at or before epoch 10, its verdict), then the
    recipe's mean ± sample standard deviation and how many seeds pass. `n_test`: the number
    of test images, said in the note when it is not the whole test split."""
    rows = []
    for r in recipes:
        why = no_test_curve(r.runs) if r.runs else None
        for i, s in enumerate(r.seeds):
            last = _accuracy(s.last_test)
            if s.last_test is not None and s.last_epoch is not None \
                    and s.last_epoch < BAR_EPOCHS - 0.05:
                last += f" (epoch {s.last_epoch:.1f})"
            verdict = ("no test curve" if not s.measured else
                       "passes" if s.passes else "misses")
            rows.append([r.label if i == 0 else "", "-" if s.seed is None else str(s.seed),
                         "-" if s.best_epoch is None else f"{s.best_epoch:.1f}",
                         _accuracy(s.best_test), last, verdict])
        if len(r.seeds) > 1 and r.measured:
            lasts = [s.last_test for s in r.seeds if s.last_test is not None]
            rows.append(["", "all", "", format_mean_std([s.best_test for s in r.measured], 4),
                         format_mean_std(lasts, 4), f"{r.count} pass"])
        elif not r.seeds:
            rows.append([r.label, "-", "-", "-", "-", "no run"])
        if why and not r.measured:
            rows[-1][-1] = "no test curve"
    notes = [f"Test accuracy on the {n_test} test images the runs kept." if n_test else "",
             ("best-validation check: the check at or before epoch 10 that the recipe's "
              "validation measure chose; the test accuracy is read there and at the last check "
              "at or before epoch 10 (the test split chooses nothing). A seed passes at "
              f"{BAR_ACCURACY:.2f} or more at its best-validation check; 'all': mean ± sample "
              "standard deviation over the seeds.")]
    return Table(["recipe", "seed", "best-validation check, epoch",
                  "test acc there", f"test acc at epoch {BAR_EPOCHS}", "verdict"], rows,
                 notes=[n for n in notes if n])


def bar_verdict(recipes: Sequence[RecipeAtBar]) -> str:
    """The checklist's Task 2 line: 'met: ...' when each of the two architectures has a
    recipe whose every seed was measured and passes (those recipes named); 'not met: ...'
    when one has none and a measured seed of it misses; else 'not measured: ...'."""
    verdicts, passed, missed, unmeasured = {}, [], [], []
    for model in TASK2:  # the two architectures
        arch = model.label
        mine = [r for r in recipes if r.recipe is not None and r.recipe.choice == model.choice]
        passing = [r for r in mine if r.passes]
        verdicts[arch] = passing
        if passing:
            passed += [f"{r.label} ({r.count})" for r in passing]
        elif any(r.misses for r in mine):
            missed.append(f"no recipe of {arch} passes on every seed ("
                          + "; ".join(f"{r.label}: {r.count}" for r in mine if r.seeds) + ")")
        else:
            unmeasured.append(arch)
    if all(verdicts.values()):
        return (f"met: {' and '.join(passed)} reach {BAR_ACCURACY:.2f} test accuracy at their "
                f"best-validation check within {BAR_EPOCHS} epochs")
    if missed:
        return "not met: " + "; ".join(missed)
    return (f"not measured: no run of {' or '.join(unmeasured)} has a test curve within "
            f"{BAR_EPOCHS} epochs")
