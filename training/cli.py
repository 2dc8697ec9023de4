"""Command-line plumbing shared by every script: the one wording of training's typed errors
(`describe`, `explain`; the errors themselves are `training.errors`), one-line user errors and
exit codes (`run_cli`), argparse with one-line usage errors, number types, and the flags every
script shares (`add_common_args`, `add_debug_arg`, ...).

Nothing here imports the project but the typed errors and the table of the models
(`training.recipes`).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence

import numpy as np

from training.errors import (
    Interrupted,
    OutOfMemory,
    TrainingDiverged,
    TrainingInterrupted,
    UserError,
    is_out_of_memory,
)
from training.recipes import TASK2


def resume_command(args) -> str:
    """The command that continues `args`' run: its recorded command with --resume."""
    command = getattr(args, "command", None)
    if not command:
        return "the same command and --resume"
    try:
        words = shlex.split(command)
    except ValueError:  # not a command this project recorded: keep it as it is
        return f"{command} --resume"
    return shlex.join([w for w in words if w != "--resume"] + ["--resume"])


def _diverged(err: TrainingDiverged, advice: str = "") -> str:
    return (f"the training loss became NaN or infinite at step {err.step} (epoch "
            f"{err.epoch:.2f}) with learning rate {err.lr:g}{advice}. The run so far and its "
            f"best weights are in {err.saved[0]} and {err.saved[1]}")


def _saved_text(err: OutOfMemory) -> str:
    if err.last_epoch is None:
        return "no check had finished, nothing was saved"
    return (f"the run up to its last check (epoch {err.last_epoch:.2f}) is in "
            f"{err.saved[0]} and {err.saved[1]}")


def describe(err: BaseException) -> str:
    """What happened, in one line: the text of every typed error of training
    (`training.errors`)."""
    if isinstance(err, TrainingInterrupted):
        return (f"interrupted at epoch {err.epoch:.2f} (step {err.step}); saved "
                f"{err.saved[0]} and {err.saved[1]}")
    if isinstance(err, TrainingDiverged):
        return _diverged(err)
    if isinstance(err, OutOfMemory):
        return (f"out of memory on {err.device_type} "
                + ("while evaluating" if err.during == "evaluating" else "in a training step")
                + f" (batch size {err.batch_size}); {_saved_text(err)}")
    return Exception.__str__(err)


def explain(err: BaseException, args=None) -> str:
    """The one line a user is shown for a failure of training: what happened, what is saved,
    and which flag to change."""
    if isinstance(err, Interrupted):
        return f"{describe(err)}. Resume with: {resume_command(args)}"
    if isinstance(err, TrainingDiverged):
        return _diverged(err, "; lower --lr")
    if isinstance(err, OutOfMemory):
        graphed = err.step_kind == "graphed"
        if err.during == "evaluating":
            what = (f"while evaluating (batch size {err.batch_size}): lower --eval-batch-size "
                    "(--resume may change it)")
        else:
            what = (f"in a training step (batch size {err.batch_size}"
                    + (", captured as a CUDA graph" if graphed else "")
                    + "): lower --batch-size (a new run)"
                    + (" or use --cuda-graphs off" if graphed else ""))
        return (f"out of memory on {err.device_type} {what}; {_saved_text(err)} "
                f"({err.error})")
    return describe(err)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (what is wrong, where to look), exit 2,
    and the parsed arguments carry the command they came from (`args.command`: "python
    <prog> <arguments>", quoted as a shell needs it, what a run records and what resumes it). Give `prog`, the script's
    file name, so that a parser used by another script (run_all.py) records its own."""

    def parse_known_args(self, args=None, namespace=None):
        argv = sys.argv[1:] if args is None else list(args)
        parsed, extras = super().parse_known_args(argv, namespace)
        if getattr(parsed, "command", None) is None:
            parsed.command = shlex.join(["python", self.prog, *argv])
        return parsed, extras

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run_cli(main: Callable[[argparse.Namespace], object], parser: argparse.ArgumentParser,
            argv: Sequence[str] | None = None) -> None:
    """Parse arguments, run `main`, and turn known failures into one line and an exit code.

    User errors and failures of training (`explain`) -> one line on stderr, exit 2 (usage)
    or 1. Ctrl-C -> exit 130, with the command that resumes. `--debug` re-raises so that the
    traceback is shown (for bug reports).
    """
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        main(args)
    except (UserError, TrainingDiverged, OutOfMemory) as err:
        if debug:
            raise
        print(f"error: {explain(err)}", file=sys.stderr)
        sys.exit(getattr(err, "exit_code", 1))
    except Interrupted as err:
        print(explain(err, args), file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stderr.close()
        sys.exit(0)
    except (MemoryError, RuntimeError) as err:  # the Trainer says more when it is training
        if debug or not is_out_of_memory(err):
            raise
        print(f"error: out of memory ({type(err).__name__}: {str(err).splitlines()[0][:120]}); "
              "lower --batch-size, --eval-batch-size or --subset", file=sys.stderr)
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


# --precision: what every training script, run_all.py and the benchmark accept
# (utils.resolve_precision says what auto picks on each device).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def add_device_arg(group) -> None:
    """--device, the one device decision of a script."""
    group.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto",
                       help="auto picks CUDA, then MPS, then the CPU (default: auto)")


def add_device_args(group) -> None:
    """--device, --precision, --channels-last, --cuda-graphs: how every script runs (training,
    benchmark)."""
    add_device_arg(group)
    group.add_argument("--precision", choices=PRECISIONS, default="auto",
                       help="autocast to bf16 or fp16 (with dynamic loss scaling), or plain "
                            "fp32; auto: bf16 on CUDA GPUs of compute capability 8.0 or newer "
                            "and on CPUs with native bf16 (AVX512_BF16 or AMX), else fp32 "
                            "(docs/GUIDE.md, "
                            "'Precision and speed by device') (default: auto)")
    group.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                       help="channels_last memory format for images and convolutions; auto "
                            "turns it on for CUDA and the CPU (default: auto)")
    group.add_argument("--cuda-graphs", choices=["auto", "on", "off"], default="auto",
                       help="replay each full training batch (gather, normalisation, forward, "
                            "backward, optimizer step) as one captured CUDA graph; on needs "
                            "CUDA and is refused with fp16. auto keeps the eager step until the "
                            "graphed path has been verified on a GPU (default: auto)")


def add_data_arg(group) -> None:
    """--data-dir, where CIFAR-10 comes from (every script that reads it)."""
    group.add_argument("--data-dir", default=None, metavar="PATH",
                       help="CIFAR-10 source: a torchvision root (cifar-10-batches-py/ or "
                            "cifar-10-python.tar.gz), an image-folder tree train/<class>/*, "
                            "test/<class>/*, or a .tar.gz/.zip of one (default: download with "
                            "torchvision into data/)")


def add_best_model_arg(parser, what: str) -> None:
    """--best-model: which Task 2 model stands for "your best model" in `what` (figure
    names: "2c and 2d", "3d (task3d_loss_comparison.png)")."""
    parser.add_argument("--best-model", choices=["auto", *(r.choice for r in TASK2)],
                        default="auto",
                        help=f"which Task 2 model is the best model in {what}; auto: the one "
                             "whose best checkpoints have the best validation accuracy among "
                             "the runs found (default: auto)")


def add_common_args(parser: argparse.ArgumentParser, recipe=None, *,
                    eval_batch_size: int = 500) -> None:
    """The flags every training script takes, with the defaults of its model's recipe
    (`training.recipes.Recipe`: epochs, batch size, learning rate, patience, stopping metric,
    run name,
    evaluation batch size). recipe None: the script chooses per model (Task 2), as the help
    says."""
    def default(name):
        return getattr(recipe, name) if recipe is not None else None

    epochs, batch_size, lr = default("epochs"), default("batch_size"), default("lr")
    patience, stop_metric, run_name = default("patience"), default("stop_metric"), \
        default("run_name")
    eval_batch_size = default("eval_batch_size") or eval_batch_size
    g = parser.add_argument_group("common training options")
    add_data_arg(g)
    g.add_argument("--epochs", type=positive_int, default=epochs,
                   help="maximum number of epochs (default: "
                        f"{epochs if epochs is not None else 'per model, see above'})")
    g.add_argument("--batch-size", type=positive_int, default=batch_size,
                   help="training batch size (default: "
                        f"{batch_size if batch_size is not None else 'per model, see above'})")
    g.add_argument("--eval-batch-size", type=positive_int, default=eval_batch_size,
                   help="batch size of every evaluation (checks and the end); lower it after "
                        "an out-of-memory error while evaluating, --resume may change it "
                        f"(default: {eval_batch_size})")
    g.add_argument("--no-test-curve", action="store_true",
                   help="do not measure the test split at every check (the handout's test "
                        "curves; never used to choose anything): faster; the test split is "
                        "still measured once at the end (default: measure it)")
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
    add_debug_arg(g)


def add_debug_arg(group, help: str = "show tracebacks of errors") -> None:
    """--debug: a failure shows its traceback instead of one line (`run_cli`)."""
    group.add_argument("--debug", action="store_true", help=help)
