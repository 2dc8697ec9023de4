"""Task 2a (and 1c, 3a) as tables: what a model is, from `training.architecture`'s rows (its
parameters per layer, its layers as the handout's Table 1 lays them out), and how it was
trained, from its runs' configs (every detail needed to train it again).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from reporting.render import to_markdown
from reporting.table import Table
from training.architecture import layer_rows, parameter_table
from training.recipes import RECIPES
from training.record import Run, weights_label


def parameter_data(model: torch.nn.Module, title: str = "") -> Table:
    """Task 1c: weights, biases and their total per layer, and the model's total."""
    rows, total = parameter_table(model)
    return Table(["layer", "type", "weights", "biases", "total"],
                 [[r["layer"], r["type"], f"{r['weights']:,}", f"{r['biases']:,}",
                   f"{r['total']:,}"] for r in rows] + [["total", "", "", "", f"{total:,}"]],
                 title=title)


def format_parameter_table(model: torch.nn.Module, title: str = "") -> str:
    """Task 1c's table as fixed-width text (the console's)."""
    table = parameter_data(model)
    widths = [max(len(c) for c in [h, *table.column(h)]) for h in table.header]
    lines = [title] if title else []
    lines += [("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths)))).rstrip()
              for row in [table.header, *table.rows]]
    return "\n".join(lines)


def architecture_data(model: torch.nn.Module, input_shape=(1, 3, 32, 32), title: str = ""
                      ) -> Table:
    """Task 2a's table of a model, from `layer_rows`, with its parameter total."""
    rows = layer_rows(model, input_shape)
    total = sum(r["parameters"] for r in rows)
    return Table(["layer", "type", "filters / units", "activation", "kernel, stride, padding",
                  "output", "parameters"],
                 [[str(r["layer"]), r["type"], str(r["units"]), r["activation"], r["kernel"],
                   r["output"], f"{r['parameters']:,}"] for r in rows]
                 + [["", "**total**", "", "", "", "", f"**{total:,}**"]], title=title)


def architecture_table(model: torch.nn.Module, input_shape=(1, 3, 32, 32)) -> str:
    """Task 2a's table of a model in Markdown."""
    return to_markdown(architecture_data(model, input_shape))


def training_details(group: Sequence[Run]) -> str:
    """`training_data` in Markdown."""
    return to_markdown(training_data(group))


def training_data(group: Sequence[Run], title: str = "") -> Table:
    """Task 2a's (and 3a's) training details of a model, from its run config (several seeds:
    the first's, with every seed named): a table of everything needed to train it again."""
    config, args, data, model = group[0].config, group[0].args, group[0].data, group[0].model

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
    momentum, decay = config.get("momentum"), config.get("weight_decay")
    optimizer = {"SGD": "SGD, " + (f"{'Nesterov ' if config.get('nesterov') else ''}momentum "
                                   f"{momentum:g}" if momentum else "no momentum"),
                 "Adam": "Adam, betas (0.9, 0.999), eps 1e-8"}.get(
        setting("optimizer"), str(setting("optimizer")))
    rate = f"{lr:g}" if lr else "?"
    if config.get("schedule") == "one-cycle":
        rate = (f"{rate} at the peak of a one-cycle schedule stepped every batch: linear "
                f"warm-up from {lr / 10:g} over the first 20 % of the steps, then linear decay "
                f"to {lr / 1e4:g} at the last")
    rows = [("optimizer", optimizer + (f", weight decay {decay:g}" if decay else
                                       ", no weight decay")),
            ("learning rate", rate),
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
            ("seeds", ", ".join(str("?" if r.seed is None else r.seed) for r in group))]
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
    extra = (f"weight decay {config['weight_decay']:g}" if config.get("weight_decay")
             else "no weight decay") + ", " + \
        ("random crops (zero padding 4) and horizontal flips of the training images"
         if config.get("augment") else "no data augmentation")
    model = (model or "").removesuffix("-10ep")  # the same architectures
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
