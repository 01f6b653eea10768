"""Import real model outputs (Qwen2.5-Math on 100 MATH problems x 8) and reproduce the publisher's numbers;
an import of answers to real MATH-500 problems keeps the task's groups, as `run` does."""

import json

import pandas as pd
import pytest
from cli_checks import budgeteval_in_process
from conftest import shared_path

from budgeteval.ingest.generations import import_generations
from budgeteval.scoring.evaluate import evaluate_run, read_scores
from budgeteval.scoring.metrics import compute_metrics

pytestmark = [pytest.mark.shared]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    source = shared_path("generations", "qwen25math_math_cot_100.jsonl")
    out = tmp_path_factory.mktemp("qwen25math") / "run"
    fields = {"problem_id": "problem_idx", "sample_idx": "sample_idx", "response": "response",
              "reference": "gold", "question": "question"}
    # The file records no finish reasons; stating the limit as 4096 (which every response fits, as
    # the tests below check) lets the import tell cut from finished (without it finishing is unknown).
    import_generations(source, "math500", str(shared_path("tokenizers", "qwen2.5")), out, fields,
                       budgets=(128, 256, 512, 1024, 4096), model="Qwen2.5-Math-7B-Instruct", max_tokens=4096)
    evaluate_run(out, workers=2, progress=False)
    labels = pd.read_json(source, lines=True)
    return out, labels


def test_per_sample_agreement_with_publisher_labels(imported):
    out, labels = imported
    scores = read_scores(out)
    full = scores[scores.budget == 4096].astype({"problem_id": int})
    merged = full.merge(labels, left_on=["problem_id", "sample_idx"], right_on=["problem_idx", "sample_idx"])
    assert len(merged) == 800
    agreement = (merged.correct == merged.repo_correct).mean()
    assert agreement >= 0.99, agreement
    assert full.finished.all(), "every response fits in 4096 tokens and ends on its own"


def test_metrics_match_recomputed_publisher_numbers(imported):
    out, _ = imported
    metrics = compute_metrics(read_scores(out), [8])
    at_full = metrics[(metrics.budget == 4096) & (metrics.k == 8)].set_index("metric").value
    # ../shared/README.md (provenance of the outputs): recomputed from the labels, mean@8 91.0, pass@8 96.0, maj@8 93.0.
    assert at_full["mean"] == pytest.approx(0.910, abs=0.011)
    assert at_full["pass"] == pytest.approx(0.960, abs=0.011)
    assert at_full["maj"] == pytest.approx(0.930, abs=0.011)


def test_accuracy_and_truncation_move_with_budget(imported):
    out, _ = imported
    metrics = compute_metrics(read_scores(out), [1])
    mean = metrics[(metrics.metric == "mean")].set_index("budget").value
    truncation = metrics[(metrics.metric == "truncation_rate")].set_index("budget").value
    assert list(mean.index) == [128, 256, 512, 1024, 4096]
    assert mean.is_monotonic_increasing and mean[128] < mean[4096]
    assert truncation.is_monotonic_decreasing and truncation[4096] == 0.0 and truncation[128] > 0.5
    lengths = metrics[(metrics.metric == "length_mean")].set_index("budget").value
    assert (lengths <= lengths.index).all()


def test_manifest_records_the_import(imported):
    out, _ = imported
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["generation"]["task"] == "math500"
    assert manifest["scoring"]["budgets"] == [128, 256, 512, 1024, 4096]
    assert manifest["scoring"]["math_verify_timeout_s"] == 10  # issue 23: the math scorer's timeout is recorded


def _counting_workers(monkeypatch) -> list[int]:
    """Patch the math scorer's worker pool to record how many verifications each call ran."""
    import budgeteval.scoring.scorers.math as math_scorer

    counts, real = [], math_scorer.run_in_workers

    def counted(function, jobs, **kwargs):
        counts.append(len(jobs))
        return real(function, jobs, **kwargs)

    monkeypatch.setattr(math_scorer, "run_in_workers", counted)
    return counts


def _copy_without_cache(run_dir, to):
    import shutil

    shutil.copytree(run_dir, to, ignore=shutil.ignore_patterns("verdicts"))
    return to


def test_a_warm_rescore_verifies_nothing_and_writes_the_same_bytes(imported, monkeypatch, tmp_path):
    import shutil

    out, _ = imported
    assert list((out / "verdicts").glob("part-*.parquet")), "the cold scoring kept its verdicts"
    warm = tmp_path / "warm"
    shutil.copytree(out, warm)
    counts = _counting_workers(monkeypatch)
    evaluate_run(warm, workers=2, progress=False)
    assert sum(counts) == 0
    assert (warm / "scores.parquet").read_bytes() == (out / "scores.parquet").read_bytes()
    assert (warm / "metrics.csv").read_bytes() == (out / "metrics.csv").read_bytes()

    # Another run of the same outputs, with the first run's verdicts as a shared --verdict-cache.
    second = _copy_without_cache(out, tmp_path / "second")
    evaluate_run(second, workers=2, progress=False, verdict_cache=out / "verdicts")
    assert sum(counts) == 0
    assert (second / "scores.parquet").read_bytes() == (out / "scores.parquet").read_bytes()


def test_new_budgets_verify_only_new_answers_with_the_verdicts_of_a_cold_scoring(imported, monkeypatch, tmp_path):
    import shutil

    out, _ = imported
    budgets = [128, 200, 300, 4096]
    cached = tmp_path / "cached"
    shutil.copytree(out, cached)
    cold = _copy_without_cache(out, tmp_path / "cold")
    counts = _counting_workers(monkeypatch)
    evaluate_run(cached, budgets=budgets, workers=2, progress=False)
    evaluate_run(cold, budgets=budgets, workers=2, progress=False)
    with_cache, without = counts
    assert 0 < with_cache < without / 2, counts
    assert (cached / "scores.parquet").read_bytes() == (cold / "scores.parquet").read_bytes()


def test_decoding_in_small_windows_gives_the_same_bytes(imported, monkeypatch, tmp_path):
    import budgeteval.scoring.evaluate as scoring

    out, _ = imported
    small = _copy_without_cache(out, tmp_path / "small")
    monkeypatch.setattr(scoring, "DECODE_WINDOW_TOKENS", 300)  # most windows hold one response or two
    evaluate_run(small, workers=2, progress=False)
    assert (small / "scores.parquet").read_bytes() == (out / "scores.parquet").read_bytes()


def test_import_from_the_tasks_data_keeps_its_groups(tmp_path):
    """An import whose references come from MATH-500's data stores each problem's level, so `report --by level` works."""
    data = shared_path("data", "math500.jsonl")
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    chosen = [row for level in range(1, 6) for row in [r for r in rows if r["level"] == level][:2]]
    source = tmp_path / "responses.jsonl"
    source.write_text("".join(json.dumps({"problem_id": row["unique_id"], "response": f"So it is $\\boxed{{{row['answer']}}}$."})
                              + "\n" for row in chosen), encoding="utf-8")
    out = tmp_path / "run"
    result = budgeteval_in_process("import", source, "--task", "math500", "--data", f"math500={data}", "--tokenizer",
                                   shared_path("tokenizers", "qwen2.5"), "--budgets", "256", "--workers", "1",
                                   "--bootstrap", "0", "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    report = budgeteval_in_process("report", out, "--by", "level")
    assert report.returncode == 0, report.stderr[-2000:]
    headings = [line for line in report.stdout.splitlines() if line.startswith("## ")]
    assert headings == [f"## math500: level = {level} (2 problems)" for level in range(1, 6)]


def test_imported_real_outputs_get_the_token_split(imported):
    # Qwen2.5-Math answers without a thinking block: every counted token is answer, nothing is cut while thinking.
    out, _ = imported
    scores = read_scores(out)
    assert (scores["thinking_tokens"] == 0).all() and (scores["answer_tokens"] == scores["num_tokens"]).all()
    assert not scores["cut_thinking"].astype(bool).any()


def test_an_import_of_thinking_responses_splits_at_the_marker(tmp_path):
    # Responses in a thinking model's format (reasoning, `</think>`, answer), through the real import path.
    rows = [{"pid": "p0", "gold": "4", "out": "Two plus two is four, let me double-check: 2 + 2 = 4.\n</think>\n\n"
                                              "The answer is \\boxed{4}."},
            {"pid": "p0", "gold": "4", "out": "Adding the numbers one by one gives a long line of thought " * 4}]
    source = tmp_path / "gens.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = import_generations(source, "math500", str(shared_path("tokenizers", "qwen3")), tmp_path / "run",
                             {"problem_id": "pid", "response": "out", "reference": "gold"}, budgets=(16, 256),
                             think_end="</think>", max_tokens=256)
    evaluate_run(out, workers=1, progress=False, bootstrap=0)
    scores = read_scores(out).set_index(["sample_idx", "budget"])
    assert (scores["thinking_tokens"] + scores["answer_tokens"] == scores["num_tokens"]).all()
    closed = scores.loc[(0, 256)]
    assert closed["thinking_tokens"] > 10 and 0 < closed["answer_tokens"] < closed["thinking_tokens"]
    assert not closed["cut_thinking"] and closed["correct"]
    assert scores.loc[(0, 16), "cut_thinking"] and scores.loc[(0, 16), "answer_tokens"] == 0  # cut before `</think>`
    assert scores.loc[(1, 16), "cut_thinking"] and scores.loc[(1, 256), "answer_tokens"] == 0
