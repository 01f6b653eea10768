"""Shared test setup: offline hub settings, the path to ../shared, the tiny model and the shared fixtures.

The guards every test runs under (deadlines, CI=true failing what would skip, loopback only) are the
plugin `tests/guards.py`, loaded by `addopts` in pyproject.toml.
"""

import json
import os
from pathlib import Path

import pytest
from guards import need

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Ray's single-machine mode: its GCS, raylets and object manager bind and advertise 127.0.0.1, not the
# machine's external address (which Ray picks otherwise, even given _node_ip_address="127.0.0.1").
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


SHARED = Path(__file__).resolve().parents[2] / "shared"
"""`../shared` beside the repository: benchmarks, real generations, tokenizers."""


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the calling test when it is absent."""
    if not SHARED.is_dir():
        need(f"{SHARED} is absent: these tests need the project's ../shared folder beside the repository")
    path = SHARED.joinpath(*parts)
    if not path.exists():
        need(f"{path} is absent from the project's ../shared folder")
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random-weight Qwen3 checkpoint on the real Qwen3 tokenizer (built once per session)."""
    from tiny_model import build_tiny_qwen3

    tokenizer_dir = shared_path("tokenizers", "qwen3")
    return build_tiny_qwen3(tokenizer_dir, tmp_path_factory.mktemp("tiny-qwen3"))


@pytest.fixture(scope="session")
def aime25_file() -> Path:
    """The local AIME 2025 copy, in the hub dataset's columns."""
    return shared_path("data", "aime2025.jsonl")


# --- scorer tests (tests/test_scorer_*.py) ---------------------------------------------------------


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared folder itself (skips the test when it is absent)."""
    return shared_path()


CASES = Path(__file__).resolve().parent / "cases"
"""Case tables (JSONL) the scorer tests read."""


def read_cases(name: str) -> list[dict]:
    """The rows of `tests/cases/<name>` (JSONL)."""
    return [json.loads(line) for line in (CASES / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def sandbox():
    """The machine's sandbox (CI installs bubblewrap); skips when none works here."""
    from budgeteval.errors import UserError
    from budgeteval.scoring.sandbox import Sandbox

    try:
        return Sandbox()
    except UserError as error:
        need(f"no sandbox works here (install bubblewrap): {error}")


# --- end scorer tests ------------------------------------------------------------------------------


# --- analysis runs (tests/test_analysis*.py) -------------------------------------------------------


@pytest.fixture(scope="module")
def bucket_runs(tmp_path_factory):
    """Baseline pass rates at 400 tokens: q1 4/4, q2 3/4, q3 2/4, q4 1/4, q5 0/4; the other run is all right."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from synthetic_runs import write_run

    from budgeteval.report.runs import load_run

    root = tmp_path_factory.mktemp("buckets")
    rates = {"q1": 4, "q2": 3, "q3": 2, "q4": 1, "q5": 0}
    base = {200: {p: [(i < c - 1, 100 + 10 * i) for i in range(4)] for p, c in rates.items()},
            400: {p: [(i < c, 100 + 10 * i) for i in range(4)] for p, c in rates.items()}}
    ours = {b: {p: [(True, 50)] * 4 for p in rates} for b in (200, 400)}
    runs = [write_run(root / "base", "org/base", base, bootstrap=0), write_run(root / "ours", "org/ours", ours, bootstrap=0)]
    # A declared group, as a task declaring `level` writes it into problems/<task>.parquet.
    for run_dir in runs:
        (run_dir / "problems").mkdir(exist_ok=True)
        pq.write_table(pa.table({"problem_id": list(rates), "question": [""] * 5, "reference": [""] * 5,
                                 "level": ["L1", "L1", "L2", "L2", "L2"]}), run_dir / "problems" / "t.parquet")
    return [load_run(path) for path in runs]


def forced_sweep():
    """Probes every 100 tokens up to 500. Sample 0 settles on "4" at probe 300 and is never finished; sample 1
    says "7" at 100 and 200 and finishes on its own with 250 tokens and "4"."""
    import pandas as pd

    answers = {0: [None, "3", "4", "4", "4"], 1: ["7", "7", "4", "4", "4"]}
    rows = []
    for sample_idx, sequence in answers.items():
        for budget, answer in zip((100, 200, 300, 400, 500), sequence):
            finished = sample_idx == 1 and budget >= 300
            rows.append({"task": "t", "problem_id": "p1", "sample_idx": sample_idx, "budget": budget, "mode": "forced",
                         "num_tokens": 250 if finished else budget + 10, "finished": finished, "extracted": answer,
                         "correct": answer == "4", "timed_out": False})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    """A run of forced-mode scores only: `forced_sweep`'s probes."""
    from synthetic_runs import write_run

    from budgeteval.report.runs import load_run

    return load_run(write_run(tmp_path_factory.mktemp("sweep") / "run", "org/sweep", {}, extra_scores=forced_sweep(),
                              bootstrap=0))
