"""The guards every test runs under (tests/guards.py), each shown failing a small test session of its own.

Each case writes a test file into a temporary folder and runs pytest on it in a subprocess with the
guards plugin, so what is checked is what a real session prints and returns.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from guards import is_loopback

TESTS = Path(__file__).resolve().parent


def run_session(tmp_path: Path, source: str, *args: str, ci: bool = False) -> subprocess.CompletedProcess:
    (tmp_path / "test_case.py").write_text(textwrap.dedent(source))
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    env.pop("CI", None)
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "guards", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_case.py"), *args],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=240)


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True),
                                                ("::ffff:127.0.0.1", True), ("localhost", True),
                                                ("192.0.2.2", False), ("10.0.0.1", False), ("0.0.0.0", False),
                                                ("::ffff:192.0.2.2", False)])
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


def test_a_connection_beyond_loopback_fails_the_test_before_anything_is_sent(tmp_path):
    result = run_session(tmp_path, """
        import socket

        def test_reaches_out():
            with socket.socket() as sock:
                sock.settimeout(1)
                try:
                    sock.connect(("192.0.2.2", 9))
                except OSError:
                    pass
        """)
    assert result.returncode == 1, result.stdout
    assert "network traffic left loopback: this test process connected to 192.0.2.2:9" in result.stdout


@pytest.mark.loopback_unguarded  # the listener is the nested session's subject, a descendant of this one too
def test_a_child_listening_on_every_interface_fails_the_test(tmp_path):
    result = run_session(tmp_path, """
        import subprocess, sys, time

        def test_child_server():
            child = subprocess.Popen([sys.executable, "-c", "import socket, time\\n"
                                      "s = socket.socket(); s.bind(('0.0.0.0', 0)); s.listen(); time.sleep(30)"])
            try:
                time.sleep(3)
            finally:
                child.kill()
                child.wait()
        """)
    assert result.returncode == 1, result.stdout
    assert "listens on 0.0.0.0:" in result.stdout and "not a loopback address" in result.stdout


def test_loopback_traffic_passes(tmp_path):
    result = run_session(tmp_path, """
        import socket

        def test_local_server():
            with socket.socket() as server:
                server.bind(("127.0.0.1", 0))
                server.listen()
                with socket.create_connection(server.getsockname(), timeout=5):
                    pass
        """)
    assert result.returncode == 0, result.stdout


def test_a_hung_test_fails_at_its_deadline_naming_its_threads_and_children(tmp_path):
    result = run_session(tmp_path, """
        import subprocess, time
        import pytest

        @pytest.mark.timeout(3)
        def test_hangs():
            child = subprocess.Popen(["sleep", "61"])
            try:
                time.sleep(60)
            finally:
                child.kill()
                child.wait()
        """)
    assert result.returncode == 1, result.stdout
    assert "test_case.py::test_hangs passed its deadline of 3 s" in result.stdout
    assert "time.sleep(60)" in result.stdout  # the main thread's stack
    assert "child pid" in result.stdout and "sleep 61" in result.stdout


@pytest.mark.slow
def test_a_test_that_ignores_the_deadline_ends_the_session(tmp_path, monkeypatch):
    monkeypatch.setenv("BUDGETEVAL_TEST_HARD_EXIT_GRACE_S", "2")
    result = run_session(tmp_path, """
        import signal, time
        import pytest

        @pytest.mark.timeout(2)
        def test_blocks_the_alarm():
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # as a C call that never returns would
            time.sleep(30)
        """)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "is stuck 2 s past its deadline of 2 s" in result.stderr
    assert "test_blocks_the_alarm" in result.stderr


MISSING = """
    from guards import need

    def test_needs_a_tool():
        need("no frobnicator here (apt-get install frobnicator)")

    def test_runs():
        pass
    """


def test_a_missing_dependency_skips_and_is_counted_outside_ci(tmp_path):
    result = run_session(tmp_path, MISSING)
    assert result.returncode == 0, result.stdout
    assert "skipped 1: 1 x no frobnicator here (apt-get install frobnicator)" in result.stdout


def test_a_missing_dependency_fails_under_ci(tmp_path):
    result = run_session(tmp_path, MISSING, ci=True)
    assert result.returncode == 1, result.stdout
    assert "CI=true and a dependency is missing: no frobnicator here" in result.stdout
