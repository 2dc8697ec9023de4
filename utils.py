"""Shared helpers: device choice, seeding, atomic writes, command-line plumbing, the
parameter table, and every figure drawn from a saved run.

Nothing here imports the rest of the project; everything else imports this.
Figures are drawn from the run JSON that `trainer.Trainer` writes, never from a live
model, so a figure can be redrawn without retraining:

    python utils.py plot plots/task1_lenet.json        # redraws task1_loss.png / accuracy
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

PROJECT_DIR = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- errors and CLI
class UserError(Exception):
    """A mistake the user can fix. The CLI prints its message as one line, no traceback.

    exit_code 2 is a usage error (bad flag), 1 anything else (bad data, weights, folder).
    """

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class TrainingInterrupted(Exception):
    """Raised after a Ctrl-C has been handled (everything written); the CLI exits 130."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (what is wrong, where to look), exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run_cli(main: Callable[[argparse.Namespace], object], parser: argparse.ArgumentParser,
            argv: Sequence[str] | None = None) -> None:
    """Parse arguments, run `main`, and turn known failures into one line and an exit code.

    User errors -> one line on stderr, exit 2 (usage) or 1. Ctrl-C -> exit 130.
    `--debug` re-raises so that the traceback is shown (for bug reports).
    """
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        main(args)
    except UserError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except TrainingInterrupted as err:
        print(str(err), file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stderr.close()
        sys.exit(0)
    except (MemoryError, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)) as err:
        if debug:
            raise
        print(f"error: out of memory ({type(err).__name__}); try a smaller --batch-size "
              "or --subset", file=sys.stderr)
        sys.exit(1)


def _number(kind: type, lo: float | None, hi: float | None, lo_open: bool = False):
    """argparse type: a number of `kind` in [lo, hi] (lo exclusive when lo_open)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not np.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if lo is not None and (value <= lo if lo_open else value < lo):
            raise argparse.ArgumentTypeError(
                f"{text} is out of range: must be {'>' if lo_open else '>='} {lo}")
        if hi is not None and value > hi:
            raise argparse.ArgumentTypeError(f"{text} is out of range: must be <= {hi}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


positive_int = _number(int, 1, None)
non_negative_int = _number(int, 0, None)
positive_float = _number(float, 0.0, None, lo_open=True)


def add_device_args(group) -> None:
    """--device, --precision, --channels-last: how every script runs (training, benchmark)."""
    group.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto",
                       help="auto picks CUDA, then MPS, then the CPU (default: auto)")
    group.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                       help="bf16 autocast or plain fp32; auto uses bf16 where the device "
                            "supports it fast (CUDA, CPUs with AVX-512 BF16) (default: auto)")
    group.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                       help="channels_last memory format for images and convolutions; auto "
                            "turns it on for CUDA and the CPU (default: auto)")


def file_sha256(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def add_common_args(parser: argparse.ArgumentParser, *, epochs: int | None, batch_size: int | None,
                    lr: float | None, run_name: str | None = None, patience: int | None = 4,
                    stop_metric: str | None = "val_loss") -> None:
    """The flags every training script takes (the core issue), with the task's defaults.

    None for epochs/batch_size/lr/patience/stop_metric means the script chooses per model
    (task 2); the help says so.
    """
    g = parser.add_argument_group("common training options")
    g.add_argument("--data-dir", default=None, metavar="PATH",
                   help="CIFAR-10 source: a torchvision root (cifar-10-batches-py/ or "
                        "cifar-10-python.tar.gz), an image-folder tree train/<class>/*, "
                        "test/<class>/*, or a .tar.gz/.zip of one (default: download with "
                        "torchvision into data/)")
    g.add_argument("--epochs", type=positive_int, default=epochs,
                   help="maximum number of epochs (default: "
                        f"{epochs if epochs is not None else 'per model, see above'})")
    g.add_argument("--batch-size", type=positive_int, default=batch_size,
                   help="training batch size (default: "
                        f"{batch_size if batch_size is not None else 'per model, see above'})")
    g.add_argument("--lr", type=positive_float, default=lr,
                   help=f"learning rate (default: {lr if lr is not None else 'per model, see above'})")
    g.add_argument("--patience", type=non_negative_int, default=patience,
                   help="early stopping: stop after this many checks (two per epoch) without "
                        "a new best; 0 never stops early (default: "
                        f"{patience if patience is not None else 'per model, see above'})")
    g.add_argument("--early-stop-metric", choices=["val_loss", "val_accuracy"],
                   default=stop_metric,
                   help="what picks the best checkpoint (the one reported) and drives early "
                        "stopping (default: "
                        f"{stop_metric if stop_metric is not None else 'per model, see above'})")
    g.add_argument("--seed", type=int, default=0,
                   help="seed for the validation split, initialisation and batch order "
                        "(default: 0)")
    g.add_argument("--seeds", type=positive_int, default=1, metavar="N",
                   help="train N times, with seeds --seed, --seed+1, ...; the runs are named "
                        "<run>_seed<k> and the figures show their mean and standard "
                        "deviation (default: 1)")
    add_device_args(g)
    g.add_argument("--subset", type=positive_int, default=None, metavar="N",
                   help="use at most N images of each split, for a quick look (default: all)")
    g.add_argument("--output-dir", default="plots", metavar="DIR",
                   help="where the run JSON, checkpoint and figures go (default: plots)")
    if run_name is not None:
        g.add_argument("--run-name", default=run_name,
                       help=f"file name stem of the run's JSON and checkpoint (default: {run_name})")
    g.add_argument("--resume", action="store_true",
                   help="continue the run from its checkpoint in --output-dir")
    g.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    g.add_argument("--debug", action="store_true", help="show tracebacks of errors")


# --------------------------------------------------------------------------- device, seeds
def get_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA, then MPS, then CPU. An explicit device that is absent is a UserError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but PyTorch sees no CUDA GPU here; "
                        "use --device auto or --device cpu", exit_code=2)
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None
                              and torch.backends.mps.is_available()):
        raise UserError("--device mps was asked for, but MPS is not available here; "
                        "use --device auto or --device cpu", exit_code=2)
    if name not in ("cpu", "cuda", "mps"):
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda or mps", exit_code=2)
    return torch.device(name)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`, or None for plain fp32."""
    if precision == "fp32":
        return None
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
    elif device.type == "cpu":
        # Fast bf16 needs AVX-512 BF16 (or AMX); elsewhere it is emulated and slower.
        supported = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    else:
        supported = False
    if precision == "bf16" and not supported and device.type != "cpu":
        raise UserError(f"--precision bf16 is not supported on {device}; use fp32", exit_code=2)
    if precision == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if supported else None


def resolve_channels_last(choice: str, device: torch.device) -> bool:
    if choice == "auto":
        return device.type in ("cuda", "cpu")
    return choice == "on"


def setup_run(args, output_dir: Path | str | None = None
              ) -> tuple[torch.device, torch.dtype | None, bool]:
    """The common start of every script that trains: check the output folder (before any
    training; default args.output_dir), choose the device, precision and memory format
    once, and seed."""
    ensure_output_dir(output_dir or args.output_dir)
    device = get_device(args.device)
    autocast_dtype = resolve_precision(args.precision, device)
    channels_last = resolve_channels_last(args.channels_last, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest kernels
    seed_everything(args.seed)
    return device, autocast_dtype, channels_last


def seed_runs(args) -> list[tuple[int, str]]:
    """(seed, run-name suffix) for each run that --seed/--seeds ask for."""
    n = getattr(args, "seeds", 1)
    if n == 1:
        return [(args.seed, "")]
    return [(args.seed + i, f"_seed{args.seed + i}") for i in range(n)]


def find_runs(output_dir: Path | str, run_name: str) -> list[Path]:
    """`<run_name>.json`, or the `<run_name>_seed<k>.json` of a --seeds run (all of them)."""
    out = Path(output_dir)
    seeded = sorted(out.glob(f"{run_name}_seed*.json"),
                    key=lambda p: int(p.stem.rsplit("_seed", 1)[1]) if p.stem.rsplit("_seed", 1)[1].isdigit() else 0)
    if seeded:
        return seeded
    single = out / f"{run_name}.json"
    return [single] if single.is_file() else []


def make_config(args, device: torch.device, autocast_dtype: torch.dtype | None,
                channels_last: bool, data_info: dict, **extra) -> dict:
    """Everything a run's outputs should carry: flags, resolved device, data, versions."""
    flags = {k: v for k, v in vars(args).items() if k not in ("debug", "no_progress")}
    config = {"args": flags, "device": str(device),
              "precision": "bf16" if autocast_dtype is not None else "fp32",
              "channels_last": channels_last, "data": data_info,
              "environment": environment(), "command": " ".join(["python", *sys.argv]),
              **extra}
    # Plain JSON types only (torch.__version__ is a str subclass that weights_only=True
    # checkpoints refuse), so the config goes into the JSON and the checkpoint alike.
    return json.loads(json.dumps(config, default=str))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch. Called from main(), never at import."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def environment() -> dict:
    """Versions and hardware, stored in every run's config."""
    info = {"torch": str(torch.__version__), "python": sys.version.split()[0],
            "threads": torch.get_num_threads()}
    try:
        import torchvision
        info["torchvision"] = str(torchvision.__version__)
    except ImportError:  # pragma: no cover
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


# --------------------------------------------------------------------------- files
def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path | str, obj) -> None:
    def write(tmp: str):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
    _atomic_write(Path(path), write)


def atomic_write_text(path: Path | str, text: str) -> None:
    def write(tmp: str):
        with open(tmp, "w") as f:
            f.write(text)
    _atomic_write(Path(path), write)


def atomic_torch_save(obj, path: Path | str) -> None:
    def write(tmp: str):
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
    _atomic_write(Path(path), write)


def load_checkpoint(path: Path | str) -> dict:
    """Load a checkpoint dict with weights_only=True; a bad file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}; train first (the task script writes it)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(f"{path} is not a readable PyTorch checkpoint ({type(err).__name__}); "
                        "delete it and train again") from None
    if not isinstance(ckpt, dict):
        raise UserError(f"{path} does not hold a checkpoint dict; delete it and train again")
    return ckpt


def ensure_output_dir(path: Path | str) -> Path:
    """Create the output folder and prove it is writable before any training starts."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"cannot write to output folder {path} ({err.strerror or err}); "
                        "choose another with --output-dir") from None
    return path


def load_run(path: Path | str) -> dict:
    """Read a run JSON written by the Trainer; a missing or broken file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no saved run at {path}")
    try:
        run = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path} is not a valid run JSON; rerun the task that writes it") from None
    if not isinstance(run, dict) or "history" not in run:
        raise UserError(f"{path} has no 'history'; it is not a run written by this project")
    return run


# --------------------------------------------------------------------------- parameter table
def parameter_table(model: torch.nn.Module) -> tuple[list[dict], int]:
    """One row per module that owns parameters directly: name, type, weights, biases, total."""
    rows = []
    for name, module in model.named_modules():
        own = dict(module.named_parameters(recurse=False))
        if not own:
            continue
        weights = sum(p.numel() for k, p in own.items() if k != "bias")
        biases = own["bias"].numel() if "bias" in own and own["bias"] is not None else 0
        trainable = any(p.requires_grad for p in own.values())
        rows.append({"layer": name, "type": type(module).__name__, "weights": weights,
                     "biases": biases, "total": weights + biases, "trainable": trainable})
    return rows, sum(r["total"] for r in rows)


def format_parameter_table(model: torch.nn.Module, title: str = "") -> str:
    rows, total = parameter_table(model)
    width = max([len(r["layer"]) for r in rows] + [5])
    lines = [title] if title else []
    lines.append(f"{'layer':<{width}}  {'type':<12} {'weights':>10} {'biases':>8} {'total':>10}")
    for r in rows:
        lines.append(f"{r['layer']:<{width}}  {r['type']:<12} {r['weights']:>10,} "
                     f"{r['biases']:>8,} {r['total']:>10,}")
    lines.append(f"{'total':<{width}}  {'':<12} {'':>10} {'':>8} {total:>10,}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- figures
def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # headless: files only, never a window
    import matplotlib.pyplot as plt
    return plt


METRICS = {"loss": ("train_loss", "val_loss", "Cross-entropy loss"),
           "accuracy": ("train_accuracy", "val_accuracy", "Accuracy")}


def plot_runs(runs: dict[str, dict], metric: str, path: Path | str, title: str = "",
              splits: Iterable[str] = ("train", "val")) -> Path:
    """Plot `metric` ('loss' or 'accuracy') of each run against epochs; train and validation.

    `runs` maps a legend label to a run dict (as written by the Trainer). The best
    checkpoint (the one reported) is marked on each validation curve.
    """
    plt = _pyplot()
    train_key, val_key, ylabel = METRICS[metric]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, run) in enumerate(runs.items()):
        color = colors[i % len(colors)]
        if isinstance(run, (list, tuple)):  # several seeds: mean and a ±1 std band
            if len(run) == 1:
                run = run[0]
            else:
                _plot_band(ax, run, train_key if "train" in splits else None,
                           val_key if "val" in splits else None, color, label, metric)
                continue
        history = run.get("history", [])
        epochs = [h["epoch"] for h in history]
        if "train" in splits:
            ys = [h.get(train_key) for h in history]
            what = "train (mean since last check)" if metric == "loss" else "train (fixed subset)"
            ax.plot(epochs, ys, "--", color=color, label=f"{label}: {what}")
        if "val" in splits:
            ax.plot(epochs, [h[val_key] for h in history], "-", color=color,
                    label=f"{label}: validation")
            best = run.get("best_check")
            if best is not None and 0 <= best < len(history):
                ax.plot([history[best]["epoch"]], [history[best][val_key]], "o", color=color,
                        markersize=7, markerfacecolor="none")
    ax.set_xlabel("Epoch")
    ax.set_ylabel(ylabel)
    if metric == "accuracy":
        ax.set_ylim(top=1.0)
    ax.grid(alpha=0.3)
    ax.set_title(title or ylabel)
    ax.legend(fontsize=8)
    if any(isinstance(r, dict) and r.get("best_check") is not None for r in runs.values()):
        ax.text(0.99, 0.01, "o = best checkpoint (reported)", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=7, color="0.4")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plot_band(ax, group: Sequence[dict], train_key: str | None, val_key: str | None,
               color: str, label: str, metric: str) -> None:
    """Mean ± std over runs, check by check (runs that stopped early drop out)."""
    longest = max(group, key=lambda r: len(r.get("history", [])))
    for key, style, what in ((train_key, "--", "train"), (val_key, "-", "validation")):
        if key is None:
            continue
        xs, mean, std = [], [], []
        for i, h in enumerate(longest["history"]):
            values = [r["history"][i][key] for r in group
                      if i < len(r.get("history", [])) and r["history"][i].get(key) is not None]
            if values:
                xs.append(h["epoch"])
                mean.append(float(np.mean(values)))
                std.append(float(np.std(values)))
        mean_a, std_a = np.array(mean), np.array(std)
        ax.plot(xs, mean, style, color=color,
                label=f"{label}: {what} (mean of {len(group)} seeds, band ±1 std)")
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


def final_table(runs: dict[str, dict | list[dict]],
                reference: dict[str, dict] | None = None) -> tuple[str, str]:
    """The Task 2.2-style table (test/val/train loss and accuracy per run).

    A value of `runs` may be a list of runs (seeds): its cells are 'mean ± std'.
    Returns (fixed-width text, Markdown). `reference` rows (the original report's numbers)
    are added below ours with '(report)' after the name; a missing value prints as '-'.
    """
    cols = [("test", "loss"), ("test", "accuracy"), ("val", "loss"), ("val", "accuracy"),
            ("train", "loss"), ("train", "accuracy")]
    header = ["model"] + [f"{s} {'acc' if m == 'accuracy' else m}" for s, m in cols]

    def cell(finals: list, split: str, metric: str) -> str:
        return format_mean_std([(f or {}).get(split, {}).get(metric) for f in finals], digits=3)

    def row(name, finals):
        return [name] + [cell(finals, s, m) for s, m in cols]

    rows = []
    for name, run in runs.items():
        group = run if isinstance(run, (list, tuple)) else [run]
        rows.append(row(name + (f" ({len(group)} seeds)" if len(group) > 1 else ""),
                        [r.get("final") for r in group]))
    for name, final in (reference or {}).items():
        rows.append(row(f"{name} (report)", [final]))
    w0 = max(len(r[0]) for r in rows + [header])
    w = max(len(c) for r in rows + [header] for c in r[1:]) + 2
    text = "\n".join(f"{r[0]:<{w0}}" + "".join(f"{c:>{w}}" for c in r[1:]) for r in [header] + rows)
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    return text, "\n".join(md) + "\n"


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


# --------------------------------------------------------------------------- entry point
def get_args_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        description="Redraw figures from saved run JSON files, without retraining.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plot", help="draw <prefix>_loss.png and <prefix>_accuracy.png")
    p.add_argument("runs", nargs="+", help="run JSON files (e.g. plots/task1_lenet.json)")
    p.add_argument("--prefix", default=None,
                   help="figure file prefix (default: the first run's 'figure_prefix')")
    p.add_argument("--output-dir", default=None,
                   help="where the figures go (default: beside the first run)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def main(args: argparse.Namespace) -> None:
    if args.command == "plot":
        first = load_run(args.runs[0])
        prefix = args.prefix or first.get("figure_prefix") or Path(args.runs[0]).stem
        out = ensure_output_dir(args.output_dir or Path(args.runs[0]).parent)
        for path in plot_run_files(args.runs, prefix, out):
            print(f"wrote {path}")


if __name__ == "__main__":
    run_cli(main, get_args_parser())
