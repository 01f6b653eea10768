"""The run directory's single-writer lock: an OS lock that dies with its process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from budgeteval.atomic import remove_leftovers
from budgeteval.errors import UserError
from budgeteval.rundir.layout import LOCK_NAME, foreign_entries

_held: dict[str, RunLock] = {}
"""Locks this process holds, by resolved run directory: taking one again nests (run -> score)."""


@dataclass
class RunLock:
    """An OS-level exclusive lock on a run directory, held by one command of one process."""

    path: Path
    """The lock file."""
    handle: int
    """Its open file descriptor (the lock lives as long as this stays open)."""
    created_dir: bool
    """Whether taking the lock created the run directory (removed again if nothing else lands in it)."""
    depth: int = 1
    """How many nested `lock_run` calls of this process hold it."""


def lock_holder(run_dir: Path) -> str:
    """`pid N (budgeteval COMMAND ...)` of the process that wrote the lock file last (for messages)."""
    try:
        pid, _, command = Path(run_dir, LOCK_NAME).read_text(encoding="utf-8").partition("\n")
    except OSError:
        return "another process"
    return f"pid {pid.strip() or '?'} ({command.strip() or 'budgeteval'})"


def _command_line(command: str) -> str:
    """`budgeteval COMMAND ARGS...` when this process is the CLI, else `budgeteval COMMAND (Python)`."""
    if Path(sys.argv[0]).name in ("budgeteval", "cli.py") and command in sys.argv[1:2]:
        return " ".join(["budgeteval", *sys.argv[1:]])
    return f"budgeteval {command} (called from Python)"


@contextlib.contextmanager
def lock_run(run_dir: Path, command: str):
    """Hold `run_dir`'s write lock for the block, or refuse at once if another process holds it.

    `command` (`run`, `score`, ...) is written into the lock file with the command line, so a
    refused writer can say who holds it. A directory the lock itself had to create is removed again on the
    way out when nothing but the lock file landed in it (a command refused for a bad flag leaves
    no trace).
    """
    run_dir = Path(run_dir)
    key = str(run_dir.resolve())
    if key in _held:
        _held[key].depth += 1
        try:
            yield _held[key]
        finally:
            _held[key].depth -= 1
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{run_dir} is a file, not a run directory: choose another --out.")
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"Cannot create the run directory {run_dir} ({error.strerror}): choose another --out.") from None
    path = run_dir / LOCK_NAME
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise UserError(f"Cannot write into {run_dir} ({error.strerror}): {command} needs a run directory it can "
                        f"write; copy the run somewhere writable.") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        raise UserError(f"{run_dir} is being written by {lock_holder(run_dir)}: wait for it to finish or stop it, "
                        f"then re-run this command (report, compare and plot can read the run meanwhile).") from None
    os.ftruncate(handle, 0)
    os.write(handle, f"{os.getpid()}\n{_command_line(command)}\n".encode())
    lock = _held[key] = RunLock(path, handle, created)
    try:
        # Under the lock no other writer is live, so temp files here are a killed writer's leftovers.
        remove_leftovers(run_dir)
        yield lock
    finally:
        del _held[key]
        if created and not foreign_entries(run_dir):
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                run_dir.rmdir()
        os.close(handle)


