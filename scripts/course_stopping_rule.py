"""Where would the course code's early stopping have ended a saved run? (README, Model 2.1)

The author's `Trainer.should_early_stop` (kristaha/TDT4265, Assignment_3/code/starter_code.py)
stops when the last 4 validation losses never decrease, i.e. the loss rose (or stayed) three
checks in a row, and the report's numbers were printed from 4 checks back
(`trainer.VALIDATION_ACC[-trainer.early_stop_count]`). This replays that rule over the history
of runs this project saved: checks twice an epoch as in the course's `validation_check`, and
once an epoch (one version of that file had the in-epoch validation commented out).

    python scripts/course_stopping_rule.py plots/task2_model21.json plots/task2_model22.json

It reads only the JSON; nothing is trained. Our history stops where our own rule stopped, so
"does not fire" means "not within the recorded checks".
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cli import ArgumentParser, run_cli  # noqa: E402
from runs import load_run  # noqa: E402

COUNT = 4  # the course's early_stop_count


def course_stop(val_losses: list[float], count: int = COUNT) -> int | None:
    """Index of the check at which the course rule stops, or None if it never does."""
    for i in range(count - 1, len(val_losses)):
        window = val_losses[i - count + 1:i + 1]
        if all(b >= a for a, b in zip(window, window[1:])):
            return i
    return None


def replay(history: list[dict], per_epoch: bool) -> dict:
    checks = history[1::2] if per_epoch else history  # checks come twice an epoch
    stop = course_stop([h["val_loss"] for h in checks])
    result = {"recorded_to": checks[-1]["epoch"] if checks else None,
              "best_val_accuracy": max((h["val_accuracy"] for h in checks), default=None)}
    if stop is None:
        return {**result, "stop_epoch": None}
    reported = checks[stop - COUNT + 1]
    return {**result, "stop_epoch": checks[stop]["epoch"], "reported_epoch": reported["epoch"],
            "reported_val_accuracy": reported["val_accuracy"],
            "reported_val_loss": reported["val_loss"],
            "best_val_accuracy_so_far": max(h["val_accuracy"] for h in checks[:stop + 1])}


def get_args_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run JSON files written by the task scripts")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def main(args: argparse.Namespace) -> None:
    print(f"{'run':<34} {'checks':<10} {'stops at':>8} {'reports':>8} {'val acc':>8} "
          f"{'val loss':>8} {'best val acc':>12}")
    for path in args.runs:
        history = load_run(path)["history"]
        if len(history) < 2:
            print(f"{Path(path).stem:<34} fewer than two checks recorded: nothing to replay")
            continue
        for per_epoch in (False, True):
            r = replay(history, per_epoch)
            where = "1/epoch" if per_epoch else "2/epoch"
            if r["stop_epoch"] is None:
                print(f"{Path(path).stem:<34} {where:<10} does not fire within the recorded "
                      f"checks (to epoch {r['recorded_to']}; best val acc "
                      f"{r['best_val_accuracy']:.4f})")
                continue
            print(f"{Path(path).stem:<34} {where:<10} {r['stop_epoch']:>8.1f} "
                  f"{r['reported_epoch']:>8.1f} {r['reported_val_accuracy']:>8.4f} "
                  f"{r['reported_val_loss']:>8.4f} {r['best_val_accuracy_so_far']:>12.4f}")


if __name__ == "__main__":
    run_cli(main, get_args_parser())
