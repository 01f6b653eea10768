"""Answer policies on real outputs: Qwen2.5-Math's own generations (imported as `results/make_example.py`
does) against the publisher's labels under both policies, what strict credits at 128 tokens, GSM8K
solutions against OpenAI's labels under strict, and an old-format run directory that still loads,
scores and reports."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_checks import budgeteval
from conftest import shared_path

from budgeteval.ingest.generations import import_generations
from budgeteval.report.runs import load_run
from budgeteval.scoring.evaluate import evaluate_run, read_scores
from budgeteval.scoring.scorers.base import ScoreItem
from budgeteval.scoring.scorers.gsm8k import score_batch as gsm8k_score_batch

pytestmark = [pytest.mark.shared]

BUDGETS = (128, 4096)
FIELDS = {"problem_id": "problem_idx", "sample_idx": "sample_idx", "response": "response", "reference": "gold",
          "question": "question"}
DISAGREEMENTS = [json.loads(line) for line in
                 (Path(__file__).parent / "cases" / "qwen25math_policy_disagreements.jsonl").read_text().splitlines()
                 if line.strip()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The Qwen2.5-Math outputs imported (no finish reasons, no --max-tokens: finish unknown) and scored
    strict (the default); a copy re-scored lenient through the CLI, without the model."""
    source = shared_path("generations", "qwen25math_math_cot_100.jsonl")
    root = tmp_path_factory.mktemp("policies")
    strict = root / "strict"
    import_generations(source, "math500", str(shared_path("tokenizers", "qwen2.5")), strict, FIELDS,
                       budgets=BUDGETS, model="Qwen2.5-Math-7B-Instruct")
    evaluate_run(strict, workers=2, progress=False, bootstrap=0)
    lenient = root / "lenient"
    shutil.copytree(strict, lenient)
    result = budgeteval("score", lenient, "--answer-policy", "lenient", "--workers", "2", "--bootstrap", "0", "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    labels = pd.read_json(source, lines=True).rename(columns={"problem_idx": "problem_id"})
    return {"strict": strict, "lenient": lenient}, labels


@pytest.mark.parametrize("policy", ["strict", "lenient"])
def test_agreement_with_publisher_labels_at_the_largest_budget(runs, policy):
    dirs, labels = runs
    scores = read_scores(dirs[policy])
    full = scores[scores.budget == max(BUDGETS)].astype({"problem_id": int})
    merged = full.merge(labels, on=["problem_id", "sample_idx"])
    assert len(merged) == 800
    disagree = merged[merged.correct != merged.repo_correct]
    found = {(int(r.problem_id), int(r.sample_idx)): bool(r.correct) for r in disagree.itertuples()}
    expected = {(row["problem_idx"], row["sample_idx"]): row["ours"] for row in DISAGREEMENTS if policy in row["policies"]}
    assert found == expected, "the disagreement set changed: update the file with a category per row"
    assert 1 - len(found) / len(merged) >= 0.99


def test_strict_credits_no_cut_response_without_a_stated_answer(runs):
    dirs, _ = runs
    strict = read_scores(dirs["strict"])
    at_128 = strict[strict.budget == 128]
    assert (at_128.finished == False).all()  # noqa: E712  (every response is longer than 128 tokens)
    unstated = at_128[~at_128.answer_source.isin(["boxed", "stated"])]
    assert not unstated.correct.any()
    assert set(unstated.answer_source) == {"none"}
    assert at_128.correct.sum() == 0 and not at_128.answer_source.isin(["boxed", "stated"]).any()
    lenient = read_scores(dirs["lenient"])
    credited = lenient[(lenient.budget == 128) & lenient.correct]
    # Lenient reads intermediate values of unfinished texts (issue 10: 27 of 800 before this change).
    assert len(credited) > 0 and set(credited.answer_source) == {"fallback"}


def test_policy_is_recorded_and_reported(runs):
    dirs, _ = runs
    for policy, path in dirs.items():
        manifest = json.loads((path / "manifest.json").read_text())
        assert manifest["scoring"]["answer_policy"] == policy
        assert manifest["generation"]["max_tokens_stated"] is False
    report = budgeteval("report", dirs["lenient"])
    assert report.returncode == 0, report.stderr
    assert "Answer policy: lenient" in report.stdout and "answers from fallback %" in report.stdout
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.strip("|").split("|")]
            for line in report.stdout.splitlines() if line.startswith("| 128") or line.startswith("| 4k")}
    assert rows["128"][-1] == "100.0"  # every correct answer at 128 came from fallback
    assert rows["128"][-2] == "100.0"  # every response is longer than 128 tokens: known to be cut
    assert rows["4k"][-2] == "n/a"  # each fits in 4k, but whether it stopped on its own is unknown


def test_gsm8k_solutions_agree_with_openai_labels_under_strict(shared_dir):
    rows = [json.loads(line) for line in
            (shared_dir / "generations" / "gsm8k_openai_example_solutions.jsonl").read_text().splitlines()]
    items = [ScoreItem(str(row["problem_idx"]), row["gold_solution"], row["response"], finished=True) for row in rows]
    verdicts = gsm8k_score_batch(items, answer_policy="strict")
    agreement = sum(v.correct == row["repo_correct"] for v, row in zip(verdicts, rows)) / len(rows)
    assert agreement >= 0.99, agreement
    # The solutions end on OpenAI's "A: N" line: stated, so cutting them would not change a verdict.
    sources = pd.Series([v.answer_source for v in verdicts]).value_counts()
    assert sources.get("stated", 0) / len(rows) >= 0.99
    cut = gsm8k_score_batch([ScoreItem(i.problem_id, i.reference, i.answer_text, finished=False) for i in items])
    assert [v.correct for v in cut] == [v.correct and v.answer_source != "fallback" for v in verdicts]


def test_old_run_directory_loads_scores_and_reports(runs, tmp_path):
    dirs, _ = runs
    old = tmp_path / "old"
    shutil.copytree(dirs["strict"], old)
    # The files as the writer before answer sources left them: no answer_source column, no recorded
    # policy, generations whose finish reason an import inferred from the largest budget.
    scores = pq.read_table(old / "scores.parquet").to_pandas().drop(columns=["answer_source"])
    scores["finished"] = scores["finished"].fillna(True).astype(bool)
    pq.write_table(pa.Table.from_pandas(scores, preserve_index=False), old / "scores.parquet")
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["scoring"]["answer_policy"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    for part in (old / "generations" / "math500").glob("*.parquet"):
        table = pq.read_table(part).to_pandas()
        table["finish_reason"] = ["length" if len(ids) >= max(BUDGETS) else "stop" for ids in table["token_ids"]]
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), part)

    loaded = load_run(old).scores
    assert loaded["answer_source"].isna().all() and loaded["finished"].dtype == bool
    report = budgeteval("report", old)
    assert report.returncode == 0, report.stderr
    assert "answers from fallback" not in report.stdout and "Answer policy" not in report.stdout
    rescored = budgeteval("score", old, "--budgets", "128", "--workers", "2", "--bootstrap", "0", "--quiet")
    assert rescored.returncode == 0, rescored.stderr[-2000:]
    scores = read_scores(old)
    assert set(scores.answer_source) == {"none"} and not scores.correct.any()  # strict, all cut at 128
    assert json.loads((old / "manifest.json").read_text())["scoring"]["answer_policy"] == "strict"
