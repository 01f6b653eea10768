"""TRL adapter: a real GRPO run with BudgetEvalCallback, scoring from a thread, and TRL reward functions.

The GRPO test trains a tiny random Qwen3 (tests/tiny_model.py) for two steps on CPU with
`use_vllm=False`, so the callback generates with the policy itself. It checks what a user relies
on: the budget metrics land in `trainer.state.log_history` (and so reach every logger) at the
evaluated steps without cancelling the trainer's own logs, their values are consistent, the
per-step table is written, and the final step's numbers equal a `budgeteval run` of the saved
checkpoint with the same seeds and sampling.
"""

import threading

import pandas as pd
import pytest
from conftest import shared_path
from guards import import_or_need

pytestmark = [pytest.mark.slow, pytest.mark.shared]

trl = import_or_need("trl", "the TRL tests need trl (pip install -e '.[train]')")

BUDGETS = (4, 8)


def gsm8k_data() -> str:
    return str(shared_path("data", "gsm8k_test.jsonl"))


def test_grpo_run_logs_budget_curves(tiny_model, tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from budgeteval.generation.backends.base import SamplingConfig
    from budgeteval.generation.config import EngineOptions, RunConfig
    from budgeteval.report.steps import read_step_metrics
    from budgeteval.scoring.metrics import read_metrics
    from budgeteval.sweep.runner import run
    from budgeteval.tasks.loading import load_problems, load_task
    from budgeteval.train.trl import BudgetEvalCallback, reward_function

    data = {"gsm8k": gsm8k_data()}
    problems = load_problems(load_task("gsm8k", data), 4)
    train = Dataset.from_list([{"prompt": p.question, "reference": p.reference} for p in problems])
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=4, num_generations=2,
        max_completion_length=8, logging_steps=1, report_to="none", save_strategy="no", use_cpu=True,
        bf16=False, seed=0, learning_rate=1e-3, dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(model=str(tiny_model), reward_funcs=[reward_function("kimi", scorer="gsm8k")], args=args,
                          train_dataset=train)
    sampling = SamplingConfig(temperature=1.0, top_p=1.0)
    callback = BudgetEvalCallback(["gsm8k"], BUDGETS, n=2, every_steps=1, limit=2, data_files=data,
                                  sampling=sampling, seed=3)
    trainer.add_callback(callback.attach(trainer))
    trainer.train()

    history = trainer.state.log_history
    budget_logs = {entry["step"]: entry for entry in history if any(key.startswith("budget/") for key in entry)}
    assert sorted(budget_logs) == [1, 2]
    # The callback's own log must not cancel the trainer's log of the same step.
    assert sorted(entry["step"] for entry in history if "loss" in entry) == [1, 2]
    for entry in budget_logs.values():
        keys = {key for key in entry if key.startswith("budget/")}
        assert keys == {f"budget/gsm8k/{budget}/{name}" for budget in BUDGETS
                        for name in ("mean@1", "mean@2", "pass@1", "pass@2", "length_mean", "truncation_rate")}
        for budget in BUDGETS:
            cell = {name: entry[f"budget/gsm8k/{budget}/{name}"] for name in
                    ("mean@1", "mean@2", "pass@1", "pass@2", "length_mean", "truncation_rate")}
            assert all(0.0 <= cell[name] <= 1.0 for name in ("mean@1", "mean@2", "pass@1", "pass@2", "truncation_rate"))
            assert cell["pass@2"] >= cell["pass@1"] - 1e-12
            assert 1.0 <= cell["length_mean"] <= budget
        assert entry["budget/gsm8k/8/length_mean"] >= entry["budget/gsm8k/4/length_mean"]
        assert entry["budget/gsm8k/8/truncation_rate"] <= entry["budget/gsm8k/4/truncation_rate"]

    table = read_step_metrics(tmp_path / "out" / "budgeteval")
    assert sorted(table["step"].unique()) == [1, 2]

    # The same numbers as `budgeteval run` on the checkpoint the callback evaluated last.
    trainer.save_model(str(tmp_path / "final"))
    run_dir = run(RunConfig(model=str(tmp_path / "final"), tasks=("gsm8k",), out=str(tmp_path / "run"),
                            backend="hf", data_files=tuple(data.items()), limit=2, n=2, budgets=BUDGETS, seed=3,
                            sampling=sampling, engine=EngineOptions(device="cpu"), workers=1),
                  progress=False, bootstrap=0)
    expected = read_metrics(run_dir)
    final = budget_logs[2]
    for row in expected[expected["metric"].isin(["mean", "pass", "length_mean", "truncation_rate"])].itertuples():
        name = row.metric if pd.isna(row.k) else f"{row.metric}@{int(row.k)}"
        assert final[f"budget/gsm8k/{row.budget}/{name}"] == pytest.approx(row.value, abs=1e-12), name


def test_callback_without_trainer_says_how_to_attach():
    from budgeteval.errors import UserError
    from budgeteval.train.trl import BudgetEvalCallback

    callback = BudgetEvalCallback(["gsm8k"], ["4", "8"], n=2)
    with pytest.raises(UserError, match="attach"):
        callback.on_train_begin(None, None, None)
    with pytest.raises(UserError, match="ks must lie"):
        BudgetEvalCallback(["gsm8k"], [4], n=2, ks=[4])


def test_metrics_to_logs_names():
    from budgeteval.scoring.metrics import compute_metrics
    from budgeteval.train.trl import metrics_to_logs

    scores = pd.DataFrame({
        "task": "t", "problem_id": ["a", "a", "b", "b"], "sample_idx": [0, 1, 0, 1], "budget": 2048, "mode": "cutoff",
        "num_tokens": [10, 20, 30, 2048], "finished": [True, True, True, False], "extracted": ["1", "2", "3", None],
        "correct": [True, False, True, True], "timed_out": False,
    })
    logs = metrics_to_logs(compute_metrics(scores, [1, 2]))
    assert logs == {
        "budget/t/2048/mean@1": 1.0, "budget/t/2048/mean@2": 0.75, "budget/t/2048/pass@1": 0.75,
        "budget/t/2048/pass@2": 1.0, "budget/t/2048/length_mean": 527.0, "budget/t/2048/truncation_rate": 0.25,
    }


MATH_COMPLETIONS = [
    # (completion, reference, correct): judged by the math scorer (math-verify in worker processes)
    ("So the answer is \\boxed{\\frac{1}{2}}.", "\\frac12", True),
    ("We get \\boxed{0.5} after simplifying, a long way round to it.", "\\frac12", True),
    ("The result is \\boxed{3}.", "\\frac12", False),
    ("Thinking... \\boxed{7}", "7", True),
]


def test_math_scoring_is_safe_from_a_trainer_thread():
    """math-verify's timeouts use signal.alarm, which only works in the main thread: the scorer keeps it in
    worker processes, so a trainer thread gets the same verdicts as the main thread."""
    from budgeteval.train.judge import judge_texts

    texts = [c for c, _, _ in MATH_COMPLETIONS]
    references = [r for _, r, _ in MATH_COMPLETIONS]
    in_main = judge_texts(texts, references, "math", workers=1)
    box = {}

    def in_thread():
        try:
            box["verdicts"] = judge_texts(texts, references, "math", workers=1)
        except BaseException as error:  # noqa: BLE001  (reported by the assertion below)
            box["error"] = error

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(timeout=120)
    assert "error" not in box, box.get("error")
    assert box["verdicts"] == in_main
    assert [v.correct for v in in_main] == [c for _, _, c in MATH_COMPLETIONS]


def test_trl_reward_functions_match_the_pure_rewards():
    from budgeteval.train.rewards import kimi_length_rewards
    from budgeteval.train.trl import reward_function

    prompts = ["p1", "p1", "p2", "p2"]
    completions = [c for c, _, _ in MATH_COMPLETIONS]
    references = [r for _, r, _ in MATH_COMPLETIONS]
    completion_ids = [[0] * 10, [0] * 30, [0] * 5, [0] * 5]
    kimi = reward_function("kimi", scorer="math", alpha=1.0)
    assert kimi.__name__ == "budgeteval_kimi"
    rewards = kimi(prompts=prompts, completions=completions, completion_ids=completion_ids, reference=references)
    assert rewards == kimi_length_rewards([True, True], [10, 30]) + kimi_length_rewards([False, True], [5, 5])
    assert rewards == [1.5, 0.5, 0.0, 1.0]

    masked = reward_function("-I", scorer="math", target_length=20)
    assert masked(prompts=prompts, completions=completions, completion_ids=completion_ids,
                  reference=references) == [1.0, 0.0, None, 1.0]
    # Conversational completions, per-problem targets from a dataset column (LASER-D).
    laser = reward_function("laser", scorer="math", target_length="target", alpha=0.5)
    conversational = [[{"role": "assistant", "content": c}] for c in completions]
    assert laser(prompts=prompts, completions=conversational, completion_ids=completion_ids, reference=references,
                 target=[8, 64, 8, 8]) == [1.0, 1.5, 0.0, 1.5]


def test_trl_reward_function_names_the_missing_column():
    from budgeteval.errors import UserError
    from budgeteval.train.trl import reward_function

    with pytest.raises(UserError, match="no column 'answer'"):
        reward_function("correctness", reference_column="answer")(
            prompts=["p"], completions=["\\boxed{1}"], completion_ids=[[1]], reference=["1"])
    with pytest.raises(UserError, match="Unknown reward"):
        reward_function("shortest")

