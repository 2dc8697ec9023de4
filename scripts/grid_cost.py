"""What a Task 2e grid run costs, measured side by side in one process: the same variant and
seed trained by `task2_experiments.py` as the grid trains it (the validation split at every
check, the test split at the last check and at the best weights, nothing of the training
split) and with `--full-curves` (what every grid run measured before: the test split and a
training subset at every check, the whole training split at the end). The two alternate,
`--repeats` times each, every run into a fresh folder; each run's training time (its run
file's `timings.train_s`: the steps, the checks and the final evaluation) is compared.

    python scripts/grid_cost.py DATA --epochs 2 --repeats 2 --json results/cpu-2026-12-06/grid_cost.json

Nothing is tested here: it is a benchmark, to run alone on an idle machine (one thread, as
every grid run on the CPU).
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

import task2_experiments
from training.cli import ArgumentParser, add_debug_arg, positive_int, run_cli
from training.storage import atomic_write_json
from utils import environment

MODES = {"grid": [], "full curves": ["--full-curves"]}


def get_args_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="scripts/grid_cost.py",
                            description="A Task 2e grid run's training time, as the grid "
                                        "measures and with --full-curves, side by side.")
    parser.add_argument("data", help="the CIFAR-10 copy (any source --data-dir accepts)")
    parser.add_argument("--variant", default="lenet", help="the variant (default: lenet)")
    parser.add_argument("--epochs", type=positive_int, default=2,
                        help="epochs per run (default: 2)")
    parser.add_argument("--repeats", type=positive_int, default=2,
                        help="runs of each way, alternating (default: 2)")
    parser.add_argument("--json", default=None, metavar="PATH", help="write the results here")
    add_debug_arg(parser)
    return parser


def one_run(args, flags: list[str], folder: Path) -> dict:
    argv = ["--only", args.variant, "--seeds", "1", "--epochs", str(args.epochs),
            "--parallel", "1", "--device", "cpu", "--data-dir", args.data, "--output-dir",
            str(folder), "--no-progress", *flags]
    run_args = task2_experiments.get_args_parser().parse_args(argv)
    run_args.command = "python task2_experiments.py " + " ".join(argv)
    start = time.perf_counter()
    task2_experiments.main(run_args)
    wall = time.perf_counter() - start
    run = json.loads((folder / "experiments" / f"{args.variant}_seed0.json").read_text())
    return {"train_s": run["timings"]["train_s"], "wall_s": round(wall, 2),
            "threads": run["config"]["environment"]["threads"]}


def main(args: argparse.Namespace) -> dict:
    times = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="grid-cost-") as tmp:
        for r in range(args.repeats):
            for mode, flags in MODES.items():
                result = one_run(args, flags, Path(tmp) / f"{mode.replace(' ', '-')}-{r}")
                times[mode].append(result)
                print(f"{mode:>11}, run {r + 1}: {result['train_s']:.1f} s training "
                      f"({result['threads']} thread)", flush=True)
    mean = {mode: statistics.mean(t["train_s"] for t in runs) for mode, runs in times.items()}
    ratio = mean["grid"] / mean["full curves"]
    print(f"mean training time: grid {mean['grid']:.1f} s, full curves "
          f"{mean['full curves']:.1f} s; grid / full curves = {ratio:.3f}")
    result = {"variant": args.variant, "epochs": args.epochs, "repeats": args.repeats,
              "runs": times, "mean_train_s": mean, "ratio": round(ratio, 4),
              "torch": torch.__version__, "environment": environment(),
              "date": datetime.now(UTC).isoformat(timespec="seconds"),
              "command": getattr(args, "command", None)}
    if args.json:
        atomic_write_json(args.json, result)
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    run_cli(main, get_args_parser())
