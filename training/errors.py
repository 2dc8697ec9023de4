"""The typed errors of the project: what went wrong, as data. The bottom of the import graph:
nothing here imports the project, and nothing here words an error for the user; the command
line does (`training.cli.describe` and `explain`), and an error's own text is that wording.
"""
from __future__ import annotations

import torch


class UserError(Exception):
    """A mistake the user can fix. The CLI prints its message as one line, no traceback.

    exit_code 2 is a usage error (bad flag), 1 anything else (bad data, weights, folder).
    """

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class Worded(Exception):
    """An error whose text is the command line's wording of its fields."""

    def __str__(self) -> str:
        from training.cli import describe  # the one wording; cli imports this module

        return describe(self)


class Interrupted(Exception):
    """Ctrl-C, handled: what was done is saved. The CLI adds the command that resumes it and
    exits 130."""


class TrainingInterrupted(Worded, Interrupted):
    """Ctrl-C while training: the run is saved (its JSON and checkpoint)."""

    def __init__(self, epoch: float, step: int, saved: tuple):
        super().__init__(epoch, step, saved)
        self.epoch, self.step, self.saved = epoch, step, saved


class TrainingDiverged(Worded):
    """The training loss became NaN or infinite; the run and its best weights were saved."""

    def __init__(self, step: int, epoch: float, lr: float, saved: tuple):
        super().__init__(step, epoch, lr, saved)
        self.step, self.epoch, self.lr, self.saved = step, epoch, lr, saved


class OutOfMemory(Worded):
    """The device ran out of memory in a training step or while evaluating (`during`).

    `step_kind`: the step's kind ("eager", "graphed"); `last_epoch`: the epoch of the last
    finished check, saved in `saved` (the run JSON and checkpoint), None when none had
    finished; `error`: the name of the error the device raised."""

    def __init__(self, during: str, device_type: str, batch_size: int | None, step_kind: str,
                 last_epoch: float | None, saved: tuple, error: str):
        super().__init__(during, device_type, batch_size, step_kind, last_epoch, saved, error)
        self.during, self.device_type, self.batch_size = during, device_type, batch_size
        self.step_kind, self.last_epoch, self.saved, self.error = (step_kind, last_epoch,
                                                                   saved, error)


def is_out_of_memory(err: BaseException | None) -> bool:
    """Whether `err`, or an error it was raised from or during, is the device or the host
    running out of memory: CUDA's OutOfMemoryError, MPS's RuntimeError ("MPS backend out of
    memory"), a CUDA call's "out of memory", or a failed graph capture caused by one."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, (MemoryError, torch.cuda.OutOfMemoryError)):
            return True
        if isinstance(err, RuntimeError) and "out of memory" in str(err).lower():
            return True
        err = err.__cause__ or err.__context__
    return False
