"""Guards every test runs under (a pytest plugin, loaded by conftest.py).

- Tiers: tests marked `slow` (or in a module marked so) get `SLOW_DEADLINE_S`, the rest
  `FAST_DEADLINE_S`, unless a test sets its own `@pytest.mark.timeout`.
- Deadlines that name the culprit: a test past its deadline fails with a dump of every thread of
  this process and every child process (pid, state, command line); one that cannot be interrupted
  (a C call that never returns) ends the session `HARD_EXIT_GRACE_S` later with the same dump, so a
  hang never eats the CI's whole budget.
- Nothing silently skipped: `need(reason)` skips a test whose dependency (../shared, bubblewrap,
  Chromium, vLLM, lm-eval, Ray, ...) is missing, but fails it under `CI=true`; the run ends with a
  one-line count of what was skipped and why.
- Loopback only: a test whose process, or any process under it, connects to an address outside
  127.0.0.0/8 and ::1 fails, naming the process and the address.
"""

from __future__ import annotations

import collections
import faulthandler
import ipaddress
import os
import signal
import socket
import sys
import threading
import traceback

import pytest

FAST_DEADLINE_S = 300
"""Deadline of a test of the fast tier (`-m "not slow"`)."""
SLOW_DEADLINE_S = 1200
"""Deadline of a `slow` test: a real engine, server, cluster, browser or kill sweep."""
HARD_EXIT_GRACE_S = float(os.environ.get("BUDGETEVAL_TEST_HARD_EXIT_GRACE_S", 120))
"""How long past its deadline a test that ignores the interruption may run before the session ends."""
CONNECTION_POLL_S = 0.5
"""How often the processes under the test are checked for connections leaving the machine."""

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


# --- nothing silently skipped ------------------------------------------------------------------------


def need(reason: str):
    """Skip the calling test (or module) for a missing dependency; under CI=true fail it instead."""
    if IN_CI:
        pytest.fail(f"CI=true and a dependency is missing: {reason}", pytrace=False)
    pytest.skip(reason)


def import_or_need(module: str, reason: str):
    """`pytest.importorskip`, failing under CI=true."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as error:
        need(f"{reason} ({error})")


def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons = collections.Counter()
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    parts = "; ".join(f"{count} x {reason}" for reason, count in reasons.most_common())
    terminalreporter.write_line(f"skipped {len(skipped)}: {parts}")


# --- tiers and deadlines -----------------------------------------------------------------------------


def pytest_collection_modifyitems(config, items):
    if "full_kill_sweep" not in (config.option.markexpr or ""):  # opt-in only: -m full_kill_sweep
        opted_out = [item for item in items if item.get_closest_marker("full_kill_sweep")]
        if opted_out:
            config.hook.pytest_deselected(items=opted_out)
            items[:] = [item for item in items if not item.get_closest_marker("full_kill_sweep")]
    for item in items:
        if item.get_closest_marker("timeout") is None:
            deadline = SLOW_DEADLINE_S if item.get_closest_marker("slow") else FAST_DEADLINE_S
            item.add_marker(pytest.mark.timeout(deadline))


def _process_dump() -> str:
    """Every thread of this process (its stack) and every process under it (pid, state, command)."""
    lines = []
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        lines.append(f"--- thread {names.get(ident, '?')} ({ident})")
        lines.extend(line.rstrip("\n") for line in traceback.format_stack(frame))
    try:
        import psutil

        for child in psutil.Process().children(recursive=True):
            try:
                command = " ".join(child.cmdline())[:300] or child.name()
                lines.append(f"--- child pid {child.pid} (parent {child.ppid()}, {child.status()}): {command}")
            except psutil.Error:
                continue
    except ImportError:
        lines.append("--- child processes not listed: psutil is not installed")
    return "\n".join(lines)


class _Deadline:
    """SIGALRM fails the test at its deadline; a watchdog thread ends the session if that does not work."""

    def __init__(self, item, seconds: float):
        self.item, self.seconds = item, seconds
        self.watchdog = threading.Timer(seconds + HARD_EXIT_GRACE_S, self._hard_exit)
        self.watchdog.daemon = True

    def start(self):
        self.previous = signal.signal(signal.SIGALRM, self._fail)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        self.watchdog.start()

    def cancel(self):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous)
        self.watchdog.cancel()

    def _fail(self, signum, frame):
        __tracebackhide__ = True
        pytest.fail(f"{self.item.nodeid} passed its deadline of {self.seconds:g} s\n{_process_dump()}",
                    pytrace=False)

    def _hard_exit(self):
        capture = self.item.config.pluginmanager.getplugin("capturemanager")
        if capture is not None:  # the dump must reach the real stderr, not a capture file that dies with us
            capture.suspend_global_capture(in_=True)
        sys.__stderr__.write(f"\n{self.item.nodeid} is stuck {HARD_EXIT_GRACE_S:g} s past its deadline of "
                             f"{self.seconds:g} s and cannot be interrupted; ending the session.\n"
                             f"{_process_dump()}\n")
        faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)
        sys.__stderr__.flush()
        os._exit(3)


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item, settings):
    deadline = _Deadline(item, settings.timeout)
    deadline.start()
    item.stash[_DEADLINE] = deadline
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_cancel_timer(item):
    deadline = item.stash.get(_DEADLINE, None)
    if deadline is not None:
        deadline.cancel()
        del item.stash[_DEADLINE]
    return True


_DEADLINE = pytest.StashKey[_Deadline]()


# --- loopback only -----------------------------------------------------------------------------------


def _is_loopback_address(text: str) -> bool:
    address = ipaddress.ip_address(text.split("%")[0])
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback  # ::ffff:127.0.0.1 is loopback


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is a loopback address (a name is resolved)."""
    try:
        return _is_loopback_address(host)
    except ValueError:
        pass
    try:
        infos = _real_getaddrinfo(host, None)
    except OSError:
        return True  # a name that resolves to nothing sends nothing
    return all(_is_loopback_address(info[4][0]) for info in infos)


_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_violations: list[str] = []
"""Connections that left loopback since the current test began, as text."""


def _check_address(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) and not is_loopback(
            str(address[0])):
        message = f"this test process connected to {address[0]}:{address[1]}, not a loopback address"
        _violations.append(message)
        raise ConnectionRefusedError(message)


def _guarded_connect(sock, address):
    _check_address(sock, address)
    return _real_connect(sock, address)


def _guarded_connect_ex(sock, address):
    _check_address(sock, address)
    return _real_connect_ex(sock, address)


def _descendant_connections(seen: set):
    """Record sockets of this process and the processes under it that reach or listen beyond loopback.

    A connection counts by its remote address; a listening socket by the address it is bound to, so a
    server bound to every interface (0.0.0.0, ::) counts even before anything connects to it.
    """
    import psutil

    try:
        pids = {os.getpid()} | {child.pid for child in psutil.Process().children(recursive=True)}
        connections = psutil.net_connections(kind="inet")
    except (psutil.Error, OSError):
        return
    for connection in connections:
        if connection.pid not in pids:
            continue
        if connection.raddr and not _is_loopback_address(connection.raddr.ip):
            what = f"connected to {connection.raddr.ip}:{connection.raddr.port}"
        elif connection.status == psutil.CONN_LISTEN and not _is_loopback_address(connection.laddr.ip):
            what = f"listens on {connection.laddr.ip}:{connection.laddr.port}"
        else:
            continue
        key = (connection.pid, what)
        if key in seen:
            continue
        seen.add(key)
        try:
            command = " ".join(psutil.Process(connection.pid).cmdline())[:200]
        except psutil.Error:
            command = "?"
        who = "this test process" if connection.pid == os.getpid() else f"child pid {connection.pid} ({command})"
        _violations.append(f"{who} {what}, not a loopback address")


class _ConnectionWatch(threading.Thread):
    """Polls the processes under pytest for connections that leave loopback."""

    def __init__(self):
        super().__init__(name="loopback-guard", daemon=True)
        self.stop = threading.Event()
        self.seen: set = set()

    def run(self):
        while not self.stop.wait(CONNECTION_POLL_S):
            _descendant_connections(self.seen)


def pytest_configure(config):
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    try:
        import psutil  # noqa: F401
    except ImportError:
        return
    watch = _ConnectionWatch()
    watch.start()
    config.stash[_WATCH] = watch


def pytest_unconfigure(config):
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex
    watch = config.stash.get(_WATCH, None)
    if watch is not None:
        watch.stop.set()


_WATCH = pytest.StashKey[_ConnectionWatch]()


def _fail_on_violations(item):
    if item.get_closest_marker("loopback_unguarded"):
        _violations.clear()
        return
    watch = item.config.stash.get(_WATCH, None)
    if watch is not None:
        _descendant_connections(watch.seen)
    if _violations:
        found = "; ".join(dict.fromkeys(_violations))
        _violations.clear()
        pytest.fail(f"network traffic left loopback: {found}", pytrace=False)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _violations.clear()  # what happened before this test belongs to an earlier one


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield  # connections made by this test's fixtures count too: setup did not clear them
    _fail_on_violations(item)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    result = yield
    _fail_on_violations(item)
    return result
