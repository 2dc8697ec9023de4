"""Task 2: two better CNNs on CIFAR-10 (TDT4265 2019, Assignment 3) - the main command.

Model 2.1: Conv32-Conv64-Pool-Conv128-Conv256-Pool, each conv ReLU then BatchNorm, then
Dense 64 and Dense 10 (1,438,666 parameters); SGD, learning rate 0.05, batch size 64.
Model 2.2: three blocks [Conv-ReLU-BN, Conv-ReLU-Dropout2d-BN, MaxPool] of 32/64/128
channels, Dense 64, BatchNorm1d, Dense 10 (419,818 parameters); Adam, batch size 32.
All convolutions 3x3, stride 1, padding 1, Xavier-uniform weights and zero biases.

Both go through the same Trainer as task 1. `--recipe 10-epoch` trains the same two
architectures with this project's 10-epoch recipe instead (augmentation, a one-cycle
learning rate, SGD with Nesterov momentum and weight decay: training/recipes.py says why), which
passes the handout's bar of 75 % test accuracy within 10 epochs; its files are named
task2_model21_10ep, task2_model22_10ep and task2_10ep_*. Writes to --output-dir (default
plots/):

    task2_model21.json, task2_model22.json   config, history, final train/val/test
    task2_model21.pt,   task2_model22.pt     checkpoints (--resume)
    task2_accuracy.png, task2_loss.png       both models on one set of axes (and .pdf)
    task2c_accuracy.png, task2d_loss.png     train/val/test of the best model (2c, 2d)
    task2_table.md                           the 2b table beside the report's numbers, and
                                             whether each model meets the 10-epoch bar
    task2_architecture.md                    2a: each model's layers and training details

Command:

    python task2_models.py                  # downloads CIFAR-10 with torchvision
    python task2_models.py --data-dir PATH  # a local copy (docs/GUIDE.md, "Offline")
    python task2_models.py --recipe 10-epoch --data-dir PATH

Redraw the figures and the table from the saved JSON alone, without training:

    python task2_models.py --plot-only

Results and machines: README.md, "Results"; times: docs/GUIDE.md, "How long it takes".
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from reporting.architecture import architecture_table, training_details
from reporting.figures import draw_task2
from reporting.render import to_markdown
from reporting.results import bar_data, final_table, ten_epoch_line
from trainer import run_jobs
from training.checks import format_duration
from training.cli import ArgumentParser, add_best_model_arg, add_common_args, run_cli
from training.errors import UserError
from training.jobs import Job
from training.recipes import TASK2_FAMILIES, task2_label
from training.record import Run
from training.storage import atomic_write_text, ensure_output_dir, find_runs

RECIPE_CHOICES = tuple(TASK2_FAMILIES)  # --recipe: report (the default), 10-epoch


def models_of(family: str) -> dict:
    """The two models of `family` (--recipe) by their --model value: their recipes
    (training/recipes.py; why the report's stop as they do: docs/GUIDE.md, "Stopping")."""
    return {recipe.choice: recipe for recipe in TASK2_FAMILIES[family]}


def xavier_init_(model: torch.nn.Module) -> torch.nn.Module:
    """Xavier-uniform convolution weights and zero convolution biases; nothing else."""
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
    return model


def conv_relu_bn(in_ch: int, out_ch: int, kernel_size: int, dropout: float = 0.0) -> list:
    """Conv (size kept) -> ReLU -> [Dropout2d] -> BatchNorm, the order of the report's tables."""
    layers = [nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2), nn.ReLU()]
    if dropout > 0:
        layers.append(nn.Dropout2d(dropout))
    layers.append(nn.BatchNorm2d(out_ch))
    return layers


class Model21(nn.Module):
    """Input N×3×32×32 -> N×10 logits. 1,438,666 parameters with 3x3 kernels."""

    def __init__(self, kernel_size: int = 3, init: str = "xavier", num_classes: int = 10):
        super().__init__()
        k = kernel_size
        self.features = nn.Sequential(
            *conv_relu_bn(3, 32, k), *conv_relu_bn(32, 64, k), nn.MaxPool2d(2),      # 64x16x16
            *conv_relu_bn(64, 128, k), *conv_relu_bn(128, 256, k), nn.MaxPool2d(2))  # 256x8x8
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(256 * 8 * 8, 64), nn.ReLU(), nn.Linear(64, num_classes))
        if init == "xavier":
            xavier_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class Model22(nn.Module):
    """Input N×3×32×32 -> N×10 logits. 419,818 parameters with 3x3 kernels.

    `dropout` is the Dropout2d probability in the second convolution of each block (the
    author's code used PyTorch's default 0.5; the report does not say).
    """

    def __init__(self, kernel_size: int = 3, init: str = "xavier", dropout: float = 0.5,
                 num_classes: int = 10):
        super().__init__()
        k = kernel_size
        blocks = []
        in_ch = 3
        for out_ch in (32, 64, 128):  # 32x32 -> 16 -> 8 -> 4
            blocks += [*conv_relu_bn(in_ch, out_ch, k), *conv_relu_bn(out_ch, out_ch, k, dropout),
                       nn.MaxPool2d(2)]
            in_ch = out_ch
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(128 * 4 * 4, 64), nn.ReLU(), nn.BatchNorm1d(64),
            nn.Linear(64, num_classes))
        if init == "xavier":
            xavier_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_model(name: str, args) -> nn.Module:
    """The model --model `name` asks for, with --kernel-size, --init and --dropout."""
    if name == "2.1":
        return Model21(kernel_size=args.kernel_size, init=args.init)
    dropout = args.dropout
    if dropout is None:  # the --recipe's
        dropout = models_of(getattr(args, "recipe", "report"))["2.2"].dropout
    return Model22(kernel_size=args.kernel_size, init=args.init, dropout=dropout)


def recipe_help(recipe) -> str:
    """One line of --help per recipe: what it trains with, and what picks its checkpoint."""
    extras = ([f"Dropout2d p {recipe.dropout:g}"] if recipe.dropout is not None else []) + \
        ([f"Nesterov momentum {recipe.momentum:g}"] if recipe.nesterov else []) + \
        ([f"weight decay {recipe.weight_decay:g}"] if recipe.weight_decay else []) + \
        (["one-cycle rate"] if recipe.schedule else []) + \
        (["random crops and flips"] if recipe.augment else [])
    best = ("best validation accuracy" if recipe.stop_metric == "val_accuracy"
            else "lowest validation loss")
    return (f"  {recipe.label}: {recipe.optimizer}, lr {recipe.lr:g}"
            f"{' (peak)' if recipe.schedule else ''}, batch {recipe.batch_size}, "
            f"{recipe.epochs} epochs;\n"
            + (f"      {', '.join(extras)};\n" if extras else "")
            + f"      keeps the checkpoint with the {best}")


def get_args_parser() -> argparse.ArgumentParser:
    defaults = "\n".join(
        f"--recipe {family}" + (" (the default): the original report's recipes, reproduced"
                                if family == "report" else
                                ": this project's, for the handout's bar of 75 % test accuracy "
                                "within 10 epochs") + ":\n"
        + "\n".join(recipe_help(r) for r in recipes) for family, recipes in TASK2_FAMILIES.items())
    parser = ArgumentParser(
        prog="task2_models.py",
        description="Task 2: train Model 2.1 and Model 2.2 on CIFAR-10; write their figures "
                    "and the Task 2 tables (2a, 2b, the 10-epoch bar).\n\n"
                    + defaults + "\n"
                    "No early stopping by default (--patience 0): where a shorter patience\n"
                    "keeps the best checkpoint on the saved histories it saves little, and\n"
                    "one that held on some histories broke on others (docs/GUIDE.md, 'Stopping').\n"
                    "--epochs, --lr, --batch-size, --patience,\n"
                    "--early-stop-metric given here apply to both.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["2.1", "2.2", "both"], default="both",
                        help="which model(s) to train (default: both)")
    parser.add_argument("--recipe", choices=RECIPE_CHOICES, default="report",
                        help="report: the original report's recipes; 10-epoch: this "
                             "project's recipe for the same two architectures, for the "
                             "handout's bar (default: report)")
    parser.add_argument("--kernel-size", type=int, choices=[3, 5], default=3,
                        help="convolution kernel size, padding keeps the spatial size "
                             "(default: 3; 5 checks the report's '3x3 beats 5x5')")
    parser.add_argument("--init", choices=["xavier", "default"], default="xavier",
                        help="convolution weight initialisation: xavier (uniform, zero biases) "
                             "or PyTorch's default (default: xavier)")
    parser.add_argument("--dropout", type=float, default=None,
                        help="Dropout2d probability in Model 2.2 (default: the recipe's, 0.5 "
                             "in the report's, 0.1 in the 10-epoch one); 0 removes the dropout "
                             "layers")
    parser.add_argument("--plot-only", action="store_true",
                        help="redraw the figures and the table from the saved JSON in "
                             "--output-dir; no training")
    add_common_args(parser)
    add_best_model_arg(parser, "2c and 2d (task2c_accuracy.png, task2d_loss.png)")
    parser.add_argument("--run-suffix", default="",
                        help="appended to the run and figure names, to keep variants apart "
                             "(e.g. _k5) (default: none)")
    return parser


def model_of(label: str, run: Run | None) -> nn.Module:
    """The model (`label`: Model 2.1 or 2.2, of either recipe) a run trained, rebuilt from
    the flags it recorded (for the 2a table; without a run, the default flags')."""
    flags = run.args if run is not None else {}
    choice = next(r.choice for recipes in TASK2_FAMILIES.values() for r in recipes
                  if r.label == label)
    return build_model(choice, argparse.Namespace(kernel_size=flags.get("kernel_size", 3),
                                                  init=flags.get("init", "xavier"),
                                                  dropout=flags.get("dropout", 0.5)))


def task2_runs(out: Path, suffix: str = "", family: str = "report") -> dict[str, list[Run]]:
    """{label: its runs (one, or one per seed)} of the Task 2 runs of `family`'s recipes in
    `out`."""
    runs = {}
    for recipe in TASK2_FAMILIES[family]:
        paths = find_runs(out, f"{recipe.run_name}{suffix}")  # one run, or one per seed
        if paths:
            runs[recipe.label] = [Run.load(p) for p in paths]
    return runs


def write_outputs(out: Path, suffix: str = "", best: str | None = None,
                  family: str = "report") -> tuple[list[Path], str]:
    """Figures and tables from the saved runs of `family`'s recipes in `out` (whichever
    exist): both models' curves and the best one's (2c, 2d; `best`: a label --best-model
    chose), the 2b table with the 10-epoch bar, and each model's 2a tables (layers, training
    details)."""
    recipes = TASK2_FAMILIES[family]
    runs = task2_runs(out, suffix, family)
    if not runs:
        names = ", ".join(f"{r.run_name}{suffix}.json" for r in recipes)
        flag = "" if family == "report" else f" --recipe {family}"
        raise UserError(f"no Task 2 runs in {out} ({names}); train them first: python "
                        f"task2_models.py{flag}")
    if best is not None and best not in runs:
        raise UserError(f"--best-model: {best} has no run in {out}; train it first, or leave "
                        "--best-model out", exit_code=2)
    prefix = recipes[0].figure_prefix
    figures = draw_task2(runs, out, suffix, best, prefix=prefix)
    text, markdown = final_table(runs, {r.label: r.original for r in recipes
                                        if r.label in runs and r.original})
    caption = ("Task 2b: best checkpoint of each model on the test, validation and training "
               "splits. '(report)' rows: the original report (original CIFAR-10 data; its train "
               "columns are unreliable).")
    runs_table = (f"Each run's command, device, data, date and time: `python report.py "
                  f"--own-runs --results {out}` (its runs table).")
    table = out / f"{prefix}{suffix}_table.md"
    architecture = out / f"{prefix}{suffix}_architecture.md"
    atomic_write_text(table, "\n".join([markdown, caption, "", to_markdown(bar_data(runs)),
                                         runs_table]) + "\n")
    atomic_write_text(architecture, "".join(
        f"## {label}: layers (2a)\n\n{architecture_table(model_of(label, group[0]))}\n"
        f"## {label}: training details (2a)\n\n{training_details(group)}\n"
        for label, group in runs.items()))
    return figures + [table, architecture], text


def jobs(args: argparse.Namespace) -> list[Job]:
    """The models --model asks for, each with its --recipe's recipe unless a flag overrides
    it."""
    models = models_of(args.recipe)
    return [Job.of(models[n], lambda n=n: build_model(n, args), args, suffix=args.run_suffix)
            for n in model_names(args)]


def model_names(args: argparse.Namespace) -> list[str]:
    return ["2.1", "2.2"] if args.model == "both" else [args.model]


def main(args: argparse.Namespace) -> dict[str, dict]:
    out = Path(args.output_dir)
    family, models = args.recipe, models_of(args.recipe)
    if args.plot_only:
        if not out.is_dir():
            raise UserError(f"--output-dir {out} does not exist; nothing to redraw")
        paths, text = write_outputs(out, args.run_suffix,
                                    task2_label(args.best_model, family), family)
        print(text)
        print("wrote " + ", ".join(map(str, paths)))
        return {}
    if args.dropout is None:  # the recipe's: recorded as the run's flag
        args.dropout = models["2.2"].dropout
    if not 0 <= args.dropout < 1:
        raise UserError(f"--dropout {args.dropout} is out of range: use 0 <= p < 1", exit_code=2)
    ensure_output_dir(out)
    for n in model_names(args):  # Task 2a's layer tables (with the training details after)
        print(f"{models[n].label}: layers (2a)\n{architecture_table(build_model(n, args))}")
    best = task2_label(args.best_model, family)
    if best is not None and best not in {models[n].label for n in model_names(args)} \
            and best not in task2_runs(out, args.run_suffix, family):
        raise UserError(f"--best-model: {best} is not trained by this command and has no run "
                        f"in {out}; add it to --model, or leave --best-model out", exit_code=2)

    def outputs(_run=None):  # --best-model's model may not have a run yet
        made = task2_runs(out, args.run_suffix, family)
        return write_outputs(out, args.run_suffix, best if best in made else None, family)

    runs = run_jobs(args, jobs(args), on_check=outputs)
    paths, text = write_outputs(out, args.run_suffix, best, family)
    print("\nTask 2b table (best checkpoint of each model; '(report)' rows: the original report)")
    print(text)
    for label, group in task2_runs(out, args.run_suffix, family).items():
        print(f"{ten_epoch_line(label, group)}\n{label}: training details (2a)\n"
              f"{training_details(group)}")
    total = sum(run["timings"]["train_s"] for run in runs.values())
    print(f"wrote {', '.join(map(str, paths))}; training took {format_duration(total)}")
    return runs


if __name__ == "__main__":
    run_cli(main, get_args_parser())
