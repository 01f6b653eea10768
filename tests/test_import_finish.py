"""How `import` decides why a response ended: finish-reason spellings, --max-tokens with the cut
tolerance, the unfinished-text rule (tests/cases/import_finish_cases.jsonl), and "unknown" (truncation
n/a, counted as finished by the answer policies)."""

import json
from pathlib import Path

import pandas as pd
import pytest
from cli_checks import budgeteval
from conftest import shared_path

from budgeteval.errors import UserError
from budgeteval.ingest.generations import (
    DEFAULT_CUT_TOLERANCE,
    finish_reason_of,
    import_generations,
    inferred_finish_reason,
)
from budgeteval.rundir.store import read_task
from budgeteval.scoring.evaluate import evaluate_run, read_scores

pytestmark = [pytest.mark.shared]

FINISH_CASES = [json.loads(line) for line in
                (Path(__file__).parent / "cases" / "import_finish_cases.jsonl").read_text(encoding="utf-8").splitlines()
                if line.strip()]


@pytest.mark.parametrize("case", FINISH_CASES, ids=[case["id"] for case in FINISH_CASES])
def test_unfinished_text_case(case: dict) -> None:
    assert inferred_finish_reason(case["text"], 10, None, DEFAULT_CUT_TOLERANCE, ["<|im_end|>"],
                                  case["unfinished_text"]) == case["finish_reason"]


@pytest.mark.parametrize("value, expected", [
    ("stop", "stop"), ("length", "length"),  # vLLM, OpenAI
    ("eos_token", "stop"), ("stop_sequence", "stop"),  # TGI
    ("STOP", "stop"), ("MAX_TOKENS", "length"),  # Gemini
    ("end_turn", "stop"), ("max_tokens", "length"),  # Anthropic
    ({"type": "length", "length": 4096}, "length"), ({"type": "stop", "matched": 151645}, "stop"),  # SGLang
    (None, None), (float("nan"), None), ("", None),  # an empty cell: the other rules decide
])
def test_finish_reason_spellings(value, expected, tmp_path):
    assert finish_reason_of(value, tmp_path / "f.jsonl") == expected


def test_unknown_finish_reason_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="finish reason 'tool_calls'.*--field finish_reason=COLUMN"):
        finish_reason_of("tool_calls", tmp_path / "f.jsonl")


def test_cut_tolerance_rule():
    eos = ["<|im_end|>"]
    # Measured: responses cut at 32,768 generated tokens re-tokenize to as few as 32,467 (0.9% fewer).
    assert inferred_finish_reason("… and so we", 32_467, 32_768, DEFAULT_CUT_TOLERANCE, eos) == "length"
    assert inferred_finish_reason("… and so we", 32_768, 32_768, DEFAULT_CUT_TOLERANCE, eos) == "length"
    assert inferred_finish_reason("… so \\boxed{3}.", 32_467, 32_768, DEFAULT_CUT_TOLERANCE, eos) == "stop"
    assert inferred_finish_reason("… the answer is 3.", 32_467, 32_768, DEFAULT_CUT_TOLERANCE, eos) == "stop"
    assert inferred_finish_reason("… done<|im_end|>", 32_467, 32_768, DEFAULT_CUT_TOLERANCE, eos) == "stop"
    assert inferred_finish_reason("… and so we", 32_000, 32_768, DEFAULT_CUT_TOLERANCE, eos) == "stop"  # 2.3% short
    assert inferred_finish_reason("… and so we", 32_467, 32_768, 0.0, eos) == "stop"
    assert inferred_finish_reason("… and so we.", 32_768, None, DEFAULT_CUT_TOLERANCE, eos) == "unknown"
    assert inferred_finish_reason("… and so we", 32_768, None, DEFAULT_CUT_TOLERANCE, eos) == "length"
    assert inferred_finish_reason("… and so we", 32_768, None, DEFAULT_CUT_TOLERANCE, eos, "unknown") == "unknown"


@pytest.fixture(scope="module")
def tokenizer_dir():
    return str(shared_path("tokenizers", "qwen2.5"))


def write_rows(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


ROWS = [
    {"pid": "a", "out": "We add: 1 + 1 = 2. The answer is 2.", "gold": "2", "why": "stop"},
    {"pid": "a", "out": "We add: 1 + 1 = 2, and then we", "gold": "2", "why": "length"},
    {"pid": "b", "out": "So it is 5", "gold": "5", "why": "eos_token"},
    {"pid": "b", "out": "Hmm, 5 or", "gold": "5", "why": None},
]
FIELDS = {"problem_id": "pid", "response": "out", "reference": "gold"}


def test_mapped_finish_reasons_reach_the_store(tmp_path, tokenizer_dir):
    source = write_rows(tmp_path / "gen.jsonl", ROWS)
    out = import_generations(source, "math500", tokenizer_dir, tmp_path / "run", {**FIELDS, "finish_reason": "why"},
                             budgets=(64,), max_tokens=64)
    stored = read_task(out, "math500", columns=["problem_id", "sample_idx", "finish_reason"]).to_pylist()
    # The empty cell falls back to the --max-tokens rule: far shorter than 64 tokens, so stop.
    assert [row["finish_reason"] for row in stored] == ["stop", "length", "stop", "stop"]
    evaluate_run(out, workers=1, progress=False, bootstrap=0)
    scores = read_scores(out).set_index(["problem_id", "sample_idx"])
    # strict: the cut response a/1 holds the gold 2 but states no answer: not credited.
    assert scores.loc[("a", 1), "finished"] == False and not scores.loc[("a", 1), "correct"]  # noqa: E712
    assert scores.loc[("a", 0), "answer_source"] == "stated" and scores.loc[("a", 0), "correct"]


def test_without_finish_reasons_or_max_tokens_finishing_is_unknown(tmp_path, tokenizer_dir):
    source = write_rows(tmp_path / "gen.jsonl", ROWS)
    result = budgeteval("import", source, "--task", "math500", "--tokenizer", tokenizer_dir, "--field", "problem_id=pid",
                        "--field", "response=out", "--field", "reference=gold", "--budgets", "4,64", "--workers", "1",
                        "--bootstrap", "0", "--unfinished-text", "unknown", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.strip("|").split("|")]
            for line in result.stdout.splitlines() if line.startswith("| 4 ") or line.startswith("| 64 ")}
    header = [line for line in result.stdout.splitlines() if line.startswith("| budget")][0]
    truncated = [cell.strip() for cell in header.strip("|").split("|")].index("truncated %")
    assert rows["4"][truncated] == "100.0"  # every response is longer than 4 tokens: known to be cut
    assert rows["64"][truncated] == "n/a"  # each fits in 64, but it may have been cut when generated
    assert "Truncated n/a: unknown" in result.stdout
    scores = read_scores(tmp_path / "run")
    at_64 = scores[scores.budget == 64]
    assert at_64["finished"].isna().all()
    # strict counts an unknown finish as finished: the fallback reads b/0's "So it is 5".
    assert at_64.set_index(["problem_id", "sample_idx"]).loc[("b", 0), "answer_source"] == "fallback"
    assert bool(at_64.set_index(["problem_id", "sample_idx"]).loc[("b", 0), "correct"])
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    rate = metrics[(metrics.metric == "truncation_rate")].set_index("budget")["value"]
    assert rate[4] == 1.0 and pd.isna(rate[64])


def test_unfinished_text_counts_as_cut_by_default(tmp_path, tokenizer_dir):
    source = write_rows(tmp_path / "gen.jsonl", ROWS)
    out = import_generations(source, "math500", tokenizer_dir, tmp_path / "run", FIELDS, budgets=(64,))
    stored = read_task(out, "math500", columns=["finish_reason"]).to_pylist()
    # "... The answer is 2." ends a sentence; the three others stop mid-sentence.
    assert [row["finish_reason"] for row in stored] == ["unknown", "length", "length", "length"]
    from budgeteval.rundir.manifest import read_manifest

    assert read_manifest(out).generation["unfinished_text"] == "cut"
    evaluate_run(out, workers=1, progress=False, bootstrap=0)
    scores = read_scores(out).set_index(["problem_id", "sample_idx"])
    # strict: b/0 "So it is 5" is now cut and states no answer: not credited from the fallback.
    assert scores.loc[("b", 0), "answer_source"] == "none" and not scores.loc[("b", 0), "correct"]
