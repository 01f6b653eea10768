"""Run untrusted Python (model-written programs) in a fresh, locked-down OS process.

Every call of `Sandbox.run_python` starts a new process tree and tears it down again; nothing of
the untrusted program ever runs in the caller's process (no `exec` in the harness). Two backends,
picked by `BUDGETEVAL_SANDBOX` (`auto`, the default, tries them in this order):

- `bwrap` (bubblewrap, `apt-get install bubblewrap`): new PID, network, IPC, UTS and cgroup
  namespaces, and an empty root filesystem holding only read-only binds of `/usr` (and the `/lib*`,
  `/bin`, `/sbin` links), `/etc/ld.so.cache` and the Python installation, a fresh `/proc`, a
  minimal `/dev`, and size-limited tmpfs mounts at `/tmp` (the working directory) and `/dev/shm`.
  Run as root, bubblewrap keeps only CAP_SETUID/CAP_SETGID for the harness, which switches to uid
  and gid 65534 (`nobody`) before the program starts, so the program holds no capability and no
  root uid; run as another user, bubblewrap adds a user namespace and the program keeps that user.
- `unshare` (util-linux, root only; the fallback when bubblewrap is missing): new PID, network,
  IPC, UTS and mount namespaces; size-limited tmpfs mounts over `/tmp` (the working directory),
  `/var/tmp`, `/dev/shm` and `/run/lock`; directories on the way to the Python installation that
  uid 65534 may not enter (e.g. `/root` of a pyenv install) are replaced by empty tmpfs mounts
  with only the Python directories bound back read-only; then the same switch to `nobody`.

In both, the harness then sets no_new_privs and the resource limits of `SandboxLimits` (CPU time,
address space, processes, file size, open files, no core files) before running the program, the
environment holds only a fixed list of harmless variables, stdin/stdout/stderr are files the parent
opened (stdout and every file the program writes are capped by the file-size limit), the parent
kills the whole tree at the wall-clock limit, and the PID namespace guarantees that no process the
program started survives it (its init is killed when the program or the sandbox ends).

What this protects against: fork bombs, memory bombs, infinite loops and busy threads, huge
output, filling the disk or `/dev/shm`, writing, deleting or reading files outside the sandbox
(bwrap: they are not there; unshare: file permissions of uid 65534), any network access (TCP, UDP,
DNS; the network namespace has only its own loopback), signalling or tracing the parent or other
host processes, daemons that outlive the run, reading the caller's environment (API keys), setuid
binaries, and forging a verdict (outputs are compared in the parent, never by the program).

What it does not protect against: kernel exploits (there is no seccomp filter and no VM);
CPU-cache side channels; with `unshare`, reading world-readable host files (the whole host
filesystem stays visible to uid 65534); when started by root, the process limit counts every
uid-65534 process of the host (parallel sandboxes share it); with bwrap run by a non-root user,
the program acting as that user inside the sandbox (its files are still invisible); memory used by
the tmpfs mounts counts against the machine's RAM, not the program's address-space limit (each is
capped by `scratch_bytes`).

The interpreter is the caller's (`sys.executable`) started with `-S`: the harness
(`sandbox_harness.py`, passed as `-c` text) puts the installation's site-packages on `sys.path`
itself, so packages import but no `.pth` code runs. The unshare backend's mount set-up is
`sandbox_unshare.sh`, run as `/bin/sh -c` text.
Python programs only; comparing outputs is the scorer's job (`budgeteval.scoring.scorers.code`).
"""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from budgeteval.errors import UserError

Status = Literal["ok", "runtime_error", "time_limit", "memory_limit", "output_limit", "sandbox_error"]
"""How a sandboxed run ended (see `RunOutcome.status`)."""

BACKENDS = ("bwrap", "unshare")
"""Sandbox backends, in the order `auto` tries them."""
SANDBOX_ENV_VAR = "BUDGETEVAL_SANDBOX"
"""Environment variable choosing the backend: `auto` (default), `bwrap` or `unshare`."""
NOBODY = 65534
"""The uid and gid a program runs as when the sandbox is started by root."""

SETUP_FAILED_EXIT = 86
"""Harness exit code when it could not lock the process down (never the program's; sent in its config)."""
MEMORY_EXIT = 87
"""Harness exit code after the program raised MemoryError (sent in its config)."""
_STARTED = "started"
_READY = "ready"
_STDERR_TAIL_BYTES = 4096


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one sandboxed run."""

    cpu_time_s: float = 6.0
    """CPU seconds (RLIMIT_CPU, rounded up; all threads count): SIGXCPU, then SIGKILL a second later."""
    wall_time_s: float = 12.0
    """Seconds after which the parent kills the whole process tree (catches sleeping programs)."""
    memory_bytes: int = 4 * 1024**3
    """Address-space limit (RLIMIT_AS) of every process of the program."""
    processes: int = 64
    """Processes and threads the program's uid may have (RLIMIT_NPROC)."""
    file_size_bytes: int = 64 * 1024**2
    """Largest file the program may write (RLIMIT_FSIZE); stdout is a file, so also the output cap."""
    open_files: int = 256
    """Open file descriptors (RLIMIT_NOFILE)."""
    scratch_bytes: int = 64 * 1024**2
    """Size of each private tmpfs (`/tmp`, the working directory; `/dev/shm`; ...)."""


@dataclass(frozen=True)
class RunOutcome:
    """What one sandboxed run produced and how it ended."""

    status: Status
    """ok: exited normally; runtime_error: an exception, non-zero exit or fatal signal;
    time_limit: CPU or wall-clock limit; memory_limit: MemoryError under the address-space limit;
    output_limit: stdout reached the file-size limit; sandbox_error: the sandbox itself failed
    (the program never ran)."""
    stdout: bytes
    """Everything the program wrote to stdout (at most `file_size_bytes`)."""
    result: str | None
    """Call mode: the JSON the harness wrote for the function's return value; else None."""
    exit_code: int | None
    """Exit status of the program (None when killed by a signal or by the parent)."""
    signal: int | None
    """Signal that ended the program, if any."""
    stderr_tail: str
    """The last few KB of stderr (a traceback, or the sandbox's own error)."""
    wall_time_s: float
    """Seconds from start to end, sandbox set-up included."""


# Package files rather than string literals so linters read them; both run as `-c` text.
_HARNESS = resources.files(__package__).joinpath("sandbox_harness.py").read_text(encoding="utf-8")
_UNSHARE_SETUP = resources.files(__package__).joinpath("sandbox_unshare.sh").read_text(encoding="utf-8")

_SAFE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "PYTHONHASHSEED": "0",  # set iteration order, hence printed output, is the same every run
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONIOENCODING": "utf-8",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MALLOC_ARENA_MAX": "2",  # glibc reserves 64 MB of address space per thread arena otherwise
}
"""The whole environment a sandboxed program sees (nothing of the caller's is passed on)."""


@dataclass(frozen=True)
class _Layout:
    """Host paths the sandbox must make visible to run the interpreter."""

    python: str
    """The interpreter to run (the caller's `sys.executable` by default)."""
    python_dirs: tuple[str, ...]
    """Directories of the Python installation (prefixes, the executable's folder), deduplicated."""
    site_packages: tuple[str, ...]
    """The interpreter's site-packages folders, put on `sys.path` by the harness (which runs with
    `-S`: no `site` module, so no `.pth` file runs and start-up is ~25 ms faster)."""


_LAYOUT_PROBE = ("import json, site, sys; print(json.dumps([[sys.prefix, sys.base_prefix, sys.exec_prefix, "
                 "sys.base_exec_prefix], site.getsitepackages()]))")


def _python_layout(python: str) -> _Layout:
    if python == sys.executable:
        import site

        prefixes, site_packages = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}, site.getsitepackages()
    else:
        probe = subprocess.run([python, "-s", "-c", _LAYOUT_PROBE], capture_output=True, text=True, env=_SAFE_ENV,
                               timeout=60, check=False)
        if probe.returncode != 0:
            raise UserError(f"Cannot run the sandbox interpreter {python}: {probe.stderr.strip()[-200:]}")
        prefixes, site_packages = json.loads(probe.stdout)
        prefixes = set(prefixes)
    candidates = {os.path.realpath(path) for path in prefixes}
    candidates.add(os.path.dirname(os.path.realpath(python)))
    candidates.add(os.path.dirname(os.path.abspath(python)))
    dirs = []
    for path in sorted(candidates, key=len):
        if path in ("/", "/usr") or path.startswith("/usr/"):
            continue
        if not any(path == kept or path.startswith(kept + "/") for kept in dirs):
            dirs.append(path)
    return _Layout(python=python, python_dirs=tuple(dirs),
                   site_packages=tuple(path for path in site_packages if os.path.isdir(path)))


def _ancestors(path: str) -> list[str]:
    parts = Path(path).parts[1:-1]
    return ["/" + "/".join(parts[:index]) for index in range(1, len(parts) + 1)]


def _not_enterable_by_others(path: str) -> bool:
    try:
        return not os.stat(path).st_mode & stat.S_IXOTH
    except OSError:
        return False


class Sandbox:
    """Runs Python programs under one backend; see the module docstring for what it isolates."""

    def __init__(self, backend: str = "auto", python: str | None = None) -> None:
        """`backend`: `auto`, `bwrap` or `unshare` (`auto` reads BUDGETEVAL_SANDBOX, then probes)."""
        self.layout = _python_layout(python or sys.executable)
        self.is_root = os.geteuid() == 0
        chosen = os.environ.get(SANDBOX_ENV_VAR, "auto") if backend == "auto" else backend
        if chosen not in ("auto",) + BACKENDS:
            raise UserError(f"{SANDBOX_ENV_VAR}={chosen!r} is not a sandbox backend; use auto, {' or '.join(BACKENDS)}.")
        if chosen == "auto":
            problems = []
            for name in BACKENDS:
                problem = self._unusable(name)
                if problem is None:
                    chosen = name
                    break
                problems.append(f"{name}: {problem}")
            else:
                raise UserError(
                    "No sandbox for model-written code works on this machine (" + "; ".join(problems) + "): "
                    "install bubblewrap (`apt-get install bubblewrap`), or run as root for the unshare fallback.")
        else:
            problem = self._unusable(chosen)
            if problem is not None:
                raise UserError(f"The {chosen} sandbox does not work on this machine: {problem}.")
        self.backend = chosen

    def _unusable(self, backend: str) -> str | None:
        """Why `backend` cannot run here, or None when a probe program ran correctly in it."""
        tool = "bwrap" if backend == "bwrap" else "unshare"
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
        if backend == "unshare" and not self.is_root:
            return "the unshare fallback needs root (it switches the program to uid 65534)"
        return _probe(backend, self.layout, self.is_root)

    def run_python(self, source: str, stdin: bytes = b"", *, limits: SandboxLimits = SandboxLimits(),
                   prelude: str = "", function: str | None = None) -> RunOutcome:
        """Run `source` as `__main__` in a fresh sandbox and report how it ended.

        `prelude` runs first in the same namespace (trusted, before privileges are dropped, so the
        modules it imports are already loaded). With `function`, the program's function (or
        `Solution().<function>`) is then called with one argument per line of `stdin`, each
        parsed as JSON, and `RunOutcome.result` holds the return value as JSON
        (`{"value": ...}`, or `{"unrepresentable": type}` for values JSON cannot carry exactly).
        """
        return _run(self.backend, self.layout, self.is_root, source, stdin, limits, prelude, function)


@cache
def _probe(backend: str, layout: _Layout, is_root: bool) -> str | None:
    limits = SandboxLimits(cpu_time_s=20, wall_time_s=60)
    outcome = _run(backend, layout, is_root, "import sys\nprint(sum(map(int, sys.stdin.read().split())))",
                   b"20 22", limits, "", None)
    if outcome.status == "ok" and outcome.stdout.strip() == b"42":
        return None
    detail = outcome.stderr_tail.strip().splitlines()
    return f"a probe program ended with {outcome.status} ({detail[-1] if detail else 'no message'})"


def _rlimits(limits: SandboxLimits) -> list[tuple[str, int, int]]:
    cpu = max(1, int(-(-limits.cpu_time_s // 1)))
    return [
        ("RLIMIT_CORE", 0, 0),
        ("RLIMIT_CPU", cpu, cpu + 1),
        ("RLIMIT_AS", limits.memory_bytes, limits.memory_bytes),
        ("RLIMIT_NPROC", limits.processes, limits.processes),
        ("RLIMIT_FSIZE", limits.file_size_bytes, limits.file_size_bytes),
        ("RLIMIT_NOFILE", limits.open_files, limits.open_files),
    ]


def _harness_config(layout: _Layout, is_root: bool, source: str, prelude: str, function: str | None,
                    limits: SandboxLimits) -> dict:
    """What the harness reads from its config file descriptor (see `sandbox_harness.py`)."""
    return {"source": source, "prelude": prelude, "function": function, "rlimits": _rlimits(limits),
            "drop_to": [NOBODY, NOBODY] if is_root else None, "sys_path": list(layout.site_packages),
            "setup_failed_exit": SETUP_FAILED_EXIT, "memory_exit": MEMORY_EXIT}


def _bwrap_command(layout: _Layout, is_root: bool, limits: SandboxLimits) -> list[str]:
    command = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
               "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if not is_root:
        command.append("--unshare-user")
    for name in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(name):
            command += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            command += ["--ro-bind", name, name]
    if os.path.isfile("/etc/ld.so.cache"):
        command += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    size = str(limits.scratch_bytes)
    # The private mounts come before the Python directories: a virtual environment under /tmp (a
    # CI clone, say) is then bound read-only on top of the fresh tmpfs instead of hidden by it.
    command += ["--proc", "/proc", "--dev", "/dev",
                "--size", size, "--perms", "1777", "--tmpfs", "/tmp",
                "--size", size, "--perms", "1777", "--tmpfs", "/dev/shm"]
    made = {"/tmp", "/dev", "/dev/shm", "/proc"}
    for path in layout.python_dirs:
        for ancestor in _ancestors(path):
            if ancestor not in made and not any(ancestor == p or ancestor.startswith(p + "/") for p in layout.python_dirs):
                command += ["--perms", "0755", "--dir", ancestor]
                made.add(ancestor)
        command += ["--ro-bind", path, path]
    command += ["--chdir", "/tmp", "--clearenv"]
    for key, value in _SAFE_ENV.items():
        command += ["--setenv", key, value]
    if is_root:
        command += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    return command + ["--"]


def _unshare_command(layout: _Layout, limits: SandboxLimits) -> list[str]:
    hide = sorted({ancestor for path in layout.python_dirs for ancestor in _ancestors(path)
                   if _not_enterable_by_others(ancestor)}, key=len)
    hide = [path for path in hide if not any(path.startswith(kept + "/") for kept in hide)]
    expose = list(layout.python_dirs)  # always: some may lie under /tmp, which gets a fresh tmpfs
    return (["unshare", "--fork", "--pid", "--kill-child", "--mount-proc", "--net", "--ipc", "--uts", "--",
             "/bin/sh", "-c", _UNSHARE_SETUP, "budgeteval-sandbox", str(limits.scratch_bytes),
             str(len(expose))] + expose + [str(len(hide))] + hide)


def _run(backend: str, layout: _Layout, is_root: bool, source: str, stdin: bytes, limits: SandboxLimits,
         prelude: str, function: str | None) -> RunOutcome:
    config = _harness_config(layout, is_root, source, prelude, function, limits)
    with tempfile.TemporaryDirectory(prefix="budgeteval-sandbox-") as host_dir:
        host = Path(host_dir)  # 0700, owned by the caller; never mounted into the sandbox
        (host / "config.json").write_text(json.dumps(config), encoding="utf-8")
        (host / "stdin").write_bytes(stdin)
        with open(host / "config.json", "rb") as config_file, open(host / "stdin", "rb") as stdin_file, \
                open(host / "stdout", "wb") as stdout_file, open(host / "stderr", "wb") as stderr_file, \
                open(host / "result", "wb") as result_file:
            fds = (config_file.fileno(), result_file.fileno())
            harness = [layout.python, "-S", "-c", _HARNESS, str(fds[0]), str(fds[1])]
            if backend == "bwrap":
                command = _bwrap_command(layout, is_root, limits) + harness
            else:
                command = _unshare_command(layout, limits) + harness
            started = time.monotonic()
            killed = False
            try:
                process = subprocess.Popen(command, stdin=stdin_file, stdout=stdout_file, stderr=stderr_file,
                                           pass_fds=fds, env=dict(_SAFE_ENV), cwd="/", start_new_session=True)
            except OSError as error:
                return RunOutcome("sandbox_error", b"", None, None, None, f"cannot start {command[0]}: {error}", 0.0)
            try:
                process.wait(timeout=limits.wall_time_s)
            except subprocess.TimeoutExpired:
                killed = True
            finally:
                if killed or process.poll() is None:
                    _kill_group(process)
            wall_time_s = time.monotonic() - started
        stdout = (host / "stdout").read_bytes()
        result_lines = (host / "result").read_text(encoding="utf-8", errors="replace").split("\n")
        with open(host / "stderr", "rb") as stream:
            stream.seek(max(0, os.fstat(stream.fileno()).st_size - _STDERR_TAIL_BYTES))
            stderr_tail = stream.read().decode("utf-8", errors="replace")
    return _outcome(process.returncode, killed, result_lines, stdout, stderr_tail, wall_time_s, limits, function)


def _kill_group(process: subprocess.Popen) -> None:
    # The sandbox tool leads its own process group; killing it takes the PID namespace (and with
    # it every process the program started) down too (bwrap --die-with-parent, unshare --kill-child).
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _outcome(returncode: int, killed: bool, result_lines: list[str], stdout: bytes, stderr_tail: str,
             wall_time_s: float, limits: SandboxLimits, function: str | None) -> RunOutcome:
    exit_code, signal_number = None, None
    if returncode is not None and returncode > 128:
        signal_number = returncode - 128  # bwrap and sh report a signalled child as 128 + signal
    elif returncode is not None and returncode >= 0:
        exit_code = returncode
    ready = len(result_lines) > 1 and result_lines[1] == _READY
    result = None
    if function is not None and ready and len(result_lines) > 2 and result_lines[2]:
        result = result_lines[2]

    def made(status: Status) -> RunOutcome:
        return RunOutcome(status, stdout, result, exit_code, signal_number, stderr_tail, wall_time_s)

    if not result_lines or result_lines[0] != _STARTED:
        if killed:
            return made("time_limit")
        return made("sandbox_error")
    if not ready:
        return made("time_limit" if killed else "sandbox_error")
    if killed:
        return made("time_limit")
    if len(stdout) >= limits.file_size_bytes:
        return made("output_limit")
    if signal_number in (signal.SIGXCPU, signal.SIGKILL):
        return made("time_limit")
    if exit_code == MEMORY_EXIT or "MemoryError" in stderr_tail[-300:]:
        return made("memory_limit")
    if exit_code == 0 and (function is None or result is not None):
        return made("ok")
    return made("runtime_error")


@lru_cache(maxsize=4)
def default_sandbox(backend: str = "auto") -> Sandbox:
    """One `Sandbox` per backend name per process (building one probes the machine once)."""
    return Sandbox(backend)
