"""Benchmark: the code scorer's throughput with 1 vs 2 workers, and the sandbox's per-test overhead.

Workload: the known-correct programs of `tests/cases/livecodebench_solutions.jsonl` for real
LiveCodeBench problems (AtCoder, Codeforces, LeetCode; references built by the livecodebench task
from `../shared/data/livecodebench_v5_public_tests.jsonl`, public tests only), each copied
`--copies` times with a distinct comment so that deduplication does not collapse them: every
program runs all of its problem's tests (2-3), as a passing program does. "problems/s" counts
judged (problem, program) pairs per second; items/s would be higher on a real sweep, where
budgets and samples repeat programs and are scored once.

Overhead: one test (abc302_a's solution on its first input) run `--repeats` times as a bare
`subprocess.run([python, -c, program])`, as the sandbox's harness without any isolation (same
interpreter, preamble and limits, no namespaces), and in each sandbox backend that works here.

    .venv/bin/python bench/code_scoring.py [--copies 4] [--repeats 20]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from budgeteval.errors import UserError
from budgeteval.scoring.sandbox import _HARNESS, _SAFE_ENV, BACKENDS, Sandbox, SandboxLimits, _harness_config
from budgeteval.scoring.scorers.base import ScoreItem
from budgeteval.scoring.scorers.code import LCB_PRELUDE, extract_code, score_batch
from budgeteval.tasks.loading import load_problems, load_task

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "livecodebench_v5_public_tests.jsonl"


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}, Python {platform.python_version()}, load {load:.1f}"


def workload(copies: int) -> list[ScoreItem]:
    task = load_task("livecodebench", {"livecodebench": str(SHARED_DATA)}, {"livecodebench": {"end": "2023-08-21"}})
    problems = {problem.problem_id: problem for problem in load_problems(task)}
    cases = [json.loads(line) for line in (REPO / "tests" / "cases" / "livecodebench_solutions.jsonl").read_text().splitlines()]
    items = []
    for case in cases:
        if case["verdict"] != "passed":
            continue
        code = extract_code(case["response"])
        for copy in range(copies):
            items.append(ScoreItem(case["problem_id"], problems[case["problem_id"]].reference,
                                   f"```python\n# copy {copy}\n{code}\n```"))
    return items


def time_scoring(items: list[ScoreItem], workers: int, sandbox: Sandbox) -> float:
    started = time.monotonic()
    verdicts = score_batch(items, workers=workers, sandbox=sandbox)
    seconds = time.monotonic() - started
    assert all(verdict.correct for verdict in verdicts), [v for v in verdicts if not v.correct][:3]
    return seconds


def time_runs(run, repeats: int) -> list[float]:
    run()  # warm the page cache
    times = []
    for _ in range(repeats):
        started = time.monotonic()
        run()
        times.append(time.monotonic() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4, help="distinct copies of each correct program")
    parser.add_argument("--repeats", type=int, default=20, help="runs per overhead measurement")
    args = parser.parse_args()
    if not SHARED_DATA.is_file():
        sys.exit(f"{SHARED_DATA} is missing: this benchmark needs the project's ../shared folder")

    sandboxes = {}
    for backend in BACKENDS:
        try:
            sandboxes[backend] = Sandbox(backend)
        except UserError as error:
            print(f"({backend} unavailable: {error})")
    default = Sandbox()
    items = workload(args.copies)
    tests = sum(len(json.loads(item.reference)["tests"]) for item in items)
    print(f"machine: {machine()}")
    print(f"workload: {len(items)} (problem, program) pairs, {tests} tests, backend {default.backend}\n")
    print("| method | workers | pairs | tests | wall s | problems/s | tests/s |")
    print("|---|---|---|---|---|---|---|")
    for workers in (1, 2):
        seconds = time_scoring(items, workers, default)
        print(f"| code scorer ({default.backend}) | {workers} | {len(items)} | {tests} | {seconds:.2f} | "
              f"{len(items) / seconds:.2f} | {tests / seconds:.1f} |")

    case = next(json.loads(line) for line in (REPO / "tests" / "cases" / "livecodebench_solutions.jsonl").read_text().splitlines()
                if json.loads(line)["note"] == "integer ceiling division")
    program, stdin = extract_code(case["response"]), b"7 3\n"
    limits = SandboxLimits()
    config_path = REPO / ".bench-harness-config.json"
    runners = {
        "bare subprocess.run(python -c program)": lambda: subprocess.run(
            [sys.executable, "-c", program], input=stdin, capture_output=True, check=True),
    }

    def harness_without_isolation():
        config_path.write_text(json.dumps(_harness_config(default.layout, False, program, LCB_PRELUDE, None, limits)))
        with open(config_path, "rb") as config_file, open(os.devnull, "wb") as result_file:
            fds = (config_file.fileno(), result_file.fileno())
            subprocess.run([sys.executable, "-S", "-c", _HARNESS, str(fds[0]), str(fds[1])], input=stdin,
                           capture_output=True, pass_fds=fds, env=dict(_SAFE_ENV), check=True)

    runners["harness + LCB preamble + rlimits, no isolation"] = harness_without_isolation
    for backend, sandbox in sandboxes.items():
        runners[f"sandbox: {backend}"] = (
            lambda sandbox=sandbox: sandbox.run_python(program, stdin, limits=limits, prelude=LCB_PRELUDE))
    print(f"\nper-test cost, {args.repeats} runs each (abc302_a solution, one input)\n")
    print("| method | mean ms | median ms | overhead vs bare, ms |")
    print("|---|---|---|---|")
    bare = None
    try:
        for name, runner in runners.items():
            times = time_runs(runner, args.repeats)
            mean_ms, median_ms = 1000 * statistics.mean(times), 1000 * statistics.median(times)
            bare = mean_ms if bare is None else bare
            print(f"| {name} | {mean_ms:.1f} | {median_ms:.1f} | {mean_ms - bare:+.1f} |")
    finally:
        config_path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
