"""Process hygiene for CLI commands: a signal ends a command cleanly, and nothing it started outlives it.

A command runs inside `command_scope()`, which
- turns SIGTERM and SIGHUP into `Terminated` (a `KeyboardInterrupt`) in the main thread, so the
  `finally` blocks that close engines (`VLLMBackend.close`) and stop scoring workers run for
  `kill PID` exactly as for Ctrl-C;
- makes the command's process a child subreaper (Linux `PR_SET_CHILD_SUBREAPER`): a process
  orphaned under it (a vLLM worker whose `VLLM::EngineCore` parent died first, a data-parallel
  replica's engine) is re-parented to the command instead of to init, so it can still be found;
- on the way out, normal or not, ends every descendant still alive (SIGTERM, then SIGKILL after
  a grace period) and reaps them, including multiprocessing's resource tracker (never waited
  for on its own: it lives as long as any child holding its pipe).

Descendants are found from /proc (parent pids), so this needs no package; on systems without
/proc the signal handling still applies and the sweep finds nothing.
"""

import contextlib
import ctypes
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
"""prctl option (linux/prctl.h) that makes orphaned descendants re-parent to the caller."""
TERMINATING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""Signals that end a command like Ctrl-C does (SIGINT already raises KeyboardInterrupt)."""
GRACE_S = 5.0
"""Seconds descendants get to exit after SIGTERM before they are killed."""


class Terminated(KeyboardInterrupt):
    """A terminating signal arrived; unwinds like Ctrl-C so every cleanup runs."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum, _frame) -> None:
    raise Terminated(signum)


def become_subreaper() -> bool:
    """Ask the kernel to re-parent this process's orphaned descendants to it (Linux only)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _parent_pids() -> dict[int, int]:
    """pid -> parent pid for every process /proc shows."""
    parents = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited meanwhile
            continue
        # The command name (field 2) is in parentheses and may contain spaces or parentheses.
        fields = stat[stat.rindex(")") + 2:].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2:].split()[0] == "Z"


def descendants(pid: int = None) -> list[int]:
    """Pids of every live process below `pid` (default: this one), parents before children."""
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for child, parent in _parent_pids().items():
        children.setdefault(parent, []).append(child)
    found, frontier = [], [root]
    while frontier:
        below = [child for parent in frontier for child in children.get(parent, ())]
        found.extend(below)
        frontier = below
    return [child for child in found if not _is_zombie(child)]


def _reap() -> None:
    """Collect exited children (our own and re-parented orphans) so they leave the process table."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _release_resource_tracker() -> None:
    """Close this process's end of multiprocessing's resource-tracker pipe, without waiting.

    The tracker ignores SIGTERM and exits once every holder of the pipe's write end has closed it:
    this process and every spawned child. Its own `_stop` waits for it, which hangs forever while a
    child lives on (one whose start a signal cut short waits for its start-up data for good); the
    sweep in `end_descendants` ends such children, and the tracker then exits and is reaped.
    """
    try:
        from multiprocessing import resource_tracker

        tracker = resource_tracker._resource_tracker
        with tracker._lock:
            fd = getattr(tracker, "_fd", None)
            if fd is None:
                return
            tracker._fd = None
            tracker._pid = None  # reaped by the sweep, not by `_stop`
        os.close(fd)
    except Exception:  # noqa: BLE001  (best effort: the sweep below kills it otherwise)
        pass


def end_descendants(grace_s: float = GRACE_S) -> list[int]:
    """End every descendant of this process: SIGTERM, wait up to `grace_s`, SIGKILL; returns who was left."""
    _release_resource_tracker()
    left = descendants()
    if not left:
        _reap()
        return []
    _signal_all(left, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _reap()
        alive = descendants()
        if not alive:
            break
        time.sleep(0.05)
    else:
        # Children born during the grace period (a dying engine's helpers) are killed as well.
        _signal_all(descendants(), signal.SIGKILL)
        time.sleep(0.1)
    _reap()
    return left


@contextlib.contextmanager
def command_scope() -> Iterator[None]:
    """Run one CLI command: signals unwind it, and its descendants are ended when it leaves."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main_thread:
        for signum in TERMINATING_SIGNALS:
            previous[signum] = signal.signal(signum, _raise_terminated)
    become_subreaper()
    try:
        yield
    finally:
        if in_main_thread:
            # A second signal during cleanup must not cut the sweep short.
            for signum in TERMINATING_SIGNALS + (signal.SIGINT,):
                previous.setdefault(signum, signal.getsignal(signum))
                signal.signal(signum, signal.SIG_IGN)
        try:
            end_descendants()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
