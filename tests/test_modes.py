"""Budget modes without a model: forcing plans, forcing strings per family, budget instructions, errors."""

import json

import pytest
from cli_checks import assert_user_error, budgeteval
from conftest import shared_path

from budgeteval.generation.forcing import (
    FORCE_STRINGS,
    ForcePlan,
    continuation_request,
    continuation_seed,
    forced_response_ids,
    model_family,
    plan_force,
    still_thinking,
)
from budgeteval.tasks.loading import DatasetSource, Problem, Task
from budgeteval.tasks.prompts import BudgetInstruction, PromptSettings, render_prompt

pytestmark = [pytest.mark.shared]

FORCE = (7, 8)


@pytest.mark.parametrize("ids, reason, budget, thinking, expected", [
    # finished within the budget: used as it is
    ((1, 2, 3), "stop", 3, True, ForcePlan(False, ())),
    ((1, 2, 3), "stop", 10, True, ForcePlan(False, ())),
    # stopped, but after the budget: forced
    ((1, 2, 3), "stop", 2, True, ForcePlan(True, FORCE)),
    # cut by max_tokens: forced even at the full length
    ((1, 2, 3), "length", 3, True, ForcePlan(True, FORCE)),
    # thinking already closed within the budget: continue the answer without forcing
    ((1, 2, 3), "length", 2, False, ForcePlan(True, ())),
])
def test_plan_force(ids, reason, budget, thinking, expected):
    assert plan_force(ids, reason, budget, thinking, FORCE) == expected


@pytest.mark.parametrize("prefix, think_end, thinking, expected", [
    ("let me think", "</think>", True, True),
    ("done</think>The answer", "</think>", True, False),
    ("plain answer", None, False, True),
    ("answer</think>", "</think>", False, True),  # non-thinking output always gets the forcing string
])
def test_still_thinking(prefix, think_end, thinking, expected):
    assert still_thinking(prefix, think_end, thinking) is expected


def test_continuation_request_and_response_ids():
    plan = ForcePlan(True, FORCE)
    request = continuation_request("k", (100, 101), (1, 2, 3, 4), 3, plan, sample_seed=5, answer_tokens=9)
    assert request.prompt_token_ids == (100, 101, 1, 2, 3, 7, 8)
    assert (request.n, request.max_tokens, request.seed) == (1, 9, continuation_seed(5, 3))
    assert continuation_seed(5, 3) != continuation_seed(5, 4) != continuation_seed(6, 3)
    assert forced_response_ids((1, 2, 3, 4), 3, FORCE, (20, 21)).tolist() == [1, 2, 3, 7, 8, 20, 21]
    assert forced_response_ids((1, 2, 3, 4), 4, (), ()).tolist() == [1, 2, 3, 4]  # finished: nothing appended


@pytest.mark.parametrize("folder, family", [("qwen3", "qwen3"), ("deepseek-r1-distill-qwen", "deepseek-r1"),
                                            ("qwen2.5", "generic")])
def test_model_family(folder, family):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(shared_path("tokenizers", folder)))
    assert model_family(tokenizer) == family
    assert "</think>" in FORCE_STRINGS[family]


def _task(system=None):
    return Task(name="t", version=1, description="", size=1, source=DatasetSource("x", None, "test"), id_field=None,
                question_field="q", reference_field="r", prompt_template="{question} Box it.", system_prompt=system,
                scorer="math", yaml_path="t.yaml")


@pytest.mark.parametrize("position, system, expected_user, expected_system", [
    ("suffix", None, "2+2? Box it. Think for 512 tokens.", None),
    ("prefix", None, "Think for 512 tokens. 2+2? Box it.", None),
    ("system", None, "2+2? Box it.", "Think for 512 tokens."),
    ("system", "Be brief.", "2+2? Box it.", "Be brief.\nThink for 512 tokens."),
])
def test_budget_instruction_positions(position, system, expected_user, expected_system):
    problem = Problem("0", "2+2?", "4", {})
    instruction = BudgetInstruction("Think for {budget} tokens.", position, 512)
    text = render_prompt(_task(system), problem, None, PromptSettings(chat_template=False), instruction)
    assert text == (f"{expected_system}\n\n{expected_user}" if expected_system else expected_user)


def test_mode_errors(tmp_path):
    tokenizer = shared_path("tokenizers", "qwen3")
    base = ["run", "--model", tokenizer, "--tasks", "aime25", "--out", tmp_path / "r"]
    assert_user_error(budgeteval(*base, "--modes", "cutoff,budgeted"), "--modes")
    data = shared_path("data", "aime2025.jsonl")
    assert_user_error(budgeteval(*base, "--data", f"aime25={data}", "--modes", "conditioned"), "--budget-prompt")
    assert_user_error(budgeteval(*base, "--data", f"aime25={data}", "--budget-prompt", "Think for {budget} tokens."),
                    "conditioned")


@pytest.mark.slow
def test_scoring_forced_without_continuations_is_refused(tmp_path):
    rows = [{"pid": "p0", "gold": "1", "out": "\\boxed{1}"}, {"pid": "p0", "gold": "1", "out": "\\boxed{2}"}]
    source = tmp_path / "gens.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "run"
    imported = budgeteval("import", source, "--task", "math500", "--tokenizer", shared_path("tokenizers", "qwen2.5"),
                    "--field", "problem_id=pid", "--field", "response=out", "--field", "reference=gold",
                    "--budgets", "8,64", "--out", out, "--quiet")
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert_user_error(budgeteval("score", out, "--modes", "cutoff,forced", "--quiet"), "no forced answers")


def test_token_split_of_every_mode_on_real_tokens(tmp_path):
    """Real Qwen3 token ids through the real writers and `evaluate_run`, in cutoff, forced and
    conditioned mode: the split adds up to num_tokens on every row, the thinking ends at the marker,
    and cut_thinking is the response still thinking at B."""
    from sweep_checks import assert_token_split
    from transformers import AutoTokenizer
    from viewer_runs import THINKING_PROMPT, write_text_run

    from budgeteval.rundir.manifest import ModesSection, read_manifest, write_manifest
    from budgeteval.rundir.store import CONDITIONED, ConditionedRecord, write_shard
    from budgeteval.scoring.evaluate import evaluate_run, read_scores
    from budgeteval.scoring.metrics import read_metrics

    tokenizer = AutoTokenizer.from_pretrained(shared_path("tokenizers", "qwen3"))
    thought = "Let me add the numbers carefully, one at a time, and check the sum twice. "
    responses = {"p1": [thought + "</think>\n\nThe sum is \\boxed{4}.", thought * 3 + "still going"],
                 "p2": ["</think>\n\n\\boxed{5}", thought + "</think>\n\nSo \\boxed{5}."]}
    problems = [{"problem_id": "p1", "question": "2+2?", "reference": "4"},
                {"problem_id": "p2", "question": "2+3?", "reference": "5"}]
    budgets = (8, 24, 64)
    run = write_text_run(tmp_path / "run", tokenizer, "math500", problems, responses, budgets,
                         forced_answer="\\boxed{4}")
    conditioned = [ConditionedRecord(
        task="math500", problem_id=pid, sample_idx=idx, prompt=THINKING_PROMPT, prompt_num_tokens=10,
        token_ids=tuple(ids[:budget + 4]), text="", finish_reason="stop" if len(ids) <= budget + 4 else "length",
        seed=idx, max_tokens=budget + 4, model="org/model", backend="test", budget=budget)
        for pid, texts in responses.items() for idx, text in enumerate(texts)
        for ids in [tokenizer(text, add_special_tokens=False)["input_ids"]] for budget in budgets]
    write_shard(run, "math500", conditioned, kind=CONDITIONED)
    manifest = read_manifest(run)
    write_manifest(run, manifest.replace(modes=ModesSection(modes=("cutoff", "forced", "conditioned"),
                                                             force_string=manifest.modes.force_string)))
    evaluate_run(run, workers=1, progress=False, bootstrap=0)
    scores = read_scores(run)
    assert set(scores["mode"]) == {"cutoff", "forced", "conditioned"}
    assert_token_split(scores)
    end_id = tokenizer.convert_tokens_to_ids("</think>")
    full = {pid: [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
            for pid, texts in responses.items()}
    cutoff = scores[scores["mode"] == "cutoff"]
    for row in cutoff.itertuples():
        ids = full[row.problem_id][row.sample_idx][:row.budget]
        closed = end_id in ids
        expected_thinking = (len(ids) - ids[::-1].index(end_id)) if closed else len(ids)
        assert row.thinking_tokens == expected_thinking, row
        assert bool(row.cut_thinking) == (not closed and not row.finished), row
    forced = scores[(scores["mode"] == "forced") & ~scores["finished"].astype(bool)]
    answer_len = len(tokenizer("\\boxed{4}", add_special_tokens=False)["input_ids"])
    still = forced[forced["cut_thinking"].astype(bool)]
    assert len(still) and (still["thinking_tokens"] == still["budget"]).all()  # forced while thinking
    assert (still["answer_tokens"] == answer_len).all()  # the forcing string is not counted
    never_closed = scores[(scores["problem_id"] == "p1") & (scores["sample_idx"] == 1)]
    cut = never_closed[~never_closed["finished"].astype(bool)]
    assert len(cut) and cut["cut_thinking"].astype(bool).all()  # cut (or forced) before any marker
    assert not never_closed[never_closed["finished"].astype(bool)]["cut_thinking"].astype(bool).any()
    metrics = read_metrics(run)
    for metric in ("thinking_mean", "answer_mean", "cut_thinking_rate"):
        assert len(metrics[metrics["metric"] == metric]) == 3 * len(budgets), metric
