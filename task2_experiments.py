"""Task 2e from evidence: the handout's recommended experiments and the original report's
claims, each a named variant trained for the handout's 10 epochs over several seeds.

Task 2 asks for two models that reach 75 % test accuracy within 10 epochs, lists what to try
(filter size, number of filters, pooling or strided convolutions, batch normalization, depth,
L2 or dropout, Xavier initialization, Adam), and 2e asks what improved most, what did not,
and why. This command trains:

- the ladder: Task 1's LeNet with its recipe (SGD 0.05, batch 64), then one change at a time
  (`LeNet`'s keyword arguments; its defaults are Task 1's network);
- the report's claims on its own models: Model 2.2 with 5x5 against 3x3 and with dropout
  0.5 (the default), 0.1 and none; Model 2.1 with PyTorch's default initialization against
  Xavier, and with Adam against SGD;
- the report's two recipes themselves at 10 epochs (the handout's bar, on the test curve).

Each run is an ordinary run file, `<output-dir>/experiments/<variant>_seed<k>.json` (and
`.pt`), with the test curve on and no early stopping; the best checkpoint is chosen by the
validation split as in the model's recipe, never by the test split. A finished run is not
trained again; an interrupted one continues with --resume. Each variant is compared with
its baseline of the same seed (the same split, batch order and, where the layers allow,
initialization): see reporting/task2e.py for the measures, the paired intervals and the verdicts.

Commands:

    python task2_experiments.py --list                 # the variants, what each changes
    python task2_experiments.py --data-dir PATH        # all of them, 3 seeds each
    python task2_experiments.py --only lenet lenet-bn --seeds 5
    python task2_experiments.py --tables-only          # redraw the tables from the runs

Time: on 2 CPU cores a 10-epoch LeNet run takes about 4 minutes, its larger variants up to
four times that, Model 2.1 and 2.2 10 to 40 minutes; the command says its estimate first.
On a CUDA GPU several runs go side by side (--parallel).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from reporting.figures import draw_gains
from reporting.render import to_latex, to_markdown
from reporting.task2e import experiment_tables
from task1_lenet import LeNet
from task2_models import Model21, Model22
from trainer import run_jobs
from training.architecture import parameter_table
from training.checks import format_duration
from training.cli import (
    ArgumentParser,
    add_data_arg,
    add_debug_arg,
    add_device_args,
    positive_int,
    run_cli,
)
from training.errors import TrainingDiverged, UserError
from training.jobs import Job, make_optimizer
from training.recipes import BAR_EPOCHS, RECIPES
from training.record import Run
from training.storage import atomic_write_text, ensure_output_dir
from utils import get_device, resolve_hardware

EPOCHS = BAR_EPOCHS  # the handout's budget: "at least 75 % ... within 10 epochs"
L2 = 5e-4            # the weight decay of the standard CIFAR recipes (He et al. 2016; torchvision)
DROPOUT = 0.5        # Srivastava et al. (2014): p = 0.5 before the dense layers
MODEL_CLASSES = {"lenet": LeNet, "model21": Model21, "model22": Model22}


@dataclass(frozen=True)
class Variant:
    """One experiment: a model of `recipe` (training/recipes.py key) with its course recipe, changed
    as `model` (the class's keyword arguments), `optimizer`/`lr` and `weight_decay` say."""
    name: str
    recipe: str
    baseline: str | None   # the variant it is compared with, seed by seed; None: a baseline
    changes: str           # what it changes, in words
    model: dict = field(default_factory=dict)
    optimizer: str | None = None
    lr: float | None = None
    weight_decay: float = 0.0

    @property
    def group(self) -> str:
        return "ladder" if self.recipe == "lenet" else "report"

    def build(self) -> nn.Module:
        return MODEL_CLASSES[self.recipe](**self.model)

    def job(self, seed: int, epochs: int) -> Job:
        recipe = RECIPES[self.recipe]
        return Job(run_name(self.name, seed), self.build, self.optimizer or recipe.optimizer,
                   self.lr or recipe.lr, recipe.batch_size, weight_decay=self.weight_decay,
                   config={"model": recipe.key, "label": self.name, "figure_prefix": self.name,
                           "default_epochs": EPOCHS,
                           "experiment": {"variant": self.name, "baseline": self.baseline,
                                          "changes": self.changes}},
                   epochs=epochs, patience=0, stop_metric=recipe.stop_metric)


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    # The ladder: Task 1's network and recipe, one of the handout's suggestions at a time.
    Variant("lenet", "lenet", None, "Task 1's LeNet and recipe (SGD 0.05, batch 64): the "
            "ladder's baseline"),
    Variant("lenet-3x3", "lenet", "lenet", "3x3 filters instead of 5x5", {"kernel_size": 3}),
    Variant("lenet-half", "lenet", "lenet", "half the filters: 16/32/64",
            {"channels": (16, 32, 64)}),
    Variant("lenet-double", "lenet", "lenet", "double the filters: 64/128/256",
            {"channels": (64, 128, 256)}),
    Variant("lenet-strided", "lenet", "lenet", "stride-2 convolutions instead of max-pooling",
            {"downsample": "stride"}),
    Variant("lenet-bn", "lenet", "lenet", "BatchNorm after each convolution and the first "
            "dense layer (before ReLU)", {"batchnorm": True}),
    Variant("lenet-2conv", "lenet", "lenet", "two convolutions per block "
            "(conv-relu-conv-relu-pool)", {"convs_per_block": 2}),
    Variant("lenet-l2", "lenet", "lenet", f"L2 weight decay {L2:g} on every parameter",
            weight_decay=L2),
    Variant("lenet-dropout", "lenet", "lenet", f"Dropout p {DROPOUT:g} before each dense "
            "layer", {"dropout": DROPOUT}),
    Variant("lenet-xavier", "lenet", "lenet", "Xavier-uniform convolution weights, zero "
            "biases", {"init": "xavier"}),
    Variant("lenet-adam", "lenet", "lenet", "Adam, learning rate 1e-3, instead of SGD 0.05",
            optimizer="Adam", lr=1e-3),
    # The report's own models: its recipes at 10 epochs and its claims.
    Variant("model21", "model21", None, "Model 2.1's recipe (SGD 0.05, batch 64, Xavier) "
            "for 10 epochs"),
    Variant("model21-default-init", "model21", "model21", "PyTorch's default initialization "
            "instead of Xavier", {"init": "default"}),
    Variant("model21-adam", "model21", "model21", "Adam, learning rate 1e-3, instead of SGD "
            "0.05", optimizer="Adam", lr=1e-3),
    Variant("model22", "model22", None, "Model 2.2's recipe (Adam 1e-3, batch 32, Dropout2d "
            "0.5, 3x3) for 10 epochs"),
    Variant("model22-5x5", "model22", "model22", "5x5 filters instead of 3x3",
            {"kernel_size": 5}),
    Variant("model22-p0.1", "model22", "model22", "Dropout2d p 0.1 instead of 0.5",
            {"dropout": 0.1}),
    Variant("model22-p0", "model22", "model22", "no dropout instead of Dropout2d 0.5",
            {"dropout": 0.0}),
)}


def run_name(variant: str, seed: int) -> str:
    return f"{variant}_seed{seed}"


def experiments_dir(output_dir) -> Path:
    return Path(output_dir) / "experiments"


def run_state(folder: Path, name: str) -> str:
    """'done' (finished, or diverged: trained as far as it goes), 'interrupted' (a
    checkpoint to resume) or 'new'."""
    json_path, ckpt = folder / f"{name}.json", folder / f"{name}.pt"
    if json_path.is_file():
        run = Run.load(json_path)
        if run.finished and run.status in (
                "finished", "early_stopped", "diverged"):
            return "done"
    return "interrupted" if ckpt.is_file() else "new"


def remaining(folder: Path, name: str, epochs: int) -> float:
    """The share of a run's epochs still to train (1 for a new run)."""
    path = folder / f"{name}.json"
    history = Run.load(path).history if path.is_file() else None
    return max(0.0, 1 - history[-1]["epoch"] / epochs) if history else 1.0


# ------------------------------------------------------------------------- command line
def get_args_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="task2_experiments.py",
        description="Task 2e: train the handout's recommended changes to Task 1's LeNet and "
                    "the original report's claims on its own models, each for 10 epochs over "
                    "several seeds, and compare each variant with its baseline seed by seed. "
                    "A finished run is not trained again; --resume continues interrupted ones.",
        epilog="Runs go to OUTPUT_DIR/experiments/<variant>_seed<k>.json; the tables and the "
               "figure to OUTPUT_DIR/experiments/ too.")
    parser.add_argument("--list", action="store_true",
                        help="print every variant, what it changes and its parameters; no "
                             "training")
    parser.add_argument("--only", nargs="+", metavar="NAME", default=None,
                        help="train only these variants (their baselines are not added: the "
                             "comparison needs them, run them too) (default: all)")
    parser.add_argument("--seeds", type=positive_int, default=3, metavar="N",
                        help="seeds per variant: --seed, --seed+1, ... (default: 3)")
    parser.add_argument("--seed", type=int, default=0, help="the first seed (default: 0)")
    parser.add_argument("--epochs", type=positive_int, default=EPOCHS,
                        help=f"epochs per run (default: {EPOCHS}, the handout's budget)")
    parser.add_argument("--parallel", default="auto", metavar="N",
                        help="runs side by side, one process each; auto: 3 on a CUDA GPU "
                             "(each run leaves it mostly idle), one per core (at most 8) on "
                             "the CPU, where every run uses one thread: runs of another "
                             "thread count follow other trajectories and are not paired "
                             "(default: auto)")
    parser.add_argument("--full-curves", action="store_true",
                        help="measure the test split and the training subset at every check, "
                             "and the whole training split at the end, as the task scripts "
                             "do (slower; the comparisons read none of it) (default: the "
                             "validation split at every check, the test split at the last "
                             "check and at the best weights only)")
    parser.add_argument("--tables-only", action="store_true",
                        help="redraw the tables and the figure from the runs in "
                             "OUTPUT_DIR/experiments; no training")
    g = parser.add_argument_group("common options")
    add_data_arg(g)
    g.add_argument("--eval-batch-size", type=positive_int, default=500,
                   help="batch size of every evaluation (default: 500)")
    add_device_args(g)
    g.add_argument("--subset", type=positive_int, default=None, metavar="N",
                   help="use at most N images of each split, for a quick look (default: all)")
    g.add_argument("--output-dir", default="plots", metavar="DIR",
                   help="the runs go to DIR/experiments (default: plots)")
    g.add_argument("--resume", action="store_true",
                   help="continue interrupted runs from their checkpoints")
    g.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    add_debug_arg(g)
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--recorded-command", default=None, help=argparse.SUPPRESS)
    return parser


def selected(args) -> list[Variant]:
    if not args.only:
        return list(VARIANTS.values())
    unknown = [name for name in args.only if name not in VARIANTS]
    if unknown:
        raise UserError(f"--only: unknown variant {', '.join(unknown)}; known: "
                        f"{', '.join(VARIANTS)} (see --list)", exit_code=2)
    return [VARIANTS[name] for name in dict.fromkeys(args.only)]


def list_text(variants: list[Variant]) -> str:
    width = max(len(v.name) for v in variants)
    lines = [f"{'variant':<{width}}  {'baseline':<{width}}  {'parameters':>10}  changes"]
    for v in variants:
        lines.append(f"{v.name:<{width}}  {v.baseline or '-':<{width}}  "
                     f"{parameter_table(v.build())[1]:>10,}  {v.changes}")
    return "\n".join(lines)


def parallel_count(args) -> int:
    if args.parallel == "auto":
        device = get_device(args.device).type
        return 3 if device == "cuda" else min(8, os.cpu_count() or 1) if device == "cpu" else 1
    try:
        count = int(args.parallel)
    except ValueError:
        count = 0
    if count < 1:
        raise UserError(f"--parallel {args.parallel!r}: give a number of processes >= 1, or "
                        "auto", exit_code=2)
    return count


CPU_THREADS = 1  # every grid run on the CPU: one thread, whatever the machine


def set_run_threads(device: torch.device) -> None:
    """One thread for each run on the CPU: a one-thread bf16 run is the same bit for bit on
    every machine of a kind, while the same seed at another thread count follows another
    trajectory (the kernels sum in another order), so its runs could not be paired."""
    if device.type == "cpu":
        torch.set_num_threads(CPU_THREADS)


# ------------------------------------------------------------------------- estimate
def seconds_per_run(variant: Variant, hardware, epochs: int, n_train: int,
                    full_curves: bool = False, steps: int = 3) -> float:
    """About how long one run of `variant` takes here: a few timed training steps on random
    data, scaled to its epochs, plus a tenth for the checks (the validation split twice an
    epoch), a third with `full_curves` (validation, test and training subset)."""
    job = variant.job(0, epochs)  # its optimizer, learning rate and batch, as trained
    batch = job.batch_size
    model = job.build_model().to(hardware.device, memory_format=hardware.memory_format)
    optimizer = make_optimizer(job.optimizer, model, job.lr, job.weight_decay)
    images = torch.randn(batch, 3, 32, 32, device=hardware.device).contiguous(
        memory_format=hardware.memory_format)
    labels = torch.randint(0, 10, (batch,), device=hardware.device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(hardware.device.type, dtype=hardware.autocast_dtype,
                            enabled=hardware.autocast_dtype is not None):
            loss = nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        return loss

    step().item()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss.item()
    per_step = (time.perf_counter() - start) / steps
    return per_step * epochs * max(1, n_train // batch) * (4 / 3 if full_curves else 1.1)


# ------------------------------------------------------------------------- training
def train_pending(args, todo: list[tuple[Variant, int]], claims: Path | None = None) -> None:
    """Train each (variant, seed) of `todo` in order; with `claims`, only those this process
    claims first (a file per run in that folder: several processes share one list)."""
    folder = experiments_dir(args.output_dir)
    loaded: dict = {}  # the data, decoded and on the device once per process
    for k, (variant, seed) in enumerate(todo, 1):
        name = run_name(variant.name, seed)
        if claims is not None:
            try:
                os.close(os.open(claims / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                continue
        state = run_state(folder, name)
        if state == "done":
            continue
        print(f"[run {k}/{len(todo)}] {variant.name}, seed {seed}: {variant.changes}"
              + (" (resuming)" if state == "interrupted" else ""), flush=True)
        if any(key[0] != seed for key in loaded):  # runs go seed by seed: free the last
            loaded.clear()
        run_args = argparse.Namespace(
            data_dir=args.data_dir, epochs=args.epochs, eval_batch_size=args.eval_batch_size,
            no_test_curve=False, grid_checks=not args.full_curves, seed=seed, seeds=1,
            device=args.device,
            precision=args.precision, channels_last=args.channels_last,
            cuda_graphs=args.cuda_graphs, subset=args.subset, output_dir=str(folder),
            resume=state == "interrupted", no_progress=args.no_progress, debug=args.debug,
            variant=variant.name, command=args.command)
        try:
            run_jobs(run_args, [variant.job(seed, args.epochs)], loaded=loaded)
        except TrainingDiverged as err:  # a variant may diverge: the grid goes on
            print(f"{name}: diverged at step {err.step} (epoch {err.epoch:.2f}); its run is "
                  f"saved as diverged, the next one starts", flush=True)


def run_workers(args, count: int) -> None:
    """`count` processes of this command side by side, sharing the runs to do; their lines
    are printed with a [wN] prefix."""
    folder = experiments_dir(args.output_dir)
    claims = folder / ".claims"
    if claims.is_dir():  # left by an earlier, interrupted command
        for path in claims.iterdir():
            path.unlink()
    claims.mkdir(parents=True, exist_ok=True)
    flags = ["--seeds", str(args.seeds), "--seed", str(args.seed), "--epochs",
             str(args.epochs), "--eval-batch-size", str(args.eval_batch_size), "--device",
             args.device, "--precision", args.precision, "--channels-last",
             args.channels_last, "--cuda-graphs", args.cuda_graphs, "--output-dir",
             args.output_dir, "--parallel", str(count), "--no-progress",
             "--recorded-command", args.command]
    flags += ["--data-dir", args.data_dir] if args.data_dir else []
    flags += ["--subset", str(args.subset)] if args.subset else []
    flags += ["--only", *args.only] if args.only else []
    flags += ["--resume"] if args.resume else []
    flags += ["--full-curves"] if args.full_curves else []
    flags += ["--debug"] if args.debug else []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    workers = [subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *flags,
                                 "--worker", str(i)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
               for i in range(count)]

    def relay(i, stream):
        for line in stream:
            print(f"[w{i}] {line}", end="", flush=True)

    threads = [threading.Thread(target=relay, args=(i, w.stdout), daemon=True)
               for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    try:
        codes = [w.wait() for w in workers]
    except KeyboardInterrupt:  # the workers got the Ctrl-C too: they save and stop
        codes = [w.wait() for w in workers]
    for thread in threads:
        thread.join(timeout=5)
    for path in claims.iterdir():
        path.unlink()
    claims.rmdir()
    failed = [code for code in codes if code != 0]
    if 130 in failed or -2 in failed:
        raise KeyboardInterrupt
    if failed:
        raise UserError(f"{len(failed)} of {count} processes failed (exit codes "
                        f"{', '.join(map(str, failed))}; their lines above say why); the "
                        "runs they finished are saved: run the command again with --resume")


def main(args: argparse.Namespace) -> None:
    if args.recorded_command:
        args.command = args.recorded_command
    variants = selected(args)
    if args.list:
        print(list_text(variants))
        return
    folder = experiments_dir(args.output_dir)
    if args.tables_only:
        write_tables(args)
        return
    count = parallel_count(args)
    todo = [(v, args.seed + i) for i in range(args.seeds) for v in variants]
    if args.worker is not None:
        set_run_threads(get_device(args.device))
        train_pending(args, todo, claims=folder / ".claims")
        return
    ensure_output_dir(folder)
    states = {(v.name, s): run_state(folder, run_name(v.name, s)) for v, s in todo}
    stopped = [run_name(*key) for key, state in states.items() if state == "interrupted"]
    if stopped and not args.resume:
        raise UserError(f"{len(stopped)} runs were interrupted ({', '.join(stopped[:4])}"
                        f"{', ...' if len(stopped) > 4 else ''}); add --resume to continue "
                        "them", exit_code=2)
    pending = [(v, s) for v, s in todo if states[(v.name, s)] != "done"]
    hardware = resolve_hardware(args)
    n_train = min(45000, args.subset or 45000)
    set_run_threads(hardware.device)  # timed as each run trains: on one CPU thread
    timed = {v.name: seconds_per_run(v, hardware, args.epochs, n_train, args.full_curves)
             for v in {v.name: v for v, _ in pending}.values()}
    total = sum(timed[v.name] * remaining(folder, run_name(v.name, s), args.epochs)
                for v, s in pending)
    print(f"{len(todo)} runs: {len(todo) - len(pending)} finished already, {len(pending)} to "
          f"train; about {format_duration(total / count)} on {hardware.device.type} "
          f"({hardware.precision}), {count} at a time (from 3 timed training steps of each "
          "model)", flush=True)
    if pending:
        if count > 1:
            run_workers(args, count)
        else:
            train_pending(args, pending)
    write_tables(args)


def write_tables(args) -> None:
    """The comparison tables and figure from every run in the folder (reporting/task2e.py)."""
    folder = experiments_dir(args.output_dir)
    if not folder.is_dir():
        raise UserError(f"{folder} does not exist: no experiments to tabulate; train them "
                        "first: python task2_experiments.py")
    write_experiment_tables(folder)



def write_experiment_tables(folder: Path | str) -> list[Path]:
    """experiments.md and experiments.tex (the tables) and experiments_gain.png/.pdf in
    `folder`; prints the Markdown."""
    folder = Path(folder)
    tables, runs, variants = experiment_tables(folder)
    if not runs:
        print(f"no finished experiment runs in {folder} yet: no tables")
        return []
    markdown = "\n".join(to_markdown(t) for t in tables)
    written = [folder / "experiments.md", folder / "experiments.tex"]
    atomic_write_text(written[0], markdown)
    atomic_write_text(written[1], "% for \\input into a document with \\usepackage{array, booktabs, "
                      "longtable, needspace, pdflscape}\n" + "\n".join(to_latex(t) for t in tables))
    written += draw_gains(runs, variants, folder / "experiments_gain")
    print(markdown)
    print("wrote " + ", ".join(map(str, written)))
    return written

if __name__ == "__main__":
    run_cli(main, get_args_parser())
