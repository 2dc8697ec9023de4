"""Task 1: a LeNet-like baseline on CIFAR-10 (TDT4265 2019, Assignment 3).

Builds the assignment's network (three 5x5 convolutions with max-pooling, two dense layers;
390,410 parameters), prints the Task 1c parameter table, trains it with the course defaults
(SGD, learning rate 0.05, batch size 64, 10 epochs keeping the checkpoint with the lowest
validation loss; docs/GUIDE.md, "Stopping", says why there is no early stopping by default) and
writes to --output-dir (default plots/):

    task1_lenet.json        config, history (two checks an epoch), final train/val/test
    task1_lenet.pt          checkpoint (for --resume)
    task1_loss.png          training, validation and test loss against epochs (1a; and .pdf)
    task1_accuracy.png      training, validation and test accuracy            (1b; and .pdf)
    task1_parameters.md     the Task 1c table
    task1_architecture.md   its layers as the handout's Table 1, and its training details

Command:

    python task1_lenet.py                  # downloads CIFAR-10 with torchvision
    python task1_lenet.py --data-dir PATH  # a local copy (docs/GUIDE.md, "Offline")

Result to expect: README.md, "Results" (each number there is beside the command and machine
that produced it); time: docs/GUIDE.md, "How long it takes".
"""
from __future__ import annotations

import argparse
from collections import OrderedDict

import torch
from torch import nn

from reporting.architecture import architecture_table, format_parameter_table, training_details
from reporting.figures import draw_task1
from task2_models import xavier_init_
from trainer import run_jobs
from training.cli import ArgumentParser, add_common_args, run_cli
from training.jobs import Job, seed_runs
from training.recipes import RECIPES
from training.record import Run
from training.storage import atomic_write_text, ensure_output_dir

RECIPE = RECIPES["lenet"]  # SGD, lr 0.05, batch 64, 10 epochs, the best val_loss checkpoint


class LeNet(nn.Module):
    """LeNet-like network of Task 1. Input N×3×32×32, output N×10 logits (the softmax is
    the loss's).

    The defaults are Task 1's network (390,410 parameters; layer names conv1-3, pool1-3,
    dense1-2, which its checkpoints hold). The keyword arguments change one thing at a time,
    as the handout's Task 2 suggests trying (task2_experiments.py):
    `kernel_size` 3 or 5 (padding keeps the size); `channels` of the three blocks;
    `downsample` "pool" (max-pool 2x2) or "stride" (the block's last convolution has stride
    2, no pooling); `batchnorm`: BatchNorm after each convolution and after the first dense
    layer, before its ReLU; `convs_per_block` 1 or 2 (conv-relu-conv-relu-pool);
    `dropout` p > 0: Dropout(p) before each dense layer; `init` "default" (PyTorch's) or
    "xavier" (uniform convolution weights, zero biases).
    """

    def __init__(self, num_classes: int = 10, *, kernel_size: int = 5,
                 channels: tuple[int, int, int] = (32, 64, 128), downsample: str = "pool",
                 batchnorm: bool = False, convs_per_block: int = 1, dropout: float = 0.0,
                 init: str = "default"):
        super().__init__()
        if downsample not in ("pool", "stride") or init not in ("default", "xavier"):
            raise ValueError(f"downsample {downsample!r}, init {init!r}")
        layers = OrderedDict()
        in_ch = 3
        for i, out_ch in enumerate(channels, start=1):  # 32x32 -> 16 -> 8 -> 4
            for j in range(convs_per_block):
                tag = str(i) if convs_per_block == 1 else f"{i}_{j + 1}"
                stride = 2 if downsample == "stride" and j == convs_per_block - 1 else 1
                layers[f"conv{tag}"] = nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride,
                                                 padding=kernel_size // 2)
                if batchnorm:
                    layers[f"bn{tag}"] = nn.BatchNorm2d(out_ch)
                layers[f"relu{tag}"] = nn.ReLU()
                in_ch = out_ch
            if downsample == "pool":
                layers[f"pool{i}"] = nn.MaxPool2d(2)
        layers["flatten"] = nn.Flatten()   # 128x4x4 = 2048
        if dropout:
            layers["dropout1"] = nn.Dropout(dropout)
        layers["dense1"] = nn.Linear(in_ch * 4 * 4, 64)
        if batchnorm:
            layers["bn4"] = nn.BatchNorm1d(64)
        layers["relu4"] = nn.ReLU()
        if dropout:
            layers["dropout2"] = nn.Dropout(dropout)
        layers["dense2"] = nn.Linear(64, num_classes)
        self.layers = nn.Sequential(layers)
        if init == "xavier":
            xavier_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def get_args_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="task1_lenet.py",
        description="Task 1: train the LeNet-like baseline on CIFAR-10 and draw its curves.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, RECIPE)
    return parser


def jobs(args: argparse.Namespace) -> list[Job]:
    """Task 1's one model with the course recipe (the benchmark times the same)."""
    return [Job.of(RECIPE, LeNet, args)]


def main(args: argparse.Namespace) -> dict[str, dict]:
    out = ensure_output_dir(args.output_dir)
    table = format_parameter_table(LeNet(), "Task 1c: parameters per layer (weights + biases)")
    print(table)
    atomic_write_text(out / "task1_parameters.md", "```\n" + table + "\n```\n")
    run_jsons = [out / f"{args.run_name}{suffix}.json" for _, suffix in seed_runs(args)]

    def draw(_run=None):
        runs = [Run.load(p) for p in run_jsons if p.is_file()]
        return draw_task1(runs, out) if runs else []

    runs = run_jobs(args, jobs(args), on_check=draw)
    details = training_details([Run.load(p) for p in run_jsons])
    print(f"LeNet: training details\n{details}")
    architecture = out / "task1_architecture.md"
    atomic_write_text(architecture, f"## LeNet: layers\n\n{architecture_table(LeNet())}\n"
                                    f"## LeNet: training details\n\n{details}")
    print("wrote " + ", ".join(str(p) for p in [*run_jsons, *draw(), architecture]))
    return runs


if __name__ == "__main__":
    run_cli(main, get_args_parser())
