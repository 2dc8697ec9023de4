"""The matplotlib figures, drawn from typed runs (`training.record.Run`; a model's seeds as a
`RunGroup` or a list of Runs), never from a live model; their tables are in
`reporting.results`. Each figure of the assignment has one function that draws it, whoever
asks (the task scripts as they train, report.py from the committed runs): `draw_task1`,
`draw_task2`, `draw_task3`, `draw_task3d`, `plot_confusion`, and `draw_gains` (Task 2e's
gains, from the measures of `reporting.task2e`). `python plots.py RUN.json` redraws a run's
curves without retraining.
"""
from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from reporting.paired import paired
from reporting.results import best_model, confusion_counts
from reporting.words import COMPARISON_FIGURE
from training.batches import CLASSES
from training.recipes import RECIPES
from training.record import Run, mean_std, no_test_curve, quick_look_note, weights_label

Runs = Sequence[Run]  # a model's seeds: a RunGroup, or a list of Runs


def _marked_title(title: str, runs: Runs) -> str:
    note = quick_look_note(runs)
    if not note:
        return title
    return title + "\n" + textwrap.fill(f"{note}: not comparable with the report", 80)


_PDF_COPIES = [True]  # save_figure's switch, set by `png_only`


@contextlib.contextmanager
def png_only():
    """Within: figures as PNG alone (the committed evidence README shows, results/report/)."""
    _PDF_COPIES.append(False)
    try:
        yield
    finally:
        _PDF_COPIES.pop()


def save_figure(fig, path: Path | str) -> Path:
    """Write `fig` as a PNG (the folder made if needed) and, for a LaTeX report, the same
    figure as a vector PDF beside it (not within `png_only`); free it. Returns the PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    if _PDF_COPIES[-1]:
        fig.savefig(path.with_suffix(".pdf"), metadata={"CreationDate": None})  # same bytes
    pyplot().close(fig)
    return path


def pyplot():
    """matplotlib.pyplot on the headless Agg backend (files only, never a window)."""
    import matplotlib
    matplotlib.use("Agg")  # headless: files only, never a window
    # Fonts embedded as TrueType, not Type 3 bitmaps: sharp when zoomed, text copyable.
    matplotlib.rcParams.update({"pdf.fonttype": 42, "ps.fonttype": 42})
    import matplotlib.pyplot as plt
    return plt


METRICS = {"loss": ("Cross-entropy loss", {"train": "train_loss", "val": "val_loss",
                                              "test": "test_loss"}),
           "accuracy": ("Accuracy", {"train": "train_accuracy", "val": "val_accuracy",
                                     "test": "test_accuracy"})}


STYLES = {"train": "--", "val": "-", "test": ":"}


SPLITS = ("train", "val", "test")


NO_TEST_CURVE = "test: not recorded ({predates})"


def _split_name(split: str, metric: str) -> str:
    if split == "train":
        return "train (mean since last check)" if metric == "loss" else "train (fixed subset)"
    return {"val": "validation", "test": "test"}[split]


def plot_runs(runs: dict[str, Runs], metric: str, path: Path | str, title: str = "",
              splits: Iterable[str] = SPLITS) -> Path:
    """Plot `metric` ('loss' or 'accuracy') of each run against epochs: training (dashed),
    validation (solid) and test (dotted) curves, as `splits` asks.

    `runs` maps a legend label to the runs of one model (several seeds: their mean, a ±1
    sample standard deviation band). The best checkpoint (the one reported, chosen
    on validation) is marked on each validation curve of a single run. A run without a test
    curve (made before checks recorded it) says so in the legend.
    """
    plt = pyplot()
    ylabel, keys = METRICS[metric]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    marked = False
    for i, (label, run) in enumerate(runs.items()):
        group, color = run, colors[i % len(colors)]
        for split in splits:
            _plot_split(ax, group, keys[split], STYLES[split], color,
                        f"{label}: {_split_name(split, metric)}")
        if len(group) == 1 and "val" in splits:
            history, best = group[0].history, group[0].best_check
            if best is not None and 0 <= best < len(history):
                marked = True
                ax.plot([history[best]["epoch"]], [history[best][keys["val"]]], "o",
                        color=color, markersize=7, markerfacecolor="none")
    ax.set_xlabel("Epoch")
    ax.set_ylabel(ylabel)
    if metric == "accuracy":
        ax.set_ylim(top=1.0)
    ax.grid(alpha=0.3)
    ax.set_title(_marked_title(textwrap.fill(title or ylabel, 95),
                               [r for group in runs.values() for r in group]),
                 fontsize=9)
    if marked:
        ax.plot([], [], "o", color="0.4", markerfacecolor="none",
                label="best checkpoint (chosen on validation, reported)")
    seeds = sorted({len(group) for group in runs.values() if len(group) > 1})
    if seeds:  # said once, not on every curve: a line is the mean, its band ±1 sample std
        ax.fill_between([], [], [], color="0.4", alpha=0.15, linewidth=0,
                        label=f"line: mean of {'/'.join(map(str, seeds))} seeds; "
                              "band: ±1 sample std")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def _plot_split(ax, group: Sequence[Run], key: str, style: str, color: str,
                label: str) -> None:
    """One split's curve of a run, or of several seeds their mean ± sample standard deviation
    check by check (runs
    that stopped early drop out); a legend entry alone when no run recorded it."""
    longest = max(group, key=lambda r: len(r.history))
    xs, mean, std = [], [], []
    for i, h in enumerate(longest.history):
        values = [r.history[i][key] for r in group
                  if i < len(r.history) and r.history[i].get(key) is not None]
        if values:
            centre, spread = mean_std(values)
            xs.append(h["epoch"])
            mean.append(float(centre))
            std.append(spread)
    if not xs:
        why = no_test_curve(group) if key.startswith("test") else None
        if why:
            ax.plot([], [], style, color=color,
                    label=label.split(": ")[0] + ": " + NO_TEST_CURVE.format(predates=why))
        return
    ax.plot(xs, mean, style, color=color, label=label)
    if len(group) > 1:
        mean_a, std_a = np.array(mean), np.array(std)
        ax.fill_between(xs, mean_a - std_a, mean_a + std_a, color=color, alpha=0.15, linewidth=0)


def plot_run_files(json_paths: Sequence[Path | str], prefix: str, output_dir: Path | str,
                   labels: Sequence[str] | None = None, title: str = "") -> list[Path]:
    """Redraw `<prefix>_loss.png` and `<prefix>_accuracy.png` from saved run JSON files."""
    runs = {}
    for i, p in enumerate(json_paths):
        run = Run.load(p)
        label = labels[i] if labels else (run.model or Path(p).stem)
        runs.setdefault(label, []).append(run)  # one label, several seeds: a band
    out = Path(output_dir)
    return [plot_runs(runs, m, out / f"{prefix}_{m}.png", title=f"{title} {m}".strip())
            for m in ("loss", "accuracy")]


def _curves(prefix: str, runs: dict[str, Runs], out: Path | str, heading: str,
            metrics: Sequence[str] = ("loss", "accuracy")) -> list[Path]:
    return [plot_runs(runs, m, Path(out) / f"{prefix}_{m}.png", title=f"{heading} {m}")
            for m in metrics]


def draw_task1(lenet: Runs, out: Path | str) -> list[Path]:
    """Task 1a/1b: task1_loss.png and task1_accuracy.png of LeNet's run (or seeds)."""
    return _curves(RECIPES["lenet"].figure_prefix, {RECIPES["lenet"].label: lenet}, out,
                   "Task 1: LeNet")


def draw_task2(models: dict[str, Runs], out: Path | str, suffix: str = "",
               best: str | None = None, prefix: str | None = None,
               best_figures: bool = True) -> list[Path]:
    """Task 2: task2_accuracy.png and task2_loss.png, both models ({label: run or seeds}) on
    one set of axes, and (`best_figures`) the best model alone (`draw_best_task2`). `suffix`:
    a --run-suffix variant's files (task2_k5_loss.png, task2c_k5_accuracy.png); `prefix`: the
    recipes' figure prefix (default: the report's, task2; task2_10ep: task2_10ep_loss.png,
    task2c_10ep_accuracy.png)."""
    base = RECIPES["model21"].figure_prefix
    prefix = (prefix or base) + suffix
    which = " this project's 10-epoch recipes," if prefix.startswith(f"{base}_10ep") else ""
    paths = _curves(prefix, models, out, f"Task 2: both models,{which}", ("accuracy", "loss"))
    if best_figures:
        paths += draw_best_task2(models, out, best, prefix)
    return paths


def draw_best_task2(models: dict[str, Runs], out: Path | str, best: str | None = None,
                    prefix: str | None = None) -> list[Path]:
    """Task 2c and 2d: task2c_accuracy.png and task2d_loss.png (`prefix` task2_10ep:
    task2c_10ep_accuracy.png), the best of `models` alone (`best_model`; `best`: a label that
    --best-model chose)."""
    base = RECIPES["model21"].figure_prefix
    prefix = prefix or base
    label, why = best_model(models, best)
    return [plot_runs({label: models[label]}, metric,
                      Path(out) / f"{base}{item}{prefix[len(base):]}_{metric}.png",
                      title=f"Task 2{item}: {metric} of {label}, the best Task 2 model ({why})")
            for item, metric in (("c", "accuracy"), ("d", "loss"))]


def draw_task3(resnet: Runs, out: Path | str) -> list[Path]:
    """Task 3b/3c: task3_accuracy.png and task3_loss.png of ResNet18's run (or seeds), the
    weights it started from in the title."""
    label = weights_label(resnet[0].config if resnet else {})
    return _curves(RECIPES["resnet18"].figure_prefix, {RECIPES["resnet18"].label: resnet}, out,
                   f"Task 3: ResNet18 ({label})", ("accuracy", "loss"))




def draw_task3d(models: dict[str, Runs], resnet: Runs, out: Path | str, best: str | None = None) -> Path:
    """Task 3d: task3d_loss_comparison.png, the training and validation loss of ResNet18 and
    of the best Task 2 model (`best_model` of `models`), from the saved histories."""
    label, why = best_model(models, best)
    weights = weights_label(resnet[0].config if resnet else {})
    return plot_runs({RECIPES["resnet18"].label: resnet, label: models[label]}, "loss",
                     Path(out) / COMPARISON_FIGURE, splits=("train", "val"),
                     title=f"Task 3d: loss of ResNet18 ({weights}) and {label}, the best "
                           f"Task 2 model ({why})")


def plot_confusion(group: Runs, path: Path | str, title: str = "",
                   classes: Sequence[str] = CLASSES) -> Path:
    """The test confusion matrix of a run (several seeds of one model: their counts summed,
    as the title says): counts in the cells, colour = the share of the true class (row),
    the diagonal is each class's accuracy. Needs final["test"]["confusion_matrix"]."""
    counts, n_runs = confusion_counts(group)
    if counts is None:
        raise ValueError("no run has a test confusion matrix (final['test']"
                         "['confusion_matrix']; runs made before it was recorded have none)")
    if counts.shape != (len(classes), len(classes)):
        raise ValueError(f"confusion matrix of shape {counts.shape} for {len(classes)} classes")
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float),
                       where=totals > 0)
    n_total = len(group)
    summed = (f"counts summed over {n_runs} seeds" if n_runs == n_total else
              f"counts summed over the {n_runs} of {n_total} runs that recorded them")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 6.6))
    from matplotlib.colors import PowerNorm
    # square-root colour scale: a 10 % confusion is clearly visible beside 80 % diagonals
    image = ax.imshow(shares, cmap="Blues", norm=PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0))
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{counts[i, j]:,}", ha="center", va="center", fontsize=7,
                    color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    accuracy = np.trace(counts) / counts.sum() if counts.sum() else float("nan")
    head = _marked_title(title or "Test confusion matrix", group)
    ax.set_title(f"{head}\n(test accuracy {accuracy:.4f}"
                 + (f"; {summed}" if n_runs > 1 or n_runs != n_total else "") + ")",
                 fontsize=10)
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("share of the true class (row; square-root scale)")
    fig.tight_layout()
    return save_figure(fig, path)


def draw_gains(runs, variants, path: Path) -> list[Path]:
    """Each change's gain in test accuracy over its baseline of the same seed, in points:
    every seed's paired difference as a dot, the 95 % interval of their mean as a bar with
    the mean as a tick (PNG and PDF, as `save_figure` writes them)."""
    plt = pyplot()

    items = [(v, paired(runs, v.name, v.baseline, "test_acc")) for v in variants
             if v.baseline is not None and v.name in runs]
    items = [(v, p) for v, p in items if p.n]
    if not items:
        return []
    items.sort(key=lambda vp: (vp[0].group != "ladder", vp[1].mean))
    fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(items) + 1.6))
    for y, (v, p) in enumerate(items):
        if p.interval is not None:
            lo, hi = p.interval
            ax.plot([100 * lo, 100 * hi], [y, y], color="black", lw=2, solid_capstyle="butt",
                    label="95 % interval of the mean" if y == 0 else None)
        ax.plot([100 * p.mean], [y], marker="|", markersize=14, color="black", ls="none",
                label="mean" if y == 0 else None)
        ax.scatter([100 * d for d in p.diffs], [y] * p.n, s=16, color="tab:blue", zorder=3,
                   label="one seed" if y == 0 else None)
    ax.axvline(0, color="gray", lw=0.8)
    ladder = sum(v.group == "ladder" for v, _ in items)
    if 0 < ladder < len(items):  # LeNet's changes below, the report's models' above
        ax.axhline(ladder - 0.5, color="gray", lw=0.6, ls="--")
    ax.set_yticks(range(len(items)),
                  [f"{v.name} (vs {v.baseline}, {p.n} seed{'' if p.n == 1 else 's'})" for v, p in items])
    ax.set_xlabel("test accuracy minus the baseline's of the same seed, points", fontsize=8)
    bar = "bar: 95 % interval of the mean; " if any(p.interval for _, p in items) else ""
    ax.set_title(f"Task 2e: gain of each change within 10 epochs\n(dots: seeds; {bar}tick: "
                 "mean)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    png = save_figure(fig, path.with_suffix(".png"))
    return [png, png.with_suffix(".pdf")] if _PDF_COPIES[-1] else [png]
