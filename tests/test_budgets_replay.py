"""Budget strings, token-id truncation and the truncation-aware answer region."""

import numpy as np
import pytest
from conftest import SHARED, read_cases

from budgeteval.errors import UserError
from budgeteval.generation.budgets import format_budget, parse_budget, parse_budgets
from budgeteval.generation.tokenizer import load_decoder
from budgeteval.scoring.replay import answer_region, count_tokens, marker_ids, split_thinking, truncate


@pytest.mark.parametrize("text, tokens", [("2k", 2048), ("32K", 32768), ("4096", 4096), (" 1k ", 1024), ("1", 1)])
def test_parse_budget(text, tokens):
    assert parse_budget(text) == tokens


@pytest.mark.parametrize("text", ["2x", "0", "0k", "-1", "1.5k", "", "k", "2kk"])
def test_parse_budget_rejects(text):
    with pytest.raises(UserError):
        parse_budget(text)


def test_parse_budgets_sorts_and_dedups():
    assert parse_budgets("8k,2k,2048,4k") == (2048, 4096, 8192)
    with pytest.raises(UserError):
        parse_budgets(" , ")


def test_format_budget():
    assert [format_budget(b) for b in (2048, 32768, 1000, 1024)] == ["2k", "32k", "1000", "1k"]


# (ids, finish_reason, budget) -> (kept length, finished)
TRUNCATION_CASES = [
    ([1, 2, 3, 9], "stop", 8, 4, True),      # ended on its own well within the budget
    ([1, 2, 3, 9], "stop", 4, 4, True),      # the stop token is the B-th token: finished
    ([1, 2, 3, 9], "stop", 3, 3, False),     # cut before its stop token
    ([1, 2, 3, 4], "length", 4, 4, False),   # hit max_tokens at exactly B: not finished
    ([1, 2, 3, 4], "length", 8, 4, False),   # budget above the generation limit keeps all, unfinished
    ([], "stop", 2, 0, True),
]


@pytest.mark.parametrize("ids, reason, budget, kept, finished", TRUNCATION_CASES)
def test_truncate(ids, reason, budget, kept, finished):
    replayed = truncate(ids, reason, budget)
    assert replayed.token_ids == tuple(ids[:kept])
    assert replayed.num_tokens == kept
    assert replayed.finished is finished


def test_truncate_rejects_non_positive_budget():
    with pytest.raises(ValueError):
        truncate([1], "stop", 0)


ANSWER_REGION_CASES = [
    ("reasoning...</think>The answer is \\boxed{5}", "</think>", True, "The answer is \\boxed{5}"),
    ("still thinking \\boxed{4} hmm", "</think>", True, None),  # unfinished trace: no answer
    ("a</think>b</think>final", "</think>", True, "final"),
    ("plain answer \\boxed{3}", "</think>", False, "plain answer \\boxed{3}"),  # thinking closed in the prompt
    ("plain answer \\boxed{3}", None, False, "plain answer \\boxed{3}"),
    ("x<|end_of_thought|>y", "<|end_of_thought|>", True, "y"),
]


@pytest.mark.parametrize("text, marker, thinking, expected", ANSWER_REGION_CASES)
def test_answer_region(text, marker, thinking, expected):
    assert answer_region(text, marker, thinking) == expected


@pytest.mark.parametrize("text, budgets", [
    ("256:1k:256", (256, 512, 768, 1024)),              # linear, STOP on the ladder
    ("100:350:100", (100, 200, 300)),                   # linear, STOP off the ladder: not included
    ("1k:32k:x2", (1024, 2048, 4096, 8192, 16384, 32768)),  # geometric
    ("1k:10k:x3", (1024, 3072, 9216)),
    ("128,256:1k:256,1k", (128, 256, 512, 768, 1024)),  # ranges mix with single budgets, de-duplicated
    ("512:512:1", (512,)),
])
def test_parse_budget_ranges(text, budgets):
    assert parse_budgets(text) == budgets


@pytest.mark.parametrize("text", ["1k:256:256", "256:1k", "256:1k:0", "1k:8k:x1", "1k:8k:x0.5", "1:100000:1",
                                  "256:1k:2y"])
def test_parse_budget_ranges_reject(text):
    with pytest.raises(UserError):
        parse_budgets(text)


@pytest.mark.parametrize("case", read_cases("thinking_split_cases.jsonl"), ids=lambda case: case["rule"])
def test_split_thinking(case):
    split = split_thinking(np.asarray(case["ids"], dtype=np.int64), case["end"], case["thinking"])
    assert (split.thinking_tokens, split.answer_tokens, split.ended) == (
        case["thinking_tokens"], case["answer_tokens"], case["ended"])
    assert split.thinking_tokens + split.answer_tokens == len(case["ids"])


@pytest.mark.parametrize("case", read_cases("token_count_cases.jsonl"), ids=lambda case: case["rule"])
def test_count_tokens(case):
    count = count_tokens(np.asarray(case["ids"], dtype=np.int64), case["end"], case["thinking"], case["budget"],
                         case["finished"], tuple(case["uncounted"]))
    assert (count.thinking_tokens, count.answer_tokens, count.cut_thinking) == (
        case["thinking_tokens"], case["answer_tokens"], case["cut_thinking"])
    start, end = case["uncounted"]
    assert count.thinking_tokens + count.answer_tokens == len(case["ids"]) - (end - start)


def test_marker_ids_of_a_thinking_family_is_one_special_token():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(SHARED / "tokenizers" / "qwen3")
    assert len(marker_ids(tokenizer, "</think>")) == 1
    assert marker_ids(tokenizer, None) == ()
    # Scoring decodes with the `tokenizers` library alone: it finds the same marker ids.
    decoder = load_decoder(str(SHARED / "tokenizers" / "qwen3"))
    assert marker_ids(decoder, "</think>") == marker_ids(tokenizer, "</think>")
