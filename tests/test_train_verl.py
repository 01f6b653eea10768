"""verl adapter without verl: compute_score on real generations, reward_batch, and `budgeteval watch`.

Real data: Qwen2.5-Math-Instruct outputs on 100 MATH problems x 8 with the publisher's labels
(../shared/generations). The watcher reads files written here in verl's validation-dump format
(`RayPPOTrainer._dump_generations`: `<step>.jsonl`, one line per response with input, output, gts,
score, step and the reward function's extra values).
"""

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import shared_path

from budgeteval.cli import main
from budgeteval.errors import UserError

pytestmark = [pytest.mark.shared, pytest.mark.sandbox]

MATH = "HuggingFaceH4/MATH-500"


@pytest.fixture(scope="module")
def generations() -> pd.DataFrame:
    return pd.read_json(shared_path("generations", "qwen25math_math_cot_100.jsonl"), lines=True)


@pytest.fixture(scope="module")
def disagreements() -> set:
    path = Path(__file__).parent / "cases" / "qwen25math_disagreements.jsonl"
    return {(row["problem_idx"], row["sample_idx"]) for row in map(json.loads, path.read_text().splitlines())}


@pytest.fixture(scope="module")
def qwen_tokenizer() -> str:
    return str(shared_path("tokenizers", "qwen2.5"))


def test_compute_score_batch_agrees_with_the_publisher_labels(generations, disagreements):
    from budgeteval.train.verl import compute_score_batch

    scores = compute_score_batch([MATH] * len(generations), generations["response"].tolist(),
                                 generations["gold"].tolist(), workers=2)
    assert set(scores) <= {0.0, 1.0}
    for row, score in zip(generations.itertuples(), scores):
        if (row.problem_idx, row.sample_idx) in disagreements:
            assert score != float(row.repo_correct)  # the documented disagreement, in our favour
        else:
            assert score == float(row.repo_correct), (row.problem_idx, row.sample_idx)


def test_compute_score_has_verls_signature_and_matches_the_batch(generations):
    from budgeteval.train.verl import compute_score, compute_score_batch

    rows = pd.concat([generations[generations.repo_correct].head(2), generations[~generations.repo_correct].head(2)])
    batch = compute_score_batch([MATH] * 4, rows["response"].tolist(), rows["gold"].tolist(), workers=1)
    # verl's reward managers call with keywords, plus reward_kwargs and extras of their own.
    single = [compute_score(data_source=MATH, solution_str=response, ground_truth=gold, extra_info={"index": 0},
                            sandbox_fusion_url=None)
              for response, gold in zip(rows["response"], rows["gold"])]
    assert single == batch == [1.0, 1.0, 0.0, 0.0]
    # data source -> scorer: a budgeteval task name, verl's example names, or an explicit scorer
    assert compute_score("math500", "\\boxed{4}", "4") == 1.0
    assert compute_score("openai/gsm8k", "so #### 18", "#### 18") == 1.0
    assert compute_score("my_source", "\\boxed{4}", "4", scorer="math") == 1.0
    with pytest.raises(UserError, match="No budgeteval scorer is known for data source 'my_source'"):
        compute_score("my_source", "\\boxed{4}", "4")
    # a thinking answer is read after the marker; without it the response is unfinished
    assert compute_score("math500", "<think>maybe \\boxed{5}</think> \\boxed{4}", "4", think_end="</think>") == 1.0
    assert compute_score("math500", "<think>still \\boxed{4}", "4", think_end="</think>") == 0.0


def test_reward_batch_length_rewards_and_masks(generations, qwen_tokenizer):
    from transformers import AutoTokenizer

    from budgeteval.train.rewards import kimi_length_rewards
    from budgeteval.train.verl import compute_score_batch, reward_batch

    rows = generations[generations.problem_idx.isin([0, 1])]
    responses, golds = rows["response"].tolist(), rows["gold"].tolist()
    infos = [{"index": int(pid), "split": "test"} for pid in rows["problem_idx"]]
    correct = compute_score_batch([MATH] * len(rows), responses, golds, workers=1)
    tokenizer = AutoTokenizer.from_pretrained(qwen_tokenizer)
    lengths = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in responses]

    results = reward_batch([MATH] * len(rows), responses, golds, infos, reward="kimi", tokenizer=qwen_tokenizer,
                           workers=1)
    expected = []
    for pid in (0, 1):
        members = [i for i, info in enumerate(infos) if info["index"] == pid]
        expected += kimi_length_rewards([bool(correct[i]) for i in members], [lengths[i] for i in members])
    assert [r["score"] for r in results] == pytest.approx(expected)
    assert [r["acc"] for r in results] == correct

    target = sorted(lengths)[len(lengths) // 2]
    masked = reward_batch([MATH] * len(rows), responses, golds, infos, reward="-L&C", tokenizer=qwen_tokenizer,
                          target_length=target, workers=1)
    for result, is_correct, length in zip(masked, correct, lengths):
        long_correct = is_correct and length > target
        assert result["kept"] == (0.0 if long_correct else 1.0)
        assert result["score"] == (1.0 if is_correct and length <= target else 0.0)
    with pytest.raises(UserError, match="tokenizer"):
        reward_batch([MATH], responses[:1], golds[:1], reward="kimi")
    with pytest.raises(UserError, match="extra_info\\['index'\\]"):
        reward_batch([MATH], responses[:1], golds[:1], [{}], reward="kimi", tokenizer=qwen_tokenizer)


# --- budgeteval watch -----------------------------------------------------------------------------


def write_dump(folder: Path, step: int, rows: pd.DataFrame, complete: bool = True) -> Path:
    """One validation dump the way verl writes it (RayPPOTrainer._dump_generations)."""
    lines = [json.dumps({"input": f"user\n{row.question}\nassistant\n", "output": row.response, "gts": row.gold,
                         "score": float(row.repo_correct), "step": step, "acc": float(row.repo_correct)},
                        ensure_ascii=False) for row in rows.itertuples()]
    path = folder / f"{step}.jsonl"
    path.write_text("\n".join(lines) + ("\n" if complete else ""), encoding="utf-8")
    return path


@pytest.mark.slow
def test_watch_scores_each_validation_step(generations, disagreements, qwen_tokenizer, tmp_path):
    from budgeteval.report.steps import read_step_metrics

    dumps, out = tmp_path / "val", tmp_path / "watch"
    dumps.mkdir()
    problems = [0, 1, 2, 3]
    assert not {(p, s) for p, s in disagreements if p in problems}
    early = generations[generations.problem_idx.isin(problems) & (generations.sample_idx < 2)]
    late = generations[generations.problem_idx.isin(problems) & (generations.sample_idx >= 6)]
    write_dump(dumps, 10, early)
    write_dump(dumps, 20, late)
    write_dump(dumps, 30, late, complete=False)  # verl is still writing this one
    (dumps / "notes.txt").write_text("not a dump")
    command = ["watch", str(dumps), "--task", "math500", "--tokenizer", qwen_tokenizer, "--out", str(out),
               "--budgets", "128,4096", "--max-tokens", "4096", "--workers", "2", "--once", "--quiet"]

    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0, result.output
    table = read_step_metrics(out)
    assert sorted(table["step"].unique()) == [10, 20]
    assert sorted(table["budget"].unique()) == [128, 4096]
    for step, rows in ((10, early), (20, late)):
        cell = table[(table.step == step) & (table.budget == 4096)]
        mean_at_2 = cell[(cell.metric == "mean") & (cell.k == 2)]["value"].item()
        assert mean_at_2 == pytest.approx(rows.groupby("problem_idx")["repo_correct"].mean().mean())
        assert cell[cell.metric == "truncation_rate"]["value"].item() == 0.0
        short = table[(table.step == step) & (table.budget == 128) & (table.metric == "truncation_rate")]
        assert short["value"].item() > 0.5  # these solutions run to a few hundred tokens
    assert (out / "steps" / "step-00000010" / "scores.parquet").is_file()
    state = json.loads((out / "watch.json").read_text())
    assert sorted(state) == ["10", "20"]

    # Nothing new: a second pass scores nothing and leaves the table's bytes alone.
    before = (out / "metrics_by_step.csv").read_bytes()
    assert CliRunner().invoke(main, command).exit_code == 0
    assert (out / "metrics_by_step.csv").read_bytes() == before

    # verl finishes step 30 and rewrites step 10 (a resumed run validating again): both are scored.
    write_dump(dumps, 30, late)
    write_dump(dumps, 10, late)
    result = CliRunner().invoke(main, command[:-1])
    assert result.exit_code == 0, result.output
    assert "step 30:" in result.output and "step 10:" in result.output and "step 20:" not in result.output
    table = read_step_metrics(out)
    assert sorted(table["step"].unique()) == [10, 20, 30]
    step10 = table[table.step == 10].drop(columns="step").reset_index(drop=True)
    step20 = table[table.step == 20].drop(columns="step").reset_index(drop=True)
    pd.testing.assert_frame_equal(step10, step20)

    # on_step (what `watch --log` sends to a tracker) gets each newly scored step's metrics, once.
    from budgeteval.train.watch import WatchConfig, process_new_steps

    seen = []
    write_dump(dumps, 40, early)
    config = WatchConfig(folder=dumps, out=out, task="math500", tokenizer=qwen_tokenizer, budgets=(128, 4096),
                         max_tokens=4096, workers=2)
    assert process_new_steps(config, on_step=lambda step, metrics: seen.append((step, sorted(metrics["budget"].unique())))) \
        == [40]
    assert seen == [(40, [128, 4096])]


def test_watch_refuses_dumps_without_ground_truth(generations, qwen_tokenizer, tmp_path):
    dumps = tmp_path / "val"
    dumps.mkdir()
    (dumps / "5.jsonl").write_text(json.dumps({"input": "q", "output": "a", "score": 0.0, "step": 5}) + "\n")
    result = CliRunner().invoke(main, ["watch", str(dumps), "--task", "math500", "--tokenizer", qwen_tokenizer,
                                       "--out", str(tmp_path / "w"), "--once"])
    assert result.exit_code == 2
    assert "no 'gts' field" in result.output
    result = CliRunner().invoke(main, ["watch", str(tmp_path / "missing"), "--task", "math500", "--tokenizer",
                                       qwen_tokenizer, "--out", str(tmp_path / "w"), "--once"])
    assert result.exit_code == 2 and "validation_data_dir" in result.output
