"""Device, precision, memory format, seeding, environment and run config: the decisions a
training script makes once at its start and records in every run.

Nothing here imports the project except the error type (`training.errors.UserError`).
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from training.errors import UserError

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


# Which dtype each precision autocasts to; fp32 autocasts nothing.
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class PrecisionRule:
    auto: str             # what --precision auto picks
    allowed: tuple        # what an explicit --precision may ask for
    why_not: str = ""     # said when an explicit choice is not allowed


# What each kind of device gets (docs/GUIDE.md, "Precision and speed by device", shows the
# same table). A path is auto's choice on a device only once it has run there: bf16 on CUDA
# ran on an H200 (capability 9.0). fp16 + GradScaler has not run on a GPU yet, so a
# pre-Ampere card stays fp32 until it has. Below capability 8.0 torch.cuda.is_bf16_supported()
# still answers True (bf16 is emulated there), but cuDNN has no bf16 convolutions and every
# convolution falls back to a slow kernel: bf16 is refused. MPS runs fp32 only: its autocast
# needs torch 2.5 and its GradScaler was broken in several releases; neither has run here.
PRECISION_RULES = {
    "cuda, capability >= 8.0 (A100, RTX 30/40, H100, H200)":
        PrecisionRule("bf16", ("fp32", "bf16", "fp16")),
    "cuda, capability < 8.0 (T4, V100, P100, RTX 20, GTX 16)":
        PrecisionRule("fp32", ("fp32", "fp16"), "cuDNN has no bf16 convolutions below compute "
                      "capability 8.0; use --precision fp16 or fp32"),
    "mps (Apple silicon)":
        PrecisionRule("fp32", ("fp32",), "this project runs MPS in fp32 only (its autocast "
                      "and GradScaler have not been run on a Mac); use --precision fp32"),
    "cpu with native bf16 (AVX512_BF16 or AMX)": PrecisionRule("bf16", ("fp32", "bf16", "fp16")),
    "cpu without (bf16 and fp16 emulated: slow)": PrecisionRule("fp32", ("fp32", "bf16", "fp16")),
}


def cuda_capability(device: torch.device) -> tuple[int, int]:
    return tuple(torch.cuda.get_device_capability(device))


NATIVE_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}  # Linux's names of the CPU features


def cpu_flags() -> set[str]:
    """The CPU's feature flags as the OS reports them (Linux: /proc/cpuinfo; else none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags")
            for flag in line.split(":", 1)[1].split()}


def cpu_native_bf16() -> bool:
    """Whether the CPU computes bf16 itself (AVX512_BF16 or AMX), as PyTorch's CPU probe
    reports it, else as the OS does. oneDNN's own answer
    (`torch.ops.mkldnn._is_mkldnn_bf16_supported`) is True on any AVX-512 CPU, also those
    that only emulate bf16 (Skylake, Cascade Lake), where it is slower than fp32."""
    probe = getattr(torch, "cpu", None)
    checks = [getattr(probe, name, None) for name in ("_is_avx512_bf16_supported",
                                                       "_is_amx_tile_supported")]
    checks = [check for check in checks if check is not None]
    if checks:
        return any(bool(check()) for check in checks)
    return bool(NATIVE_BF16_FLAGS & cpu_flags())


def device_kind(device: torch.device) -> str:
    """The row of PRECISION_RULES that `device` falls under."""
    if device.type == "cuda":
        fast_bf16 = cuda_capability(device) >= (8, 0)
        return list(PRECISION_RULES)[0 if fast_bf16 else 1]
    if device.type == "mps":
        return list(PRECISION_RULES)[2]
    return list(PRECISION_RULES)[3 if cpu_native_bf16() else 4]


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for --precision on `device` (None: plain fp32), by PRECISION_RULES;
    an explicit choice the device cannot do is a usage error."""
    kind = device_kind(device)
    rule = PRECISION_RULES[kind]
    if precision == "auto":
        return DTYPES[rule.auto]
    if precision not in DTYPES:
        raise UserError(f"unknown precision {precision!r}; use auto, fp32, bf16 or fp16",
                        exit_code=2)
    if precision not in rule.allowed:
        where = (f"this GPU (compute capability {'.'.join(map(str, cuda_capability(device)))})"
                 if device.type == "cuda" else device.type)
        raise UserError(f"--precision {precision} is not available on {where}: {rule.why_not}",
                        exit_code=2)
    return DTYPES[precision]


def resolve_channels_last(choice: str, device: torch.device) -> bool:
    if choice == "auto":
        return device.type in ("cuda", "cpu")
    return choice == "on"


def resolve_cuda_graphs(choice: str, device: torch.device,
                        autocast_dtype: torch.dtype | None = None) -> bool:
    """--cuda-graphs: replay each training step as one captured CUDA graph (training/steps.py).

    'auto' keeps the eager step everywhere until the graphed path has been run on a GPU
    (its CUDA tests and the benchmark; docs/GUIDE.md, "Precision and speed by device"),
    and always under fp16: GradScaler.step reads on the host whether the gradients
    overflowed, which a captured graph cannot do, so `on` with fp16 is refused. 'on'
    needs CUDA.
    """
    if choice == "on" and device.type != "cuda":
        raise UserError(f"--cuda-graphs on needs a CUDA GPU, and this run is on {device}; "
                        "use --cuda-graphs auto or off", exit_code=2)
    if choice == "on" and autocast_dtype == torch.float16:
        raise UserError("--cuda-graphs on cannot be used with fp16: its loss scaler decides "
                        "on the host whether to skip a step, which a captured graph cannot; "
                        "use --precision bf16 or fp32 with graphs, or --cuda-graphs off",
                        exit_code=2)
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
        return next(name for name, dtype in DTYPES.items() if dtype == self.autocast_dtype)


def resolve_hardware(args) -> Hardware:
    """The one device decision of a script (a CUDA GPU also gets cudnn.benchmark)."""
    device = get_device(args.device)
    dtype = resolve_precision(args.precision, device)
    hardware = Hardware(device, dtype, resolve_channels_last(args.channels_last, device),
                        resolve_cuda_graphs(getattr(args, "cuda_graphs", "off"), device, dtype))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest kernels
    return hardware


def make_config(args, hardware: Hardware, data_info: dict, **extra) -> dict:
    """Everything a run's outputs should carry: flags, resolved device, data, versions, and
    the command it came from (`args.command`, which `training.cli.ArgumentParser` sets)."""
    flags = {k: v for k, v in vars(args).items()
             if k not in ("debug", "no_progress", "command")}
    config = {"args": flags, "started": datetime.now(UTC).isoformat(timespec="seconds"),
              "device": str(hardware.device), "precision": hardware.precision,
              "channels_last": hardware.channels_last, "cuda_graphs": hardware.cuda_graphs,
              "data": data_info, "environment": environment(),
              "command": getattr(args, "command", None), **extra}
    code = code_version()
    if code is not None:
        config["code"] = code
    # Plain JSON types only (torch.__version__ is a str subclass that weights_only=True
    # checkpoints refuse), so the config goes into the JSON and the checkpoint alike.
    return json.loads(json.dumps(config, default=str))


def code_version(folder: Path | str | None = None) -> dict | None:
    """{"commit": the checked-out commit, "dirty": whether tracked or new files differ from
    it} of the git checkout holding `folder` (default: this project's code), or None when
    that is not a git checkout or git is missing or fails (never an error)."""
    folder = Path(folder) if folder is not None else Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                                  check=False,
                                  text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "--verify", "HEAD")
    if not commit or not commit.strip():
        return None
    status = git("status", "--porcelain", "--untracked-files=normal")
    return {"commit": commit.strip(), "dirty": bool(status and status.strip())}


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch. Called from main(), never at import."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def cpu_name() -> str:
    """The CPU's model name ('Intel(R) Xeon(R) Processor', 'AMD EPYC'): bf16 runs of one seed
    and thread count follow other trajectories on CPUs of another kind."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def environment() -> dict:
    """Versions and hardware, stored in every run's config."""
    info = {"torch": str(torch.__version__), "python": sys.version.split()[0],
            "threads": torch.get_num_threads(), "cpu": cpu_name()}
    try:
        import torchvision
        info["torchvision"] = str(torchvision.__version__)
    except ImportError:  # pragma: no cover
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info
