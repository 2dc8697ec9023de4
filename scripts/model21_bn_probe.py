"""Model 2.1: is its jumpy validation curve BatchNorm's running statistics? (docs/ANALYSIS.md,
"Model 2.1: why 0.777 and not the report's 0.806")

Trains Model 2.1 with the course recipe through the project's Trainer and, at every check,
evaluates the validation (and test) split three ways: eval() with the running statistics
(what the Trainer reports), eval() after re-estimating the statistics over 10,000 training
images, and with batch statistics (train-mode BatchNorm). Writes one JSON row per check.

    python scripts/model21_bn_probe.py DATA 2 /tmp/bn_probe.json   # DATA: a CIFAR-10 copy

The numbers in docs/ANALYSIS.md come from that command (2 epochs, 8 minutes on 2 CPU cores,
bf16). It always runs on the CPU.
"""
import argparse
import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch import nn

from dataloaders import load_cifar10
from task2_models import Model21
from trainer import Settings, Trainer
from training.batches import Splits
from training.cli import ArgumentParser, add_debug_arg, positive_int, run_cli
from training.errors import UserError
from training.evaluation import evaluate
from training.steps import make_step
from utils import resolve_precision, seed_everything


def main(data_dir: str, epochs: int, out: str) -> None:
    if not Path(out).parent.is_dir():
        raise UserError(f"{out}: its folder {Path(out).parent} does not exist")
    device = torch.device("cpu")
    dtype = resolve_precision("auto", device)
    seed_everything(0)
    data = load_cifar10(data_dir, 64, seed=0, channels_last=True, progress=False)
    model = Model21().to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    rows = []

    def recalibrated():
        m = copy.deepcopy(model)
        for module in m.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
                module.momentum = None  # a plain average over what it sees
        m.train()
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype or torch.bfloat16,
                                             enabled=dtype is not None):
            for i, (images, _) in enumerate(data.train_full):
                if i >= 20:  # 20 x 500 = 10,000 images
                    break
                m(images)
        return m

    def batch_statistics_eval():
        m = copy.deepcopy(model).train()
        loss = correct = n = 0
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype or torch.bfloat16,
                                             enabled=dtype is not None):
            for images, labels in data.val:
                logits = m(images).float()
                loss += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
                correct += (logits.argmax(1) == labels).sum().item()
                n += len(labels)
        return loss / n, correct / n

    def probe(run):
        if run["final"] is not None:  # the last call, after the final evaluation
            return
        h = run["history"][-1]
        recal = recalibrated()
        rl, ra = evaluate(recal, data.val, "cpu", dtype)
        bl, ba = batch_statistics_eval()
        rows.append({"epoch": h["epoch"], "val_loss": h["val_loss"], "val_acc": h["val_accuracy"],
                         "recal_val_loss": rl, "recal_val_acc": ra, "batch_val_loss": bl,
                         "batch_val_acc": ba, "test_acc": evaluate(model, data.test, "cpu", dtype)[1],
                         "recal_test_acc": evaluate(recal, data.test, "cpu", dtype)[1],
                         "train_acc": h.get("train_accuracy")})
        print(json.dumps(rows[-1]), flush=True)
        Path(out).write_text(json.dumps(rows, indent=1))

    step = make_step(model, optimizer, data.train, device, dtype)
    splits = Splits(data.train, data.val, data.test, data.train_eval)
    trainer = Trainer(model, optimizer, step, splits,
                      Settings(epochs, device, dtype, patience=0, progress=False),
                      run_path=Path(out).with_suffix(".run"), config={"model": "model21"},
                      on_check=probe)
    trainer.train()  # on_check: after every check


def get_args_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="scripts/model21_bn_probe.py",
        description="Train Model 2.1 (course recipe, CPU) and, at every check, evaluate the "
                    "validation split with running, re-estimated and batch BatchNorm "
                    "statistics; one JSON row per check.")
    parser.add_argument("data_dir", metavar="DATA",
                        help="CIFAR-10 source, any that --data-dir of the task scripts accepts")
    parser.add_argument("epochs", type=positive_int, help="epochs to train (2 in the analysis)")
    parser.add_argument("out", metavar="OUT.json", help="where the rows go (a JSON list)")
    add_debug_arg(parser)
    return parser


if __name__ == "__main__":
    run_cli(lambda args: main(args.data_dir, args.epochs, args.out), get_args_parser())
