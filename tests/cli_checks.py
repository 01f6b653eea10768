"""Helpers shared by the CLI tests: run `budgeteval` (in a subprocess or in this process) and check a user error."""

import subprocess
import sys
import traceback


def budgeteval(*args, cwd=None):
    """Run the CLI with `args`; returns the completed process (stdout/stderr as text)."""
    return subprocess.run([sys.executable, "-m", "budgeteval.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def budgeteval_in_process(*args):
    """Run the CLI in this process (no interpreter start: cheap for long case tables).

    Returns a `CompletedProcess` like `budgeteval`; an exception that escaped the CLI is
    written into stderr as the traceback a real process would print, so checks are the same.
    """
    from click.testing import CliRunner

    from budgeteval.cli import main

    result = CliRunner().invoke(main, list(map(str, args)), prog_name="budgeteval")
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "Traceback (most recent call last):\n" + "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(["budgeteval", *map(str, args)], result.exit_code, result.stdout, stderr)


def assert_user_error(result, *fragments):
    """Exit status 2, no traceback, exactly one `error` line on stderr, holding every fragment."""
    assert result.returncode == 2, (result.returncode, result.stderr[-1500:])
    assert "Traceback" not in result.stderr, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.lower().startswith("error")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0], error_lines[0]
