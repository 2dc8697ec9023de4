"""Run files on disk: atomic writes, saving and loading a run's checkpoint (`RunStore`),
reading a checkpoint, finding a command's runs in a folder (a run JSON is read as a typed run:
`training.record.Run.load`).

A run is `<name>.json` (config, history, final; the single source of every figure and table),
`<name>.metrics.csv` (the history as a table: one row per check, one column per key) and
`<name>.pt` (a checkpoint dict for --resume and the visualisation), all written atomically
so that a kill during a write leaves the previous file intact.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import torch

from training.errors import UserError
from training.steps import get_rng_state, set_rng_state

CHECKPOINT_FORMAT = "tdt4265-a3-run"


def atomic_write(path: Path | str, write: Callable[[str], None]) -> None:
    """Call write(tmp) on a temporary file beside `path`, then rename it over `path`; the
    temporary file is removed if anything fails."""
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
    atomic_write(path, write)


def atomic_write_text(path: Path | str, text: str) -> None:
    def write(tmp: str):
        with open(tmp, "w") as f:
            f.write(text)
    atomic_write(path, write)


def atomic_torch_save(obj, path: Path | str) -> None:
    def write(tmp: str):
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
    atomic_write(path, write)


def metrics_csv(history: list[dict]) -> str:
    """The history as CSV: one row per check, one column per key (in the order the keys
    first appear; a key a check lacks is an empty cell)."""
    columns = list(dict.fromkeys(k for entry in history for k in entry))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return out.getvalue()


RUN_SUFFIXES = (".json", ".metrics.csv", ".pt")


def keep_previous_run(run_path: Path | str) -> Path | None:
    """Move an earlier run's files (`<name>.json`, `.metrics.csv`, `.pt`) into
    `previous/<name>-<date it started>.*` beside them, so that a new run of the same name
    never overwrites it; the moved JSON's path, or None when there was no earlier run."""
    run_path = Path(run_path)
    old = [run_path.parent / f"{run_path.name}{s}" for s in RUN_SUFFIXES]
    if not any(p.is_file() for p in old):
        return None
    started = None
    try:
        started = json.loads(old[0].read_text())["config"]["started"]
    except Exception:  # noqa: BLE001, S110 - a broken or foreign JSON is kept all the same
        pass
    if not isinstance(started, str) or not started:
        newest = max(p.stat().st_mtime for p in old if p.is_file())
        started = datetime.fromtimestamp(newest, UTC).isoformat(timespec="seconds")
    stamp = "".join(c for c in started[:19] if c.isalnum() or c == "T").replace("T", "-")
    folder = run_path.parent / "previous"
    folder.mkdir(exist_ok=True)
    base, n = f"{run_path.name}-{stamp}", 1
    while any((folder / f"{base}{s}").exists() for s in RUN_SUFFIXES):
        n += 1
        base = f"{run_path.name}-{stamp}-{n}"
    for path, suffix in zip(old, RUN_SUFFIXES):
        if path.is_file():
            shutil.move(str(path), folder / f"{base}{suffix}")
    return folder / f"{base}.json"


def read_checkpoint(path: Path | str) -> dict:
    """Load a checkpoint dict with weights_only=True; a bad file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}; train first (the task script writes it)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file: one line says so
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


def find_runs(output_dir: Path | str, run_name: str) -> list[Path]:
    """`<run_name>.json`, or the `<run_name>_seed<k>.json` of a --seeds run (all of them);
    when a folder holds both, the group written last (a new single run is not hidden by an
    older --seeds run, nor the other way round)."""
    out = Path(output_dir)

    def seed(p: Path) -> int:
        k = p.stem.rsplit("_seed", 1)[1]
        return int(k) if k.isdigit() else 0

    seeded = sorted(out.glob(f"{run_name}_seed*.json"), key=seed)
    single = [out / f"{run_name}.json"] if (out / f"{run_name}.json").is_file() else []
    if seeded and single:
        newest = max(p.stat().st_mtime_ns for p in seeded)
        return single if single[0].stat().st_mtime_ns > newest else seeded
    return seeded or single


def file_sha256(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class RunStore:
    """Saving and loading one run: `<run_path>.json` (config, history, final: what figures and
    tables read) and `<run_path>.pt` (everything --resume needs: the Trainer's state, model,
    optimizer, best weights, RNG states), each written atomically.

    `may_differ`: the flags (keys of config["args"]) that may change between the interrupted
    run and its resume, e.g. --epochs or --device; any other difference is refused.
    """

    def __init__(self, run_path: Path | str, config: dict, device: torch.device,
                 may_differ: Iterable[str] = ()):
        self.run_path, self.config = Path(run_path), config
        self.device, self.may_differ = torch.device(device), set(may_differ)

    @property
    def json_path(self) -> Path:
        # not with_suffix(): a run name may hold dots (e.g. task2_model22_p0.1)
        return self.run_path.parent / f"{self.run_path.name}.json"

    @property
    def checkpoint_path(self) -> Path:
        return self.run_path.parent / f"{self.run_path.name}.pt"

    @property
    def metrics_path(self) -> Path:
        return self.run_path.parent / f"{self.run_path.name}.metrics.csv"

    def save(self, run: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             state: dict, weights: dict | None = None) -> None:
        """Write the checkpoint (the weights training goes on from: `weights`, else the
        model's; optimizer, `state`, config, RNG states: the CPU's and the run's device's,
        CUDA's current device or MPS), then the metrics CSV (rewritten from the whole
        history, so a resumed run's continues it) and the run JSON."""
        rng = {"torch": torch.get_rng_state()}
        if self.device.type != "cpu":
            rng["device"] = {"type": self.device.type, "state": get_rng_state(self.device)}
        atomic_torch_save({"format": CHECKPOINT_FORMAT, "config": self.config,
                           "model": model.state_dict() if weights is None else weights,
                           "optimizer": optimizer.state_dict(),
                           **state, "rng": rng}, self.checkpoint_path)
        atomic_write_text(self.metrics_path, metrics_csv(run.get("history") or []))
        atomic_write_json(self.json_path, run)

    def load(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
        """Load the interrupted run's weights, optimizer state and RNG states, after checking
        that its checkpoint is this project's, of the same model and with the same flags;
        returns the checkpoint."""
        ckpt = read_checkpoint(self.checkpoint_path)
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise UserError(f"{self.checkpoint_path} is not a checkpoint of this project's "
                            "Trainer; remove --resume to start again")
        old_model = ckpt.get("config", {}).get("model")
        if old_model != self.config.get("model"):
            raise UserError(f"{self.checkpoint_path} holds a run of {old_model!r}, not "
                            f"{self.config.get('model')!r}; check --run-name/--output-dir")
        # A flag that one of the two runs does not know is not compared.
        old_args = ckpt.get("config", {}).get("args", {})
        new_args = self.config.get("args", {})
        changed = sorted(k for k in set(old_args) & set(new_args)
                         if k not in self.may_differ and old_args[k] != new_args[k])
        if changed:
            raise UserError("--resume with other flags than the interrupted run's ("
                            + ", ".join(f"--{k.replace('_', '-')} was {old_args.get(k)}"
                                        for k in changed)
                            + "); resume with the same flags or start a new run", exit_code=2)
        try:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise UserError(f"{self.checkpoint_path} does not fit this model/optimizer "
                            f"({str(err).splitlines()[0]}); the flags differ from the "
                            "interrupted run's") from None
        if ckpt["config"].get("started"):  # the run started then, not at this resume
            self.config["started"] = ckpt["config"]["started"]
        if ckpt["config"].get("command"):  # what made the run; the resume is recorded beside
            self.config["resumed_with"] = self.config.get("command")
            self.config["command"] = ckpt["config"]["command"]
        started_env = ckpt["config"].get("environment")
        if started_env:  # where the run started; each move to another CPU or thread count beside
            resumed_on = list(ckpt["config"].get("resumed_on", []))
            here = self.config.get("environment")
            if here and _where(here) != _where([started_env, *resumed_on][-1]):
                resumed_on.append(here)
            if resumed_on:
                self.config["resumed_on"] = resumed_on
            self.config["environment"] = started_env
        torch.set_rng_state(ckpt["rng"]["torch"])
        saved = ckpt["rng"].get("device")
        if saved is not None and saved["type"] == self.device.type:
            set_rng_state(self.device, saved["state"])
        elif self.device.type == "cuda" and ckpt["rng"].get("cuda"):
            # a checkpoint of before 2026-11-30 kept every visible GPU's; take the first
            set_rng_state(self.device, ckpt["rng"]["cuda"][0])
        return ckpt


def _where(environment: dict) -> tuple:
    """What of a run's environment decides its numbers beside its seed: the chips and threads."""
    return environment.get("cpu"), environment.get("gpu"), environment.get("threads")
