"""Tables that describe a model, read from the `nn.Module` itself: its parameters per layer
(Task 1c).

Nothing here imports the rest of the project.
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


def format_parameter_table(model: torch.nn.Module, title: str = "") -> str:
    rows, total = parameter_table(model)
    width = max([len(r["layer"]) for r in rows] + [5])
    lines = [title] if title else []
    lines.append(f"{'layer':<{width}}  {'type':<12} {'weights':>10} {'biases':>8} {'total':>10}")
    for r in rows:
        lines.append(f"{r['layer']:<{width}}  {r['type']:<12} {r['weights']:>10,} "
                     f"{r['biases']:>8,} {r['total']:>10,}")
    lines.append(f"{'total':<{width}}  {'':<12} {'':>10} {'':>8} {total:>10,}")
    return "\n".join(lines)
