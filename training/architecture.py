"""What a model is made of, read from the `nn.Module` itself, as rows of data: its parameters
per layer (Task 1c, `parameter_table`) and its layers as the handout's Table 1 lays them out
(Task 2a, `layer_rows`). `reporting.architecture` makes them tables.
"""
from __future__ import annotations

import torch


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


# --------------------------------------------------------------------------- Task 2a: layers
# Layer type names as the handout's and the original report's tables write them.
LAYER_TYPES = {"Conv2d": "Conv2D", "MaxPool2d": "MaxPool2D", "BatchNorm2d": "BatchNorm2D",
               "BatchNorm1d": "BatchNorm1D", "Dropout2d": "Dropout2D", "Dropout": "Dropout",
               "Flatten": "Flatten", "Linear": "Fully-Connected",
               "AdaptiveAvgPool2d": "AdaptiveAvgPool2D"}
ACTIVATIONS = {"ReLU": "ReLU", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "LeakyReLU": "LeakyReLU"}
SOFTMAX = "Softmax (in the loss)"  # the tables' Softmax is what CrossEntropyLoss applies


def _pair(value) -> str:
    a, b = value if isinstance(value, tuple) else (value, value)
    return str(a) if a == b else f"{a}x{b}"


def layer_rows(model: torch.nn.Module, input_shape=(1, 3, 32, 32)) -> list[dict]:
    """The model's layers in the order they run on one input of `input_shape` (in eval mode,
    no gradients), one row per layer as the handout's Table 1 has them: layer number (it
    counts the convolutions and dense layers; a pooling, normalisation or dropout layer takes
    the number of the layer before it), type, filters or units, activation (a ReLU after a
    layer is that layer's activation, not a row of its own), kernel/stride/padding, output
    shape, parameters. The last dense layer's activation is the loss's Softmax."""
    order = []
    hooks = [m.register_forward_hook(lambda mod, _i, out: order.append((mod, tuple(out.shape))))
             for m in model.modules() if not list(m.children())]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    rows, number = [], 0
    for module, shape in order:
        kind = type(module).__name__
        if kind in ACTIVATIONS and rows:
            rows[-1]["activation"] = ACTIVATIONS[kind]
            continue
        if kind in ("Conv2d", "Linear"):
            number += 1
        rows.append({"layer": "" if kind == "Flatten" else str(number),
                     "type": LAYER_TYPES.get(kind, kind), "units": _units(module),
                     "activation": "-", "kernel": _kernel(module),
                     "output": "x".join(map(str, shape[1:])),
                     "parameters": sum(p.numel() for p in module.parameters(recurse=False))})
    dense = [r for r in rows if r["type"] == "Fully-Connected"]
    if dense and dense[-1]["activation"] == "-":
        dense[-1]["activation"] = SOFTMAX
    return rows


def _units(module) -> str:
    if isinstance(module, torch.nn.Conv2d):
        return str(module.out_channels)
    if isinstance(module, torch.nn.Linear):
        return str(module.out_features)
    if isinstance(module, torch.nn.modules.dropout._DropoutNd):
        return f"p = {module.p:g}"
    return "-"


def _kernel(module) -> str:
    if isinstance(module, (torch.nn.Conv2d, torch.nn.MaxPool2d)):
        k = module.kernel_size if isinstance(module.kernel_size, tuple) else \
            (module.kernel_size,) * 2
        return (f"{k[0]}x{k[1]}, stride {_pair(module.stride)}, padding "
                f"{_pair(module.padding)}")
    return "-"
