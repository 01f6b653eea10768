"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Everything the harness writes into a run directory goes through here (temp file in the same
folder, flush + fsync, `os.replace`; a folder such as `tokenizer/` is written beside its place
and renamed into it), so a run killed with SIGKILL never leaves a torn file. What a kill can leave
is a hidden temp entry (`.NAME.*.tmp`), which `is_leftover` recognises and the next writer removes.

Fault injection for the crash tests: with `BUDGETEVAL_KILL_AFTER_WRITES=N` the process sends
itself SIGKILL right after its N-th file operation here (a temp file written, a file or folder
moved into place, an old folder removed); `BUDGETEVAL_WRITE_LOG=PATH` appends one line per
operation to PATH (how the tests count a command's write points).
"""

import os
import shutil
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

_operations = 0
"""File operations this process has done here (the fault-injection counter)."""

TEMP_SUFFIX = ".tmp"


def _done(operation: str, path: Path) -> None:
    """Count one file operation; log it and kill the process here when the environment asks to."""
    global _operations
    _operations += 1
    log = os.environ.get("BUDGETEVAL_WRITE_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as stream:
            stream.write(f"{_operations}\t{operation}\t{path}\n")
    if os.environ.get("BUDGETEVAL_KILL_AFTER_WRITES") == str(_operations):
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_dir(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(temp_path)` to produce the file, then move it over `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(handle)
    temp_path = Path(temp_name)
    try:
        write(temp_path)
        with open(temp_path, "rb+") as stream:
            os.fsync(stream.fileno())
        _done("write-temp", temp_path)
        os.replace(temp_path, path)
    finally:
        if temp_path.exists():
            temp_path.unlink()
    _fsync_dir(path.parent)
    _done("replace", path)


def write_text_atomic(path: Path, text: str) -> None:
    """Atomically replace `path` with `text` (UTF-8)."""
    write_atomic(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def replace_dir(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(temp_dir)` to fill a new folder, then put it at `path` (replacing an old one).

    A folder cannot be renamed over a non-empty one, so the old folder is removed first: a kill in
    between leaves no folder at `path` (and the new one under its temp name), never a mixed one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent))
    try:
        write(temp_dir)
        _done("write-temp-dir", temp_dir)
        if path.exists():
            shutil.rmtree(path)
            _done("remove-dir", path)
        os.replace(temp_dir, path)
    finally:
        if temp_dir.exists():
            shutil.rmtree(temp_dir)
    _fsync_dir(path.parent)
    _done("replace-dir", path)


def is_leftover(path: Path) -> bool:
    """Whether `path` is a temp entry of this module that a killed writer left behind."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def remove_leftovers(folder: Path) -> int:
    """Remove the temp entries killed writers left anywhere under `folder`; returns how many.

    Only safe while holding the folder's write lock (`budgeteval.rundir.lock.lock_run`): a live
    writer's temp file looks the same.
    """
    removed = 0
    for path in sorted(Path(folder).rglob(f".*{TEMP_SUFFIX}"), reverse=True):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
        removed += 1
    return removed
