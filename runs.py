"""Run files on disk: atomic writes, reading a saved run or checkpoint, finding a command's
runs in a folder.

A run is `<name>.json` (config, history, final; the single source of every figure and table)
and `<name>.pt` (a checkpoint dict for --resume and the visualisation), both written
atomically so that a kill during a write leaves the previous file intact.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import torch

from cli import UserError


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path | str, obj) -> None:
    def write(tmp: str):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
    _atomic_write(Path(path), write)


def atomic_write_text(path: Path | str, text: str) -> None:
    def write(tmp: str):
        with open(tmp, "w") as f:
            f.write(text)
    _atomic_write(Path(path), write)


def atomic_torch_save(obj, path: Path | str) -> None:
    def write(tmp: str):
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
    _atomic_write(Path(path), write)


def read_checkpoint(path: Path | str) -> dict:
    """Load a checkpoint dict with weights_only=True; a bad file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}; train first (the task script writes it)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(f"{path} is not a readable PyTorch checkpoint ({type(err).__name__}); "
                        "delete it and train again") from None
    if not isinstance(ckpt, dict):
        raise UserError(f"{path} does not hold a checkpoint dict; delete it and train again")
    return ckpt


def ensure_output_dir(path: Path | str) -> Path:
    """Create the output folder and prove it is writable before any training starts."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"cannot write to output folder {path} ({err.strerror or err}); "
                        "choose another with --output-dir") from None
    return path


def load_run(path: Path | str) -> dict:
    """Read a run JSON written by the Trainer; a missing or broken file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no saved run at {path}")
    try:
        run = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path} is not a valid run JSON; rerun the task that writes it") from None
    if not isinstance(run, dict) or "history" not in run:
        raise UserError(f"{path} has no 'history'; it is not a run written by this project")
    return run


def find_runs(output_dir: Path | str, run_name: str) -> list[Path]:
    """`<run_name>.json`, or the `<run_name>_seed<k>.json` of a --seeds run (all of them)."""
    out = Path(output_dir)
    seeded = sorted(out.glob(f"{run_name}_seed*.json"),
                    key=lambda p: int(p.stem.rsplit("_seed", 1)[1]) if p.stem.rsplit("_seed", 1)[1].isdigit() else 0)
    if seeded:
        return seeded
    single = out / f"{run_name}.json"
    return [single] if single.is_file() else []


def file_sha256(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
