"""Device, precision, memory format, seeding, environment and run config: the decisions a
training script makes once at its start and records in every run.

Nothing here imports the rest of the project except the error type (`cli.UserError`).
"""
from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cli import UserError

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


def resolve_cuda_graphs(choice: str, device: torch.device) -> bool:
    """--cuda-graphs: replay each training step as one captured CUDA graph (steps.py).

    'auto' keeps the eager step everywhere until the graphed path has been run on a GPU
    (its CUDA tests and the benchmark; README, "Speed"); 'on' needs CUDA.
    """
    if choice == "on" and device.type != "cuda":
        raise UserError(f"--cuda-graphs on needs a CUDA GPU, and this run is on {device}; "
                        "use --cuda-graphs auto or off", exit_code=2)
    return choice == "on"


@dataclass(frozen=True)
class Hardware:
    """How a script runs, decided once from --device, --precision, --channels-last and
    --cuda-graphs."""
    device: torch.device
    autocast_dtype: torch.dtype | None  # None: plain fp32
    channels_last: bool
    cuda_graphs: bool = False

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    @property
    def precision(self) -> str:
        return "bf16" if self.autocast_dtype is not None else "fp32"


def resolve_hardware(args) -> Hardware:
    """The one device decision of a script (a CUDA GPU also gets cudnn.benchmark)."""
    device = get_device(args.device)
    hardware = Hardware(device, resolve_precision(args.precision, device),
                        resolve_channels_last(args.channels_last, device),
                        resolve_cuda_graphs(getattr(args, "cuda_graphs", "off"), device))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest kernels
    return hardware


def make_config(args, hardware: Hardware, data_info: dict, **extra) -> dict:
    """Everything a run's outputs should carry: flags, resolved device, data, versions."""
    flags = {k: v for k, v in vars(args).items() if k not in ("debug", "no_progress")}
    config = {"args": flags, "device": str(hardware.device), "precision": hardware.precision,
              "channels_last": hardware.channels_last, "cuda_graphs": hardware.cuda_graphs,
              "data": data_info, "environment": environment(),
              "command": " ".join(["python", *sys.argv]), **extra}
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
    """1m05s, or 1h02m05s."""
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
