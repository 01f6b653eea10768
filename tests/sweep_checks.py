"""Helpers shared by the backend tests: build a small sweep config and compare two runs."""

import time
from pathlib import Path

import pandas as pd
import pytest

from budgeteval.generation.backends.base import SamplingConfig
from budgeteval.generation.config import EngineOptions, RunConfig
from budgeteval.rundir.store import read_task
from budgeteval.scoring.evaluate import read_scores
from budgeteval.scoring.replay import truncate
from budgeteval.sweep.runner import run

SAMPLING = SamplingConfig(temperature=1.0, top_p=0.95, top_k=20)


def sweep_config(model: Path, out: Path, budgets, data_file: Path, backend: str = "vllm", n: int = 4,
                 limit: int = 3, engine: EngineOptions = EngineOptions(dtype="float32", enforce_eager=True),
                 **overrides) -> RunConfig:
    """A tiny AIME 2025 sweep on the tiny model."""
    return RunConfig(model=str(model), tasks=("aime25",), out=str(out), backend=backend, n=n, limit=limit,
                     budgets=tuple(budgets), data_files=(("aime25", str(data_file)),), sampling=SAMPLING,
                     engine=engine, workers=2, **overrides)


def stored_samples(run_dir: Path, task: str = "aime25") -> dict:
    """(problem_id, sample_idx) -> (token ids, finish reason)."""
    table = read_task(run_dir, task).to_pylist()
    return {(row["problem_id"], row["sample_idx"]): (list(row["token_ids"]), row["finish_reason"]) for row in table}


def assert_replay_equivalent(big_run: Path, small_run: Path, budget: int) -> None:
    """The max-`budget` run equals the big run replayed at `budget`: ids, endings and scores."""
    big, small = stored_samples(big_run), stored_samples(small_run)
    assert big.keys() == small.keys()
    for key, (small_ids, small_reason) in small.items():
        big_ids, big_reason = big[key]
        assert small_ids == big_ids[:budget], f"{key}: max_tokens={budget} ids differ from the replayed prefix"
        replayed = truncate(big_ids, big_reason, budget)
        assert replayed.finished == (small_reason == "stop"), key
    columns = ["task", "problem_id", "sample_idx", "budget", "mode", "num_tokens", "finished", "extracted", "correct",
               "thinking_tokens", "answer_tokens", "cut_thinking"]
    big_scores = read_scores(big_run)
    assert_token_split(big_scores)
    big_scores = big_scores[big_scores.budget == budget][columns].reset_index(drop=True)
    small_scores = read_scores(small_run)[columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(big_scores, small_scores)


def assert_token_split(scores: pd.DataFrame) -> None:
    """Every row records its thinking/answer split, and thinking_tokens + answer_tokens == num_tokens."""
    assert scores[["thinking_tokens", "answer_tokens", "cut_thinking"]].notna().all().all()
    total = scores["thinking_tokens"] + scores["answer_tokens"]
    assert (total == scores["num_tokens"]).all(), scores[total != scores["num_tokens"]]


def finish_reasons(run_dir: Path) -> set[str]:
    """The distinct finish reasons stored in a run."""
    return {reason for _, reason in stored_samples(run_dir).values()}


class RecordingBackend:
    """Wraps a live backend and records every request, the tokens it generated and the time it took."""

    def __init__(self, backend):
        self.backend = backend
        self.requests = []
        self.generated_tokens = 0
        self.seconds = 0.0

    def generate(self, requests, sampling):
        started = time.perf_counter()
        outputs = self.backend.generate(requests, sampling)
        self.seconds += time.perf_counter() - started
        self.requests.extend(requests)
        self.generated_tokens += sum(len(sample.token_ids) for samples in outputs for sample in samples)
        return outputs

    def describe(self):
        return self.backend.describe()

    def close(self):
        pass


def check_forced_sweep(engine, model: Path, out: Path, data_file: Path, backend: str, budgets=(8, 16, 32)) -> None:
    """A forced-mode sweep through `engine`: continuations start from exactly the first B ids plus the
    forcing ids, only unfinished samples are continued, and nothing else is generated."""
    from budgeteval.generation.config import ModeSettings
    from budgeteval.generation.forcing import FORCE_STRINGS
    from budgeteval.generation.tokenizer import load_tokenizer
    from budgeteval.rundir.store import CONTINUATIONS
    from budgeteval.tasks.prompts import encode_prompt

    recorder = RecordingBackend(engine)
    # The configuration names the server the engine talks to (an openai run must say which).
    options = EngineOptions(dtype="float32", enforce_eager=True, base_url=getattr(engine, "base_url", None))
    config = sweep_config(model, out, budgets, data_file, backend=backend, engine=options,
                          modes=ModeSettings(modes=("cutoff", "forced"), answer_tokens=6))
    run(config, progress=False, backend=recorder)
    tokenizer = load_tokenizer(str(model))
    force_ids = encode_prompt(tokenizer, FORCE_STRINGS["qwen3"])  # the tiny model has Qwen3's tokenizer
    base = {(row["problem_id"], row["sample_idx"]): row for row in read_task(out, "aime25").to_pylist()}
    continuations = read_task(out, "aime25", kind=CONTINUATIONS).to_pylist()
    assert len(continuations) == len(base) * len(budgets)
    requests = {request.key: request for request in recorder.requests}
    continued = 0
    for row in continuations:
        sample = base[(row["problem_id"], row["sample_idx"])]
        ids, budget = sample["token_ids"], row["budget"]
        finished = len(ids) <= budget and sample["finish_reason"] == "stop"
        assert row["continued"] == (not finished), row
        if finished:
            assert row["token_ids"] == [] and row["force_token_ids"] == []
            continue
        continued += 1
        closed = tokenizer.convert_tokens_to_ids("</think>") in ids[:budget]  # thinking ended: no forcing
        assert row["force_token_ids"] == ([] if closed else force_ids)
        request = requests[f"aime25/{row['problem_id']}/{row['sample_idx']}@{budget}"]
        prompt_ids = list(request.prompt_token_ids)
        prefix = prompt_ids[:len(prompt_ids) - budget - len(row["force_token_ids"])]
        assert prompt_ids == prefix + ids[:budget] + row["force_token_ids"]
        assert len(prefix) == sample["prompt_num_tokens"]
        assert request.n == 1 and request.max_tokens == 6
        assert 1 <= len(row["token_ids"]) <= 6
    assert 0 < continued < len(continuations), "the sweep should have finished and unfinished samples"
    # No hidden re-generation: one max-budget generation plus the continuations, nothing else.
    assert recorder.generated_tokens == (sum(len(row["token_ids"]) for row in base.values())
                                         + sum(len(row["token_ids"]) for row in continuations))
    assert len(recorder.requests) == len({key[0] for key in base}) + continued

    scores = read_scores(out)
    assert_token_split(scores)
    forced = scores[scores["mode"] == "forced"].set_index(["problem_id", "sample_idx", "budget"])
    cutoff = scores[scores["mode"] == "cutoff"].set_index(["problem_id", "sample_idx", "budget"])
    for row in continuations:
        key = (row["problem_id"], row["sample_idx"], row["budget"])
        expected = row["budget"] + len(row["token_ids"]) if row["continued"] else cutoff.loc[key, "num_tokens"]
        assert forced.loc[key, "num_tokens"] == expected
        assert bool(forced.loc[key, "finished"]) == (not row["continued"])
    from budgeteval.scoring.metrics import read_metrics

    metrics = read_metrics(out)
    for budget in budgets:
        cell = forced.xs(budget, level="budget")
        values = metrics[(metrics["mode"] == "forced") & (metrics["budget"] == budget)].set_index("metric")["value"]
        assert values["truncation_rate"] == pytest.approx(1 - cell["finished"].mean())
        assert values["length_mean"] == pytest.approx(cell["num_tokens"].mean())
    # Re-running the sweep resumes: nothing left to generate.
    again = RecordingBackend(engine)
    run(config, progress=False, backend=again)
    assert again.requests == []


def check_conditioned_sweep(engine, model: Path, out: Path, data_file: Path, backend: str, budgets=(8, 16)) -> None:
    """A conditioned sweep: the budget is rendered into each prompt, one generation per budget value."""
    from budgeteval.generation.config import ModeSettings
    from budgeteval.rundir.store import CONDITIONED

    recorder = RecordingBackend(engine)
    config = sweep_config(model, out, budgets, data_file, backend=backend, n=2, limit=2,
                          modes=ModeSettings(modes=("conditioned",), budget_prompt="Think for {budget} tokens.",
                                             conditioned_max_tokens=24))
    run(config, progress=False, backend=recorder)
    assert len(recorder.requests) == 2 * len(budgets)  # problems x budgets, nothing else (no max-budget pass)
    rows = read_task(out, "aime25", kind=CONDITIONED).to_pylist()
    assert len(rows) == 2 * 2 * len(budgets)
    for row in rows:
        assert f"Think for {row['budget']} tokens.<|im_end|>" in row["prompt"]
        assert row["max_tokens"] == 24 and len(row["token_ids"]) <= 24
    for request in recorder.requests:
        problem_budget = int(request.key.rsplit("@", 1)[1])
        prompt = next(row["prompt"] for row in rows if f"aime25/{row['problem_id']}@{row['budget']}" == request.key)
        assert f"Think for {problem_budget} tokens." in prompt
    assert not (out / "generations").exists()
    scores = read_scores(out)
    assert_token_split(scores)
    assert set(scores["mode"]) == {"conditioned"} and sorted(scores["budget"].unique()) == list(budgets)
    by_key = {(row["problem_id"], row["sample_idx"], row["budget"]): row for row in rows}
    for score in scores.itertuples():
        row = by_key[(score.problem_id, score.sample_idx, score.budget)]
        assert score.num_tokens == len(row["token_ids"])
        assert score.finished == (row["finish_reason"] == "stop")
