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
    path = SHARED.joinpath(*parts)
    if not path.exists():
        need(f"{path} is absent: these tests need the project's ../shared folder beside the repository")
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
    return [json.loads(line) for line in (CASES / name).read_text().splitlines()]


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
