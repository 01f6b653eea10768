"""Nothing a user does can wedge a run: kill -9 at every write point, two writers at once, duplicate repair.

- `run` (hf backend, tiny model, 2 GSM8K problems x 2 samples, one problem per shard), `import`
  and `score` are each killed right after one file operation of every kind they do
  (`BUDGETEVAL_KILL_AFTER_WRITES=N`, `budgeteval.atomic`; a kind is the operation and the file it
  touches, numbers and temp names aside: the first generation shard stands for the others);
  re-running the same command must give scores.parquet and metrics.csv byte-identical to an
  uninterrupted run, with every sample stored exactly once. `-m full_kill_sweep` kills each command
  after every one of its file operations instead.
- A second `run` into a directory a live run is writing is refused at once (its pid and command
  named), and the first run ends exactly as a lone run does.
- `budgeteval repair` keeps one copy of identical duplicate samples and refuses differing ones.

The commands run in children forked from one warm, clean interpreter (a multiprocessing
forkserver), so each of the ~50 killed and resumed commands costs its work, not a Python start-up;
SIGKILL is real.
"""

import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_checks import assert_user_error, budgeteval, budgeteval_in_process
from conftest import shared_path

pytestmark = [pytest.mark.shared]

N_PROBLEMS, N_SAMPLES = 2, 2


_FORK_SERVER = None


def _fork_server():
    """A forkserver context: a fresh interpreter, started once, that has imported what the commands
    use and forks each command from that clean state (forking pytest itself would hand the child
    whatever earlier tests left in this process: torch's thread pools, vLLM's settings)."""
    global _FORK_SERVER
    if _FORK_SERVER is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["budgeteval.cli", "budgeteval.sweep.runner", "budgeteval.scoring.evaluate",
                                        "budgeteval.generation.backends.hf_backend", "datasets", "transformers"])
        _FORK_SERVER = context
    return _FORK_SERVER


def _cli_child(args: list[str], env: dict, log: str | None) -> None:
    """The child: run the CLI with `args`, output to `log`, and exit with its status (never returns)."""
    code = 70
    try:
        import budgeteval.atomic
        from budgeteval.cli import main

        budgeteval.atomic._operations = 0  # count this command's writes only
        os.environ.update(env)
        sys.stdout = sys.stderr = open(log or os.devnull, "a", encoding="utf-8")
        try:
            main(args=args, prog_name="budgeteval")
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # noqa: BLE001 - report anything, then leave the child
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        os._exit(code)


def fork_cli(args, env=None, log: Path = None) -> int:
    """Run the CLI in a child forked from a warm, clean interpreter; its exit status, or -signal
    when a signal ended it."""
    process = _fork_server().Process(target=_cli_child, args=([str(arg) for arg in args], dict(env or {}),
                                                               str(log) if log else None))
    process.start()
    process.join()
    return process.exitcode


@pytest.fixture(scope="module", autouse=True)
def warm_interpreter():
    """Import what the commands use once, here, so forked children start warm (no torch ops run here)."""
    import datasets  # noqa: F401
    import transformers  # noqa: F401

    import budgeteval.cli  # noqa: F401
    import budgeteval.generation.backends.hf_backend  # noqa: F401
    import budgeteval.scoring.evaluate  # noqa: F401
    import budgeteval.sweep.runner  # noqa: F401


@pytest.fixture(scope="module")
def run_args(tiny_model):
    def args(out):
        return ["run", "--model", tiny_model, "--backend", "hf", "--tasks", "gsm8k",
                "--data", f"gsm8k={shared_path('data', 'gsm8k_test.jsonl')}", "--limit", N_PROBLEMS,
                "--n", N_SAMPLES, "--budgets", "8,16", "--problems-per-shard", 1, "--workers", 1,
                "--bootstrap", 20, "--seed", 3, "--quiet", "--out", out]
    return args


@pytest.fixture(scope="module")
def import_args(tmp_path_factory):
    folder = tmp_path_factory.mktemp("import-source")
    source = folder / "gens.jsonl"
    rows = [f'{{"pid": "p{p}", "gold": "{p + 3}", "out": "So the answer is {p + 3 if s else 1}."}}\n'
            for p in range(N_PROBLEMS) for s in range(N_SAMPLES)]
    source.write_text("".join(rows))

    def args(out):
        return ["import", source, "--task", "gsm8k", "--tokenizer", shared_path("tokenizers", "qwen2.5"),
                "--field", "problem_id=pid", "--field", "response=out", "--field", "reference=gold",
                "--budgets", "4,8", "--workers", 1, "--bootstrap", 20, "--quiet", "--out", out]
    return args


def _reference(tmp_path_factory, name, args):
    """An uninterrupted command's directory, and its write points (one line each in the write log)."""
    folder = tmp_path_factory.mktemp(name)
    log = folder / "writes.log"
    status = fork_cli(args(folder / "run"), {"BUDGETEVAL_WRITE_LOG": str(log)}, folder / "out.log")
    assert status == 0, (folder / "out.log").read_text()[-3000:]
    return folder / "run", log.read_text().splitlines()


@pytest.fixture(scope="module")
def run_reference(tmp_path_factory, run_args):
    return _reference(tmp_path_factory, "run-reference", run_args)


def _results(run_dir: Path) -> tuple[bytes, bytes]:
    return (run_dir / "scores.parquet").read_bytes(), (run_dir / "metrics.csv").read_bytes()


def _samples(run_dir: Path) -> list[tuple]:
    """Every stored sample (read_task refuses duplicates), in a fixed order."""
    from budgeteval.rundir.store import read_task

    table = read_task(run_dir, "gsm8k", columns=["problem_id", "sample_idx", "token_ids"])
    return sorted(zip(*(table.column(name).to_pylist() for name in table.column_names)))


def write_kind(line: str, run_dir: Path) -> tuple[str, str]:
    """The kind of one write-log line: its operation and its path in the run, numbers and temp names masked."""
    _, operation, path = line.split("\t")
    relative = Path(path).relative_to(run_dir).as_posix() if Path(path).is_relative_to(run_dir) else Path(path).name
    relative = re.sub(r"\.[a-z0-9_]{6,}\.tmp$", ".*.tmp", relative)  # tempfile's random part
    return operation, re.sub(r"[0-9a-f]{32}|\d+", "#", relative)


def kill_points(writes: list[str], run_dir: Path, full: bool) -> list[int]:
    """The write points to kill at: all of them, or the first of each kind."""
    if full:
        return list(range(1, len(writes) + 1))
    first = {}
    for point, line in enumerate(writes, start=1):
        first.setdefault(write_kind(line, run_dir), point)
    return sorted(first.values())


def _kill_everywhere(tmp_path, args, writes, reference, request, prepare=lambda out: None):
    """Kill the command after its write points (`kill_points`), resume it, and compare with the reference."""
    assert writes, "the command wrote nothing through budgeteval.atomic"
    points = kill_points(writes, reference, request.node.get_closest_marker("full_kill_sweep") is not None)
    print(f"killing at {len(points)} of {len(writes)} write points")
    for point in points:
        line = writes[point - 1]
        out = tmp_path / f"kill-{point}"
        prepare(out)
        log = tmp_path / f"kill-{point}.log"
        status = fork_cli(args(out), {"BUDGETEVAL_KILL_AFTER_WRITES": str(point)}, log)
        assert status == -signal.SIGKILL, (point, line, status, log.read_text()[-2000:])
        status = fork_cli(args(out), {}, log)
        assert status == 0, (point, line, log.read_text()[-3000:])
        assert _results(out) == _results(reference), f"results differ after a kill at write {point} ({line})"
        assert _samples(out) == _samples(reference), f"samples lost or doubled after a kill at write {point} ({line})"
        shutil.rmtree(out)


def test_kill_points_take_the_first_write_of_each_kind(tmp_path):
    run = tmp_path / "run"
    writes = [f"1\ttemp written\t{run}/.manifest.json.k2j4_x9q.tmp", f"2\tmoved\t{run}/manifest.json",
              f"3\ttemp written\t{run}/generations/gsm8k/.part-00000.parquet.a8d0e1zz.tmp",
              f"4\tmoved\t{run}/generations/gsm8k/part-00000.parquet",
              f"5\ttemp written\t{run}/generations/gsm8k/.part-00001.parquet.q0w9e8rr.tmp",
              f"6\tmoved\t{run}/generations/gsm8k/part-00001.parquet",
              f"7\tmoved\t{run}/verdicts/part-0123456789abcdef0123456789abcdef.parquet",
              f"8\ttemp written\t{run}/.manifest.json.zz9912ab.tmp", f"9\tmoved\t{run}/manifest.json"]
    assert kill_points(writes, run, full=False) == [1, 2, 3, 4, 7]
    assert kill_points(writes, run, full=True) == list(range(1, 10))


def _sweep_run(run_reference, run_args, tmp_path, request):
    reference, writes = run_reference
    assert len(_samples(reference)) == N_PROBLEMS * N_SAMPLES
    _kill_everywhere(tmp_path, run_args, writes, reference, request)


def _sweep_import(tmp_path_factory, import_args, tmp_path, request):
    reference, writes = _reference(tmp_path_factory, "import-reference", import_args)
    _kill_everywhere(tmp_path, import_args, writes, reference, request)


def _sweep_score(run_reference, tmp_path, request):
    finished, _ = run_reference

    def args(out):
        return ["score", out, "--budgets", "4,12", "--workers", 1, "--bootstrap", 20, "--quiet"]

    def fresh_copy(out):
        shutil.copytree(finished, out)

    fresh_copy(tmp_path / "reference")
    log = tmp_path / "writes.log"
    assert fork_cli(args(tmp_path / "reference"), {"BUDGETEVAL_WRITE_LOG": str(log)}) == 0
    writes = log.read_text().splitlines()
    assert _results(tmp_path / "reference") != _results(finished), "re-scoring at new budgets must change results"
    _kill_everywhere(tmp_path, args, writes, tmp_path / "reference", request, prepare=fresh_copy)


@pytest.mark.slow
def test_run_killed_at_each_kind_of_write_resumes_to_the_same_results(run_reference, run_args, tmp_path, request):
    _sweep_run(run_reference, run_args, tmp_path, request)


@pytest.mark.slow
def test_import_killed_at_each_kind_of_write_resumes_to_the_same_results(tmp_path_factory, import_args, tmp_path,
                                                                         request):
    _sweep_import(tmp_path_factory, import_args, tmp_path, request)


@pytest.mark.slow
def test_score_killed_at_each_kind_of_write_resumes_to_the_same_results(run_reference, tmp_path, request):
    _sweep_score(run_reference, tmp_path, request)


@pytest.mark.slow
@pytest.mark.full_kill_sweep
@pytest.mark.timeout(2400)  # 20 killed + 20 resumed runs: minutes on a quiet machine, far more on a crowded one
def test_run_killed_at_every_write_point_resumes_to_the_same_results(run_reference, run_args, tmp_path, request):
    _sweep_run(run_reference, run_args, tmp_path, request)


@pytest.mark.slow
@pytest.mark.full_kill_sweep
def test_import_killed_at_every_write_point_resumes_to_the_same_results(tmp_path_factory, import_args, tmp_path,
                                                                        request):
    _sweep_import(tmp_path_factory, import_args, tmp_path, request)


@pytest.mark.slow
@pytest.mark.full_kill_sweep
def test_score_killed_at_every_write_point_resumes_to_the_same_results(run_reference, tmp_path, request):
    _sweep_score(run_reference, tmp_path, request)


@pytest.mark.slow
def test_a_second_writer_is_refused_before_it_generates(run_reference, run_args, tmp_path):
    reference, _ = run_reference
    out = tmp_path / "shared"
    first = subprocess.Popen([sys.executable, "-m", "budgeteval.cli", *map(str, run_args(out))],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600
        while not (out / "manifest.json").exists():
            assert first.poll() is None, first.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the first run never started"
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGSTOP)  # hold the first run inside its work, lock taken
        try:
            second = budgeteval(*run_args(out))
        finally:
            os.kill(first.pid, signal.SIGCONT)
        assert_user_error(second, f"{out} is being written by pid {first.pid}", "budgeteval run")
        assert "generating" not in second.stderr and "Loading weights" not in second.stderr
        _, stderr = first.communicate(timeout=900)
        assert first.returncode == 0, stderr[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
    assert _results(out) == _results(reference)
    assert _samples(out) == _samples(reference)
    # The lock died with its holder: the same command now runs (and, all stored, only re-scores).
    again = budgeteval(*run_args(out))
    assert again.returncode == 0, again.stderr[-2000:]
    assert _results(out) == _results(reference)


@pytest.mark.slow
def test_repair_keeps_one_copy_of_identical_duplicates(run_reference, tmp_path):
    reference, _ = run_reference
    run = shutil.copytree(reference, tmp_path / "run")
    shards = sorted((run / "generations" / "gsm8k").glob("part-*.parquet"))
    shutil.copy(shards[0], shards[0].with_name("part-00007.parquet"))  # as two runs at once used to leave it
    assert_user_error(budgeteval_in_process("score", run, "--quiet"), "duplicate samples", f"budgeteval repair {run}")
    repaired = budgeteval_in_process("repair", run)
    assert repaired.returncode == 0, repaired.stderr
    assert f"removed {N_SAMPLES} duplicate row(s)" in repaired.stdout
    assert _samples(run) == _samples(reference)
    rescored = budgeteval_in_process("score", run, "--quiet", "--workers", 1, "--bootstrap", 20)
    assert rescored.returncode == 0, rescored.stderr
    assert _results(run) == _results(reference)
    assert "none found" in budgeteval_in_process("repair", run).stdout


@pytest.mark.slow
def test_repair_refuses_copies_that_differ(run_reference, tmp_path):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    run = shutil.copytree(run_reference[0], tmp_path / "run")
    shard = sorted((run / "generations" / "gsm8k").glob("part-*.parquet"))[0]
    table = pq.read_table(shard)
    changed = table.set_column(table.schema.get_field_index("text"), "text",
                               pc.binary_join_element_wise(table.column("text"), " (edited)", ""))
    pq.write_table(changed, shard.with_name("part-00007.parquet"))
    assert_user_error(budgeteval_in_process("repair", run), "hold different samples", "identical copies only")
    assert sorted(path.name for path in shard.parent.glob("part-*.parquet"))[-1] == "part-00007.parquet"
