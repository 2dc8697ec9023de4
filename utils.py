"""Device, precision, memory format, seeding, environment and run config: the decisions a
training script makes once at its start and records in every run.

Nothing here imports the rest of the project except the error type (`cli.UserError`) and the
output-folder check (`runs.ensure_output_dir`).
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np
import torch

from cli import UserError
from runs import ensure_output_dir

PROJECT_DIR = Path(__file__).resolve().parent


def get_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA, then MPS, then CPU. An explicit device that is absent is a UserError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but PyTorch sees no CUDA GPU here; "
                        "use --device auto or --device cpu", exit_code=2)
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None
                              and torch.backends.mps.is_available()):
        raise UserError("--device mps was asked for, but MPS is not available here; "
                        "use --device auto or --device cpu", exit_code=2)
    if name not in ("cpu", "cuda", "mps"):
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda or mps", exit_code=2)
    return torch.device(name)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`, or None for plain fp32."""
    if precision == "fp32":
        return None
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
    elif device.type == "cpu":
        # Fast bf16 needs AVX-512 BF16 (or AMX); elsewhere it is emulated and slower.
        supported = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    else:
        supported = False
    if precision == "bf16" and not supported and device.type != "cpu":
        raise UserError(f"--precision bf16 is not supported on {device}; use fp32", exit_code=2)
    if precision == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if supported else None


def resolve_channels_last(choice: str, device: torch.device) -> bool:
    if choice == "auto":
        return device.type in ("cuda", "cpu")
    return choice == "on"


def setup_run(args, output_dir: Path | str | None = None
              ) -> tuple[torch.device, torch.dtype | None, bool]:
    """The common start of every script that trains: check the output folder (before any
    training; default args.output_dir), choose the device, precision and memory format
    once, and seed."""
    ensure_output_dir(output_dir or args.output_dir)
    device = get_device(args.device)
    autocast_dtype = resolve_precision(args.precision, device)
    channels_last = resolve_channels_last(args.channels_last, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest kernels
    seed_everything(args.seed)
    return device, autocast_dtype, channels_last


def seed_runs(args) -> list[tuple[int, str]]:
    """(seed, run-name suffix) for each run that --seed/--seeds ask for."""
    n = getattr(args, "seeds", 1)
    if n == 1:
        return [(args.seed, "")]
    return [(args.seed + i, f"_seed{args.seed + i}") for i in range(n)]


def make_config(args, device: torch.device, autocast_dtype: torch.dtype | None,
                channels_last: bool, data_info: dict, **extra) -> dict:
    """Everything a run's outputs should carry: flags, resolved device, data, versions."""
    flags = {k: v for k, v in vars(args).items() if k not in ("debug", "no_progress")}
    config = {"args": flags, "device": str(device),
              "precision": "bf16" if autocast_dtype is not None else "fp32",
              "channels_last": channels_last, "data": data_info,
              "environment": environment(), "command": " ".join(["python", *sys.argv]),
              **extra}
    # Plain JSON types only (torch.__version__ is a str subclass that weights_only=True
    # checkpoints refuse), so the config goes into the JSON and the checkpoint alike.
    return json.loads(json.dumps(config, default=str))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch. Called from main(), never at import."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def environment() -> dict:
    """Versions and hardware, stored in every run's config."""
    info = {"torch": str(torch.__version__), "python": sys.version.split()[0],
            "threads": torch.get_num_threads()}
    try:
        import torchvision
        info["torchvision"] = str(torchvision.__version__)
    except ImportError:  # pragma: no cover
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
