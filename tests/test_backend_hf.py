"""The transformers backend: replay equivalence with separate max_new_tokens runs."""

import pytest
from guards import import_or_need
from sweep_checks import (
    assert_replay_equivalent,
    check_conditioned_sweep,
    check_forced_sweep,
    finish_reasons,
    sweep_config,
)

from budgeteval.sweep.runner import run

pytestmark = [pytest.mark.shared]

import_or_need("torch", "the hf backend needs torch (pip install -e '.[hf]')")


@pytest.fixture(scope="module")
def engine(tiny_model):
    from budgeteval.generation.backends.hf_backend import HFBackend
    from budgeteval.generation.config import EngineOptions

    backend = HFBackend(str(tiny_model), str(tiny_model), EngineOptions(dtype="float32"))
    yield backend
    backend.close()


def test_replay_equals_separate_max_token_runs(engine, tiny_model, aime25_file, tmp_path):
    big = run(sweep_config(tiny_model, tmp_path / "big", (16, 32, 64), aime25_file, backend="hf"),
              progress=False, backend=engine)
    assert finish_reasons(big) == {"stop", "length"}
    for budget in (16, 32):
        small = run(sweep_config(tiny_model, tmp_path / f"max{budget}", (budget,), aime25_file, backend="hf"),
                    progress=False, backend=engine)
        assert_replay_equivalent(big, small, budget)


@pytest.mark.slow
def test_forced_mode_continues_exactly_the_unfinished_samples(engine, tiny_model, aime25_file, tmp_path):
    check_forced_sweep(engine, tiny_model, tmp_path / "forced", aime25_file, "hf")


@pytest.mark.slow
def test_conditioned_mode_generates_once_per_budget(engine, tiny_model, aime25_file, tmp_path):
    check_conditioned_sweep(engine, tiny_model, tmp_path / "conditioned", aime25_file, "hf")
