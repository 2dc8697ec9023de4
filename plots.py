"""Figures and tables drawn from saved runs (never from a live model). Each figure of the
assignment has one function that draws it, whoever asks (the task scripts as they train,
report.py from the committed runs): `draw_task1`, `draw_task2`, `draw_task3`, `draw_task3d`,
`plot_confusion`. A figure can be redrawn without retraining:

    python plots.py plots/task1_lenet.json        # redraws task1_loss.png / task1_accuracy.png
"""
from __future__ import annotations

import argparse
import contextlib
import textwrap
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from cli import ArgumentParser, run_cli
from recipes import RECIPES, default_epochs
from runs import ensure_output_dir, load_run
from tables import Table, to_markdown


# --------------------------------------------------------------------------- quick looks
def _quick_look_parts(run: dict) -> list[str]:
    config = run.get("config") or {}
    args = config.get("args") or {}
    parts = []
    if args.get("subset") is not None:
        parts.append(f"--subset {args['subset']}")
    epochs = config.get("epochs") or args.get("epochs")
    default = default_epochs(config)
    if epochs is not None and default is not None and epochs < default:
        parts.append(f"{epochs} of {default} epochs")
    return parts


def quick_look(run: dict) -> str | None:
    """What makes a run a quick look, not comparable with the original report ('--subset 300,
    1 of 10 epochs'), or None: trained on a `--subset`, or for fewer epochs than its task's
    default. Read from the run's config alone."""
    return ", ".join(_quick_look_parts(run)) or None


def quick_look_note(runs: Iterable[dict]) -> str | None:
    """'quick look (--subset 300, 1 of 10 epochs)' when any of `runs` is one (each distinct
    reason once, in order), else None."""
    parts = list(dict.fromkeys(p for r in runs for p in _quick_look_parts(r)))
    return f"quick look ({', '.join(parts)})" if parts else None


def _all_runs(runs: dict) -> list[dict]:
    return [r for value in runs.values() for r in _group(value)]


def _marked_title(title: str, runs: list[dict]) -> str:
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
    import matplotlib.pyplot as plt
    return plt


METRICS = {"loss": ("Cross-entropy loss", {"train": "train_loss", "val": "val_loss",
                                              "test": "test_loss"}),
           "accuracy": ("Accuracy", {"train": "train_accuracy", "val": "val_accuracy",
                                     "test": "test_accuracy"})}
STYLES = {"train": "--", "val": "-", "test": ":"}
SPLITS = ("train", "val", "test")
NO_TEST_CURVE = "test: not recorded (the {runs} the test curve)"


def _split_name(split: str, metric: str) -> str:
    if split == "train":
        return "train (mean since last check)" if metric == "loss" else "train (fixed subset)"
    return {"val": "validation", "test": "test"}[split]


def plot_runs(runs: dict[str, dict], metric: str, path: Path | str, title: str = "",
              splits: Iterable[str] = SPLITS) -> Path:
    """Plot `metric` ('loss' or 'accuracy') of each run against epochs: training (dashed),
    validation (solid) and test (dotted) curves, as `splits` asks.

    `runs` maps a legend label to a run dict (as written by the Trainer) or to several seeds
    of one model (their mean, a ±1 std band). The best checkpoint (the one reported, chosen
    on validation) is marked on each validation curve of a single run. A run without a test
    curve (made before checks recorded it) says so in the legend.
    """
    plt = pyplot()
    ylabel, keys = METRICS[metric]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    marked = False
    for i, (label, run) in enumerate(runs.items()):
        group, color = _group(run), colors[i % len(colors)]
        for split in splits:
            _plot_split(ax, group, keys[split], STYLES[split], color,
                        f"{label}: {_split_name(split, metric)}")
        if len(group) == 1 and "val" in splits:
            history, best = group[0].get("history", []), group[0].get("best_check")
            if best is not None and 0 <= best < len(history):
                marked = True
                ax.plot([history[best]["epoch"]], [history[best][keys["val"]]], "o",
                        color=color, markersize=7, markerfacecolor="none")
    ax.set_xlabel("Epoch")
    ax.set_ylabel(ylabel)
    if metric == "accuracy":
        ax.set_ylim(top=1.0)
    ax.grid(alpha=0.3)
    ax.set_title(_marked_title(textwrap.fill(title or ylabel, 95), _all_runs(runs)),
                 fontsize=9)
    if marked:
        ax.plot([], [], "o", color="0.4", markerfacecolor="none",
                label="best checkpoint (chosen on validation, reported)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def _plot_split(ax, group: Sequence[dict], key: str, style: str, color: str,
                label: str) -> None:
    """One split's curve of a run, or of several seeds their mean ± std check by check (runs
    that stopped early drop out); a legend entry alone when no run recorded it."""
    longest = max(group, key=lambda r: len(r.get("history", [])))
    xs, mean, std = [], [], []
    for i, h in enumerate(longest.get("history", [])):
        values = [r["history"][i][key] for r in group
                  if i < len(r.get("history", [])) and r["history"][i].get(key) is not None]
        if values:
            xs.append(h["epoch"])
            mean.append(float(np.mean(values)))
            std.append(float(np.std(values)))
    if not xs:
        if key.startswith("test"):
            runs = "runs predate" if len(group) > 1 else "run predates"
            ax.plot([], [], style, color=color,
                    label=label.split(": ")[0] + ": " + NO_TEST_CURVE.format(runs=runs))
        return
    if len(group) > 1:
        label += f" (mean of {len(group)} seeds, band ±1 std)"
    ax.plot(xs, mean, style, color=color, label=label)
    if len(group) > 1:
        mean_a, std_a = np.array(mean), np.array(std)
        ax.fill_between(xs, mean_a - std_a, mean_a + std_a, color=color, alpha=0.15, linewidth=0)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation; std 0 for a single value."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std())


def format_mean_std(values: Sequence[float | None], digits: int = 3) -> str:
    """'-' for no value, the value for one, 'mean ± std' for several (None values skipped)."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def plot_run_files(json_paths: Sequence[Path | str], prefix: str, output_dir: Path | str,
                   labels: Sequence[str] | None = None, title: str = "") -> list[Path]:
    """Redraw `<prefix>_loss.png` and `<prefix>_accuracy.png` from saved run JSON files."""
    runs = {}
    for i, p in enumerate(json_paths):
        run = load_run(p)
        label = labels[i] if labels else run.get("config", {}).get("model", Path(p).stem)
        runs.setdefault(label, []).append(run)  # one label, several seeds: a band
    out = Path(output_dir)
    return [plot_runs(runs, m, out / f"{prefix}_{m}.png", title=f"{title} {m}".strip())
            for m in ("loss", "accuracy")]


def weights_label(config: dict) -> str:
    """A short label for figure titles: which weights a ResNet18 run or model started from.

    "NOT ImageNet": the file's SHA-256 is not that of torchvision's IMAGENET1K_V1 file."""
    if config.get("pretrained_source") == "imagenet":
        return "ImageNet weights (IMAGENET1K_V1)"
    return f"weights: {weights_file_name(config) or '?'}, NOT ImageNet"


def weights_file_name(config: dict) -> str:
    """The file name of the weights a ResNet18 run started from, '' when it recorded none."""
    weights = config.get("weights_file") or config.get("weights")
    return Path(str(weights)).name if weights else ""


def _first(run_or_runs) -> dict:
    return _group(run_or_runs)[0] if _group(run_or_runs) else {}


def _curves(prefix: str, runs: dict, out: Path | str, heading: str,
            metrics: Sequence[str] = ("loss", "accuracy")) -> list[Path]:
    return [plot_runs(runs, m, Path(out) / f"{prefix}_{m}.png", title=f"{heading} {m}")
            for m in metrics]


def draw_task1(lenet, out: Path | str) -> list[Path]:
    """Task 1a/1b: task1_loss.png and task1_accuracy.png of LeNet's run (or seeds)."""
    return _curves(RECIPES["lenet"].figure_prefix, {RECIPES["lenet"].label: lenet}, out,
                   "Task 1: LeNet")


def best_val_accuracy(run_or_runs) -> float | None:
    """The validation accuracy of a model's best checkpoints (mean over its seeds): from the
    final evaluation, else the best check of a run still going."""
    values = []
    for run in _group(run_or_runs):
        final = ((run.get("final") or {}).get("val") or {}).get("accuracy")
        checks = [h["val_accuracy"] for h in run.get("history", [])
                  if h.get("val_accuracy") is not None]
        value = final if final is not None else (max(checks) if checks else None)
        if value is not None:
            values.append(value)
    return float(np.mean(values)) if values else None


def best_model(models: dict, chosen: str | None = None) -> tuple[str, str]:
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


def draw_task2(models: dict, out: Path | str, suffix: str = "",
               best: str | None = None) -> list[Path]:
    """Task 2: task2_accuracy.png and task2_loss.png, both models ({label: run or seeds}) on
    one set of axes, and the best model alone (`best_model`; `best`: a label that --best-model
    chose): task2c_accuracy.png and task2d_loss.png (2c, 2d). `suffix`: a --run-suffix
    variant's files."""
    prefix = RECIPES["model21"].figure_prefix + suffix
    paths = _curves(prefix, models, out, "Task 2: both models,", ("accuracy", "loss"))
    label, why = best_model(models, best)
    for item, metric in (("c", "accuracy"), ("d", "loss")):
        paths.append(plot_runs({label: models[label]}, metric,
                               Path(out) / f"{prefix}{item}_{metric}.png",
                               title=f"Task 2{item}: {metric} of {label}, the best Task 2 model "
                                     f"({why})"))
    return paths


def draw_task3(resnet, out: Path | str) -> list[Path]:
    """Task 3b/3c: task3_accuracy.png and task3_loss.png of ResNet18's run (or seeds), the
    weights it started from in the title."""
    label = weights_label(_first(resnet).get("config") or {})
    return _curves(RECIPES["resnet18"].figure_prefix, {RECIPES["resnet18"].label: resnet}, out,
                   f"Task 3: ResNet18 ({label})", ("accuracy", "loss"))


COMPARISON_FIGURE = "task3d_loss_comparison.png"


def draw_task3d(models: dict, resnet, out: Path | str, best: str | None = None) -> Path:
    """Task 3d: task3d_loss_comparison.png, the training and validation loss of ResNet18 and
    of the best Task 2 model (`best_model` of `models`), from the saved histories."""
    label, why = best_model(models, best)
    weights = weights_label(_first(resnet).get("config") or {})
    return plot_runs({RECIPES["resnet18"].label: resnet, label: models[label]}, "loss",
                     Path(out) / COMPARISON_FIGURE, splits=("train", "val"),
                     title=f"Task 3d: loss of ResNet18 ({weights}) and {label}, the best "
                           f"Task 2 model ({why})")


def training_details(run_or_runs) -> str:
    """`training_data` in Markdown."""
    return to_markdown(training_data(run_or_runs))


def training_data(run_or_runs, title: str = "") -> Table:
    """Task 2a's (and 3a's) training details of a model, from its run config (several seeds:
    the first's, with every seed named): a table of everything needed to train it again."""
    group = _group(run_or_runs)
    config = group[0].get("config") or {}
    args, data = config.get("args") or {}, config.get("data") or {}
    model = config.get("model")

    recipe = RECIPES.get(model)

    def setting(name, flag=None):  # older runs kept some only among the flags, or not at all
        for value in (config.get(name), args.get(flag or name),
                      getattr(recipe, name, None) if name in ("optimizer",) else None):
            if value is not None:
                return value
        return None

    patience, epochs, metric = setting("patience"), setting("epochs"), \
        setting("stop_metric", "early_stop_metric")
    lr, batch_size = setting("lr"), setting("batch_size")
    optimizer = {"SGD": "SGD, no momentum", "Adam": "Adam, betas (0.9, 0.999), eps 1e-8"}.get(
        setting("optimizer"), str(setting("optimizer")))
    rows = [("optimizer", optimizer + ", no weight decay"),
            ("learning rate", f"{lr:g}" if lr else "?"),
            ("batch size", str(batch_size or "?")),
            ("epochs", f"{epochs or '?'}, the checkpoint with the best "
                       + ("validation accuracy" if metric == "val_accuracy" else "validation loss")
                       + (f"; early stop after {patience} checks (two an epoch) without a new "
                          "best" if patience else "; no early stopping")),
            ("weight initialisation", _initialisation(model, config, args)),
            ("regularisation", _regularisation(model, config, args)),
            ("loss", "cross-entropy on the logits (its softmax is the tables' Softmax)"),
            ("data", _data_details(config, data)),
            ("precision, device", f"{config.get('precision', '?')}, {config.get('device', '?')}"),
            ("seeds", ", ".join(str((r.get("config") or {}).get("seed", "?")) for r in group))]
    return Table(["setting", "value"], [list(r) for r in rows], title=title)


def _initialisation(model: str | None, config: dict, args: dict) -> str:
    if model == "resnet18":
        return (f"{weights_label(config)}; the new 512->10 fc: PyTorch's default; trains "
                f"{', '.join(config.get('train_stages') or ['?'])}, the rest frozen (their "
                "BatchNorm statistics too)")
    if args.get("init") == "xavier":
        return ("Xavier uniform for the convolution weights, zero convolution biases; "
                "PyTorch's default for the rest")
    return "PyTorch's default"


def _regularisation(model: str | None, config: dict, args: dict) -> str:
    extra = "no weight decay, no data augmentation"
    if model == "model22":
        return (f"Dropout2d p = {args.get('dropout', '?')} after the second convolution of "
                f"each block; BatchNorm after every convolution and the first dense layer; {extra}")
    if model == "model21":
        return f"BatchNorm after every convolution; no dropout; {extra}"
    return f"none; {extra}"


def _data_details(config: dict, data: dict) -> str:
    split = (f"{data['n_train']:,} train / {data.get('n_val', 0):,} validation (seeded) / "
             f"{data.get('n_test', 0):,} test images" if data.get("n_train") is not None
             else "?")
    mean, std = data.get("mean"), data.get("std")
    norm = (f"normalised with mean ({', '.join(f'{m:g}' for m in mean)}) and std "
            f"({', '.join(f'{v:g}' for v in std)})" if mean and std else "normalised")
    size = data.get("image_size") or 32
    resize = (f", upsampled to {size}x{size} ({data.get('resize_mode')})" if size != 32 else "")
    kernel = (config.get("args") or {}).get("kernel_size")
    return split + "; " + norm + resize + (f"; {kernel}x{kernel} kernels" if kernel else "")


# The handout's bar for Task 2: "at least 75 % test accuracy within 10 epochs".
BAR_EPOCHS, BAR_ACCURACY = 10, 0.75


def at_epoch(run: dict, key: str = "test_accuracy", epochs: float = BAR_EPOCHS
             ) -> tuple[float, float] | None:
    """(epoch, value) of `key` at the last check at or before `epochs` that recorded it."""
    checks = [(h["epoch"], h[key]) for h in run.get("history", [])
              if h.get(key) is not None and h["epoch"] <= epochs + 1e-9]
    return checks[-1] if checks else None


def ten_epoch_line(label: str, run_or_runs) -> str:
    """Whether a Task 2 model meets the handout's bar, as measured: its test accuracy at the
    last check at or before epoch 10 (from the test curve; several seeds: each, and their
    mean), never a number from a later or a chosen check."""
    group = _group(run_or_runs)
    tests = [at_epoch(r) for r in group]
    seeds = f" ({len(group)} seeds)" if len(group) > 1 else ""
    if not any(tests):
        vals = [v for v in (at_epoch(r, "val_accuracy") for r in group) if v]
        return (f"{label}: test accuracy within {BAR_EPOCHS} epochs not recorded: the "
                f"run{'s predate' if len(group) > 1 else ' predates'} the test curve"
                + (f" (validation accuracy at epoch {vals[-1][0]:.1f}: "
                   f"{format_mean_std([v for _, v in vals], 4)}{seeds})" if vals else ""))
    measured = [t for t in tests if t]
    short = [r for r in group if r.get("history") and r["history"][-1]["epoch"] < BAR_EPOCHS - 0.01
             and r.get("status") != "running"]
    reached = sum(v >= BAR_ACCURACY for _, v in measured)
    verdict = ("reaches" if reached == len(measured) else "misses" if not reached else
               f"reaches it in {reached} of {len(measured)} seeds,")
    return (f"{label}: test accuracy {format_mean_std([v for _, v in measured], 4)}{seeds} "
            f"at epoch {max(e for e, _ in measured):.1f} (the last check at or before epoch "
            f"{BAR_EPOCHS}): {verdict} the handout's bar of {BAR_ACCURACY:.2f}"
            + (f" ({len(group) - len(measured)} seed(s) without a test curve)"
               if len(measured) < len(group) else "")
            + (f"; {'its runs' if len(group) > 1 else 'it'} trained "
               f"{max(r['history'][-1]['epoch'] for r in short):.0f} epochs only"
               if short else ""))


def final_data(runs: dict[str, dict | list[dict]], reference: dict[str, dict] | None = None,
               title: str = "") -> Table:
    """The Task 2.2-style table (test/val/train loss and accuracy per run).

    A value of `runs` may be a list of runs (seeds): its cells are 'mean ± std'.
    `reference` rows (the original report's numbers) are added below ours with '(report)'
    after the name; a missing value prints as '-'.
    """
    cols = [("test", "loss"), ("test", "accuracy"), ("val", "loss"), ("val", "accuracy"),
            ("train", "loss"), ("train", "accuracy")]
    header = ["model"] + [f"{s} {'acc' if m == 'accuracy' else m}" for s, m in cols]

    def row(name, finals):
        return [name] + [format_mean_std([(f or {}).get(s, {}).get(m) for f in finals], digits=3)
                         for s, m in cols]

    rows = []
    for name, run in runs.items():
        group = run if isinstance(run, (list, tuple)) else [run]
        note = quick_look_note(group)
        rows.append(row(name + (f" ({len(group)} seeds)" if len(group) > 1 else "")
                        + (f", {note}" if note else ""), [r.get("final") for r in group]))
    for name, final in (reference or {}).items():
        rows.append(row(f"{name} (report)", [final]))
    return Table(header, rows, title=title)


def final_table(runs: dict[str, dict | list[dict]],
                reference: dict[str, dict] | None = None) -> tuple[str, str]:
    """`final_data` as (fixed-width text, Markdown)."""
    table = final_data(runs, reference)
    rows, header = table.rows, table.header
    w0 = max(len(r[0]) for r in rows + [header])
    w = max(len(c) for r in rows + [header] for c in r[1:]) + 2
    text = "\n".join(f"{r[0]:<{w0}}" + "".join(f"{c:>{w}}" for c in r[1:]) for r in [header] + rows)
    return text, to_markdown(table)


def _group(run_or_runs) -> list[dict]:
    return list(run_or_runs) if isinstance(run_or_runs, (list, tuple)) else [run_or_runs]


def _test_final(run: dict) -> dict:
    return (run.get("final") or {}).get("test") or {}


def confusion_counts(run_or_runs) -> tuple[np.ndarray | None, int]:
    """The test confusion matrix (row = true class, column = predicted), summed over the
    runs that recorded one, and how many did; (None, 0) when none did."""
    matrices = [np.asarray(_test_final(r)["confusion_matrix"], dtype=np.int64)
                for r in _group(run_or_runs) if _test_final(r).get("confusion_matrix")]
    if not matrices:
        return None, 0
    return np.sum(matrices, axis=0), len(matrices)


def plot_confusion(run_or_runs: dict | Sequence[dict], path: Path | str, title: str = "",
                   classes: Sequence[str] | None = None) -> Path:
    """The test confusion matrix of a run (several seeds of one model: their counts summed,
    as the title says): counts in the cells, colour = the share of the true class (row),
    the diagonal is each class's accuracy. Needs final["test"]["confusion_matrix"]."""
    if classes is None:
        from dataloaders import CLASSES as classes
    counts, n_runs = confusion_counts(run_or_runs)
    if counts is None:
        raise ValueError("no run has a test confusion matrix (final['test']"
                         "['confusion_matrix']; runs made before it was recorded have none)")
    if counts.shape != (len(classes), len(classes)):
        raise ValueError(f"confusion matrix of shape {counts.shape} for {len(classes)} classes")
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float),
                       where=totals > 0)
    n_total = len(_group(run_or_runs))
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
    head = _marked_title(title or "Test confusion matrix", _group(run_or_runs))
    ax.set_title(f"{head}\n(test accuracy {accuracy:.4f}"
                 + (f"; {summed}" if n_runs > 1 or n_runs != n_total else "") + ")",
                 fontsize=10)
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("share of the true class (row; square-root scale)")
    fig.tight_layout()
    return save_figure(fig, path)


def most_confused(counts: np.ndarray, classes: Sequence[str], n: int = 3
                  ) -> list[tuple[str, str, int, float]]:
    """The `n` largest off-diagonal cells: (true, predicted, count, share of the true class);
    ties by class order."""
    totals = counts.sum(axis=1)
    cells = [(-int(counts[i, j]), i, j) for i in range(len(classes))
             for j in range(len(classes)) if i != j and counts[i, j] > 0]
    return [(classes[i], classes[j], -c, -c / totals[i] if totals[i] else float("nan"))
            for c, i, j in sorted(cells)[:n]]


def per_class_data(runs: dict[str, dict | Sequence[dict]],
                   classes: Sequence[str] | None = None, title: str = "") -> Table:
    """Per-class test accuracy, one row per class and one column per model (several seeds:
    mean ± std), '-' where a run has no per-class data; a last row with the overall test
    accuracy."""
    if classes is None:
        from dataloaders import CLASSES as classes
    groups = {label: _group(group) for label, group in runs.items()}
    header = ["class"] + [label + (f" ({len(g)} seeds)" if len(g) > 1 else "")
                          for label, g in groups.items()]
    rows = [[name] + [format_mean_std(
        [(_test_final(r).get("per_class_accuracy") or [None] * len(classes))[k] for r in g],
        digits=3) for g in groups.values()] for k, name in enumerate(classes)]
    rows.append(["**all (test accuracy)**"] + [
        format_mean_std([_test_final(r).get("accuracy") for r in g], digits=3)
        for g in groups.values()])
    return Table(header, rows, title=title)


def confused_data(runs: dict[str, dict | Sequence[dict]],
                  classes: Sequence[str] | None = None, title: str = "") -> Table:
    """Each model's three most confused (true -> predicted) pairs, from the confusion counts
    summed over its seeds."""
    if classes is None:
        from dataloaders import CLASSES as classes
    rows = []
    for label, group in runs.items():
        group = _group(group)
        counts, n_runs = confusion_counts(group)
        if counts is None:
            finals = [r.get("final") for r in group]
            why = ("no final evaluation in its run file yet (status "
                   + ", ".join(sorted({str(r.get('status', '?')) for r in group})) + ")"
                   if not any(finals) else "no per-class data (the run predates it)")
            rows.append([label, why, None, None])
            continue
        summed = f" (summed over {n_runs} seeds)" if n_runs > 1 else ""
        rows += [[label + summed, f"{t} -> {p}", f"{c:,}", f"{s:.1%}"]
                 for t, p, c, s in most_confused(counts, classes)]
    return Table(["model", "true -> predicted", "test images", "share of the true class"],
                 rows, title=title)


def per_class_table(runs: dict[str, dict | Sequence[dict]],
                    classes: Sequence[str] | None = None) -> str:
    """`per_class_data` and `confused_data` in Markdown."""
    return (to_markdown(per_class_data(runs, classes)) + "\n"
            + to_markdown(confused_data(runs, classes,
                                        "Most confused (true -> predicted)")))


def get_args_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="plots.py",
        description="Redraw <prefix>_loss.png and <prefix>_accuracy.png from saved run JSON "
                    "files, without retraining (several seeds of one model: a mean ± std band).")
    parser.add_argument("runs", nargs="+", help="run JSON files (e.g. plots/task1_lenet.json)")
    parser.add_argument("--prefix", default=None,
                        help="figure file prefix (default: the first run's 'figure_prefix')")
    parser.add_argument("--output-dir", default=None,
                        help="where the figures go (default: beside the first run)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def main(args: argparse.Namespace) -> list[Path]:
    first = load_run(args.runs[0])
    prefix = args.prefix or first.get("figure_prefix") or Path(args.runs[0]).stem
    out = ensure_output_dir(args.output_dir or Path(args.runs[0]).parent)
    paths = plot_run_files(args.runs, prefix, out)
    for path in paths:
        print(f"wrote {path}")
    return paths


if __name__ == "__main__":
    run_cli(main, get_args_parser())
