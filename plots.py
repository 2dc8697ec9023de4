"""Redraw a run's figures from its saved run file, without retraining:

    python plots.py plots/task1_lenet.json        # redraws task1_loss.png / task1_accuracy.png
    python plots.py plots/task2_model21_seed*.json --prefix task2_seeds   # seeds: a band

The figures themselves are `reporting.figures`' (the task scripts and report.py draw them
with the same functions).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from reporting.figures import plot_run_files
from training.cli import ArgumentParser, add_debug_arg, run_cli
from training.record import Run
from training.storage import ensure_output_dir


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
    add_debug_arg(parser)
    return parser


def main(args: argparse.Namespace) -> list[Path]:
    first = Run.load(args.runs[0])
    prefix = args.prefix or first.figure_prefix or Path(args.runs[0]).stem
    out = ensure_output_dir(args.output_dir or Path(args.runs[0]).parent)
    paths = plot_run_files(args.runs, prefix, out)
    for path in paths:
        print(f"wrote {path}")
    return paths


if __name__ == "__main__":
    run_cli(main, get_args_parser())
