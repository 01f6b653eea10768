"""Tests for budgeteval.analysis.efficiency, budgeteval.analysis.tables and `budgeteval analyze`.

Hand-computed case tables (tests/cases/analysis_*.jsonl) for the per-problem profile and the
first-correct positions (token-exact, on stored ids built segment by segment with a real
tokenizer), hand-computed buckets, outcome efficiency and an early-exit sweep whose answer settles
at a known probe; and, on real Qwen2.5-Math outputs, the analysis against an independent
re-computation from scores.parquet.
"""

import dataclasses
import json
import math
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import forced_sweep, read_cases, shared_path
from synthetic_runs import RUN_A, RUN_B, write_run

from budgeteval.analysis import efficiency
from budgeteval.analysis.tables import analyze_runs
from budgeteval.cli import main
from budgeteval.errors import UserError
from budgeteval.report.runs import load_run

pytestmark = [pytest.mark.shared]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# --- 1. profile ---------------------------------------------------------------------------------

PROFILE_CASES = read_cases("analysis_profile.jsonl")


@pytest.fixture(scope="module")
def profile_run(tmp_path_factory):
    cells = {}
    for index, case in enumerate(PROFILE_CASES):
        for budget, correct in case["correct"].items():
            cells.setdefault(int(budget), {})[f"p{index}"] = [(bool(c), 50) for c in correct]
    return load_run(write_run(tmp_path_factory.mktemp("profile") / "run", "org/profile", cells, bootstrap=0))


@pytest.mark.parametrize("index", range(len(PROFILE_CASES)), ids=[c["name"] for c in PROFILE_CASES])
def test_profile_case_table(profile_run, index):
    case = PROFILE_CASES[index]
    rows = profile_run.profile[profile_run.profile["problem_id"] == f"p{index}"].sort_values("budget")
    assert rows["pass_rate"].tolist() == pytest.approx(case["pass_rate"])
    solved_from = rows["solved_from"].iloc[0]
    assert (None if pd.isna(solved_from) else int(solved_from)) == case["solved_from"]
    assert bool(rows["lost"].iloc[0]) == case["lost"]


def test_gains_and_losses_by_hand(tmp_path):
    # RUN_A: p1 solved (1/2) at every budget, p2 from 2k. RUN_B: p1 always, p2 from 2k (2/2).
    # A third run solving only p2, at every budget: vs A it gains p2 at 1k and loses p1 everywhere.
    a = load_run(write_run(tmp_path / "a", "org/a", RUN_A, bootstrap=0))
    b = load_run(write_run(tmp_path / "b", "org/b", RUN_B, bootstrap=0))
    flip = {budget: {"p1": [(False, 9), (False, 9)], "p2": [(True, 9), (True, 9)]} for budget in RUN_A}
    c = load_run(write_run(tmp_path / "c", "org/c", flip, bootstrap=0))
    table = efficiency.gains_and_losses([a, b, c]).set_index(["run", "budget"])
    assert table.loc[("b", 1024), ["gained", "lost"]].tolist() == [0, 0]
    assert table.loc[("c", 1024), ["gained", "lost", "net", "gained_ids", "lost_ids"]].tolist() == [1, 1, 0, "p2", "p1"]
    assert table.loc[("c", 4096), ["gained", "lost", "gained_ids", "lost_ids"]].tolist() == [0, 1, "", "p1"]
    assert set(table.index.get_level_values("run")) == {"b", "c"}


# --- 2. buckets ---------------------------------------------------------------------------------


def test_difficulty_buckets_come_from_the_baseline_only(bucket_runs):
    base, ours = bucket_runs
    buckets = efficiency.difficulty_buckets(base).set_index("problem_id")["bucket"].astype(str).to_dict()
    assert buckets == {"q1": "easy (0.5, 1]", "q2": "easy (0.5, 1]", "q3": "hard [0, 0.5]", "q4": "hard [0, 0.5]",
                       "q5": "hard [0, 0.5]"}
    fine = efficiency.difficulty_buckets(base, efficiency.parse_bucket_edges("0,0.25,0.5,0.75,1"))
    assert fine.set_index("problem_id")["bucket"].astype(str).to_dict() == {
        "q1": "(0.75, 1]", "q2": "(0.5, 0.75]", "q3": "(0.25, 0.5]", "q4": "[0, 0.25]", "q5": "[0, 0.25]"}
    # Swapping the baseline re-buckets on the other run: everything is easy for `ours`.
    swapped = efficiency.breakdown([base, ours], baseline="ours", groups=False)
    assert set(swapped["bucket"]) == {"easy (0.5, 1]"}


def test_breakdown_numbers_by_hand(bucket_runs):
    table = efficiency.breakdown(bucket_runs).set_index(["grouping", "bucket", "budget", "run"])
    # hard at 400, baseline: q3 2/4, q4 1/4, q5 0/4 -> accuracy 0.25; lengths 100..130 -> 115; write_run marks a
    # sample finished when it is correct or shorter than the budget (all are): truncation 0.
    hard = table.loc[("difficulty", "hard [0, 0.5]", 400, "base")]
    assert [hard.num_problems, hard.accuracy, hard.length, hard.truncation] == pytest.approx([3, 0.25, 115.0, 0.0])
    ours = table.loc[("difficulty", "hard [0, 0.5]", 400, "ours")]
    assert [ours.accuracy, ours.accuracy_delta, ours.length_change] == pytest.approx([1.0, 0.75, 50 / 115 - 1])
    easy_200 = table.loc[("difficulty", "easy (0.5, 1]", 200, "base")]  # q1 3/4, q2 2/4
    assert easy_200.accuracy == pytest.approx(0.625)
    level2 = table.loc[("level", "L2", 400, "base")]  # the declared group: q3, q4, q5
    assert [level2.num_problems, level2.accuracy] == pytest.approx([3, 0.25])
    assert math.isnan(table.loc[("level", "L1", 400, "base"), "accuracy_delta"])


def test_bucket_edges_are_checked():
    for text in ("0.5,1", "0,0.5", "0,0.6,0.5,1", "0,a,1"):
        with pytest.raises(UserError):
            efficiency.parse_bucket_edges(text)


# --- 3. first-correct positions -----------------------------------------------------------------

TRACE_CASES = read_cases("analysis_first_correct.jsonl")


@pytest.fixture(scope="module")
def trace_run(tmp_path_factory):
    """A run whose stored ids are the cases' segments encoded one by one (plus EOS), scored for real."""
    from budgeteval.generation.tokenizer import load_tokenizer
    from budgeteval.ingest.generations import import_frame
    from budgeteval.rundir.store import GenerationRecord, read_task, task_dir, write_shard
    from budgeteval.scoring.evaluate import evaluate_run

    tokenizer_path = shared_path("tokenizers", "qwen3")
    tokenizer = load_tokenizer(str(tokenizer_path))
    frame = pd.DataFrame({"problem_id": [f"c{i}" for i in range(len(TRACE_CASES))], "sample_idx": 0,
                          "response": ["".join(c["segments"]) for c in TRACE_CASES],
                          "reference": [c["reference"] for c in TRACE_CASES], "question": ""})
    out = tmp_path_factory.mktemp("trace") / "run"
    import_frame(frame, Path("cases.jsonl"), "math500", str(tokenizer_path), out, {}, [4096], think_end="</think>")
    stored = read_task(out, "math500").to_pylist()
    for path in task_dir(out, "math500").glob("part-*.parquet"):
        path.unlink()
    expected, records = {}, []
    for row, case in zip(stored, TRACE_CASES):
        pieces = [tokenizer(segment, add_special_tokens=False)["input_ids"] for segment in case["segments"]]
        ids = [token for piece in pieces for token in piece] + [tokenizer.eos_token_id]
        segment = case["first_correct_segment"]
        expected[row["problem_id"]] = (None if segment is None else sum(len(p) for p in pieces[:segment + 1]), len(ids))
        records.append(dataclasses.replace(GenerationRecord(**row), token_ids=tuple(ids), finish_reason="stop"))
    write_shard(out, "math500", records)
    evaluate_run(out, budgets=[4096], workers=1, progress=False, bootstrap=0)
    return load_run(out), expected


def test_first_correct_positions_case_table(trace_run):
    run, expected = trace_run
    positions = efficiency.first_correct_positions(run, workers=1).set_index("problem_id")
    for index, case in enumerate(TRACE_CASES):
        row = positions.loc[f"c{index}"]
        position, length = expected[f"c{index}"]
        assert bool(row.correct) == case["correct"], case["name"]
        assert row.num_candidates == case["num_candidates"], case["name"]
        assert row.num_tokens == length, case["name"]
        assert (None if pd.isna(row.first_correct_tokens) else int(row.first_correct_tokens)) == position, case["name"]
        assert (None if pd.isna(row.first_correct_kind) else row.first_correct_kind) == case["kind"], case["name"]
        if position is not None:
            assert row.tokens_after_first_correct == length - position
            assert row.efficiency == pytest.approx(position / length)
    summary = efficiency.trace_summary(positions.reset_index()).iloc[0]
    # ξ_O by hand: correct cases contribute T̂/T, the others 0, over all N responses.
    ratios = [expected[f"c{i}"][0] / expected[f"c{i}"][1] if c["correct"] else 0.0 for i, c in enumerate(TRACE_CASES)]
    assert summary.outcome_efficiency == pytest.approx(sum(ratios) / len(ratios))
    assert summary.correct_efficiency == pytest.approx(sum(ratios) / sum(c["correct"] for c in TRACE_CASES))


def test_token_positions_are_exact_across_multibyte_characters():
    from budgeteval.generation.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(str(shared_path("tokenizers", "qwen2.5")))
    pieces = [tokenizer("Größe ≈ 数学 ", add_special_tokens=False)["input_ids"],
              tokenizer("\\boxed{π}", add_special_tokens=False)["input_ids"],
              tokenizer(" 🙂 done", add_special_tokens=False)["input_ids"]]
    ids = [token for piece in pieces for token in piece]
    text = tokenizer.decode(ids, skip_special_tokens=True)
    candidate = efficiency.answer_candidates(text)[0]
    assert candidate.text == "\\boxed{π}"
    assert efficiency.token_end_positions(tokenizer, ids, text, [candidate.end]) == [len(pieces[0]) + len(pieces[1])]


def test_outcome_efficiency_by_hand():
    # Chen et al. 2024: (1/N) Σ σ_i T̂_i / T_i; here (50/100 + 0 + 30/30) / 3.
    assert efficiency.outcome_efficiency([True, False, True], [50, 10, 30], [100, 40, 30]) == pytest.approx(0.5)
    assert math.isnan(efficiency.outcome_efficiency([], [], []))


# --- 4. early exit ------------------------------------------------------------------------------


def test_early_exit_stops_where_the_answers_agree(sweep_run):
    exits = efficiency.early_exit(sweep_run).set_index(["sample_idx", "window"])
    assert exits.loc[(0, 2), ["stop_budget", "reason", "tokens", "probe_tokens", "correct"]].tolist() == \
        [400, "agreed", 410, 30, True]
    assert exits.loc[(0, 3), ["stop_budget", "reason", "tokens", "probe_tokens"]].tolist() == [500, "agreed", 510, 40]
    assert exits.loc[(0, 4), ["stop_budget", "reason"]].tolist() == [500, "largest"]
    assert exits.loc[(1, 2), ["stop_budget", "reason", "tokens", "probe_tokens", "correct"]].tolist() == \
        [200, "agreed", 210, 10, False]
    assert exits.loc[(1, 3), ["stop_budget", "reason", "tokens", "probe_tokens", "correct"]].tolist() == \
        [300, "finished", 250, 20, True]
    summary = efficiency.early_exit_summary(exits.reset_index()).set_index("policy")
    full_tokens = (510 + 250) / 2
    assert summary.loc["full", ["accuracy", "tokens"]].tolist() == pytest.approx([1.0, full_tokens])
    m2 = summary.loc["agree 2"]
    assert [m2.accuracy, m2.tokens, m2.probe_tokens, m2.total_tokens, m2.accuracy_delta, m2.stopped_early] == \
        pytest.approx([0.5, 310, 20, 330, -0.5, 1.0])
    assert m2.saving == pytest.approx(1 - 330 / full_tokens)
    m3 = summary.loc["agree 3"]
    assert [m3.accuracy, m3.total_tokens, m3.stopped_early] == pytest.approx([1.0, 410, 0.5])
    assert m3.saving == pytest.approx(1 - 410 / full_tokens)  # probing costs more than it saves here


def test_early_exit_needs_forced_scores(bucket_runs):
    with pytest.raises(UserError, match="forced"):
        efficiency.early_exit(bucket_runs[0])


# --- the report and the CLI ---------------------------------------------------------------------


def test_analyze_cli_tables(bucket_runs, sweep_run):
    base, ours = bucket_runs
    result = invoke("analyze", base.path, ours.path, "--no-trace")
    assert result.exit_code == 0, result.output
    text = result.output
    assert "## Per-problem budget profile" in text and "| q3 | 1/4 | 2/4 | 400 |  |" in text
    assert "| 200 | cutoff | ours | 3 | 0 | +3 | q3,q4,q5 | — |" in text  # at 200 the baseline solves only q1 (3/4), q2 (2/4)
    assert "pass rate of the baseline base alone" in text
    assert "| hard [0, 0.5] | 400 | ours | 3 | 100.0 (+75.0) | 50 (↓56.5%) | 0.0 (+0.0) |" in text
    csv = invoke("analyze", base.path, ours.path, "--format", "csv", "--table", "buckets")
    assert csv.exit_code == 0, csv.output
    assert csv.output.splitlines()[0].startswith("grouping,bucket,task,mode,budget,run")
    latex = invoke("analyze", base.path, ours.path, "--format", "latex", "--table", "gains")
    assert latex.exit_code == 0 and r"\begin{tabular}" in latex.output and r"\toprule" in latex.output
    exits = invoke("analyze", sweep_run.path, "--early-exit", "--table", "early_exit")
    assert exits.exit_code == 0, exits.output
    assert "| sweep | t | agree 2 | 2 | 50.0 (-50.0) | 310 | 20 | 330 |" in exits.output


@pytest.mark.parametrize("args, message", [
    (["--format", "csv"], "CSV holds one table"),
    (["--buckets", "0,2"], "--buckets"),
    (["--table", "nope"], "Unknown analysis table"),
    (["--early-exit"], "forced"),
    (["--agree", "0"], "--agree"),
])
def test_analyze_cli_errors(bucket_runs, args, message):
    result = invoke("analyze", bucket_runs[0].path, "--no-trace", *args)
    assert result.exit_code == 2 and message in result.output, result.output


# --- real outputs: the analysis equals a re-computation from scores.parquet ---------------------


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    from budgeteval.ingest.generations import import_generations
    from budgeteval.scoring.evaluate import evaluate_run

    source = shared_path("generations", "qwen25math_math_cot_100.jsonl")
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
    subset = [row for row in rows if row["problem_idx"] < 12 and row["sample_idx"] < 4]
    root = tmp_path_factory.mktemp("real")
    path = root / "subset.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in subset), encoding="utf-8")
    fields = {"problem_id": "problem_idx", "sample_idx": "sample_idx", "response": "response", "reference": "gold",
              "question": "question"}
    out = import_generations(path, "math500", str(shared_path("tokenizers", "qwen2.5")), root / "run", fields,
                             [256, 512, 2048])
    evaluate_run(out, workers=2, progress=False, bootstrap=0)
    return load_run(out, "qwen")


def test_real_outputs_end_to_end_against_scores_parquet(real_run):
    scores = pq.read_table(real_run.path / "scores.parquet").to_pylist()
    result = analyze_runs([real_run], workers=2)
    # Profile: pass rate, solved_from and lost recomputed with plain loops.
    by_problem: dict = {}
    for row in scores:
        by_problem.setdefault(row["problem_id"], {}).setdefault(row["budget"], []).append(row["correct"])
    budgets = sorted({row["budget"] for row in scores})
    profile = result.profile.set_index(["problem_id", "budget"])
    for problem_id, cells in by_problem.items():
        solved = [sum(cells[b]) / len(cells[b]) >= 0.5 for b in budgets]
        expected_from = next((b for i, b in enumerate(budgets) if all(solved[i:])), None)
        for budget in budgets:
            assert profile.loc[(problem_id, budget), "pass_rate"] == pytest.approx(sum(cells[budget]) / len(cells[budget]))
        got = profile.loc[(problem_id, budgets[0]), "solved_from"]
        assert (None if pd.isna(got) else int(got)) == expected_from
        assert bool(profile.loc[(problem_id, budgets[0]), "lost"]) == (any(solved[:-1]) and not solved[-1])
    # Buckets: hard / easy by the pass rate at 2048, accuracy, length and truncation per bucket and budget.
    hard = {p for p, cells in by_problem.items() if sum(cells[budgets[-1]]) / len(cells[budgets[-1]]) <= 0.5}
    table = result.buckets[result.buckets["grouping"] == "difficulty"].set_index(["bucket", "budget"])
    for bucket, members in (("hard [0, 0.5]", hard), ("easy (0.5, 1]", set(by_problem) - hard)):
        for budget in budgets:
            if not members:
                continue
            rows = [r for r in scores if r["problem_id"] in members and r["budget"] == budget]
            accuracy = sum(sum(by_problem[p][budget]) / len(by_problem[p][budget]) for p in members) / len(members)
            assert table.loc[(bucket, budget), "accuracy"] == pytest.approx(accuracy)
            assert table.loc[(bucket, budget), "length"] == pytest.approx(sum(r["num_tokens"] for r in rows) / len(rows))
            unknown = any(r["finished"] is None or pd.isna(r["finished"]) for r in rows)  # an import's unknown finish
            if unknown:  # unknown as in metrics.csv (n/a)
                assert pd.isna(table.loc[(bucket, budget), "truncation"])
            else:
                assert table.loc[(bucket, budget), "truncation"] == pytest.approx(
                    sum(not r["finished"] for r in rows) / len(rows))
    # Trace: accuracy equals scores.parquet at 2048, and each first-correct position is where the answer completes.
    trace = result.trace.iloc[0]
    at_largest = [r for r in scores if r["budget"] == budgets[-1]]
    assert trace.accuracy == pytest.approx(sum(r["correct"] for r in at_largest) / len(at_largest))
    from budgeteval.generation.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(str(real_run.path / "tokenizer"))
    positions = result.positions.dropna(subset=["first_correct_tokens"])
    assert len(positions) >= 0.8 * len(at_largest)
    generations = real_run.generations.set_index(["problem_id", "sample_idx"])
    for row in positions.head(8).itertuples(index=False):
        ids = list(generations.loc[(row.problem_id, row.sample_idx), "token_ids"])
        position = int(row.first_correct_tokens)
        assert position <= len(ids)
        before = tokenizer.decode(ids[:position - 1], skip_special_tokens=True)
        upto = tokenizer.decode(ids[:position], skip_special_tokens=True)
        assert len(efficiency.answer_candidates(upto)) > len(efficiency.answer_candidates(before))
    ratios = [r.first_correct_tokens / r.num_tokens if r.correct else 0.0
              for r in result.positions.fillna({"first_correct_tokens": 0}).itertuples(index=False)]
    assert trace.outcome_efficiency == pytest.approx(sum(ratios) / len(ratios))


def test_after_first_correct_figure_splits_correct_and_incorrect(trace_run):
    from matplotlib.patches import Polygon

    from budgeteval.plots.analysis import after_first_correct_figure

    run, expected = trace_run
    figure = after_first_correct_figure([run])
    ax = figure.axes[0]
    steps = [patch for patch in ax.patches if isinstance(patch, Polygon)]
    assert [patch.get_label() for patch in steps] == [f"{run.label} (correct)", f"{run.label} (incorrect)"]
    assert ax.get_xlabel() == "tokens after the first correct answer"
    # Correct responses with a first correct answer: cases 0, 3, 4; incorrect with one: case 5 (changed its mind).
    after = {i: expected[f"c{i}"][1] - expected[f"c{i}"][0] for i in (0, 3, 4, 5)}
    assert ax.get_xlim()[1] >= max(after.values())


def test_trace_summary_by_hand_with_answer_sources():
    # Three responses of 10 tokens: correct with a box at 5, correct from the fallback (T̂ = T), wrong without one.
    positions = pd.DataFrame({
        "task": "t", "problem_id": ["a", "b", "c"], "sample_idx": 0, "budget": 10, "num_tokens": 10,
        "correct": [True, True, False], "num_candidates": [1, 0, 0],
        "first_correct_tokens": pd.array([5, 10, None], dtype="Int64"), "first_correct_kind": ["boxed", None, None],
        "tokens_after_first_correct": pd.array([5, 0, None], dtype="Int64"), "efficiency": [0.5, 1.0, None],
        "answer_source": ["boxed", "fallback", "none"]})
    row = efficiency.trace_summary(positions).iloc[0]
    assert [row.accuracy, row.with_correct_answer, row.tokens_to_first_correct, row.tokens_after_first_correct,
            row.after_share, row.outcome_efficiency, row.correct_efficiency, row.correct_from_fallback] == \
        pytest.approx([2 / 3, 2 / 3, 7.5, 2.5, 5 / 20, (0.5 + 1.0) / 3, 0.75, 0.5])
    assert "correct_from_fallback" not in efficiency.trace_summary(positions.drop(columns="answer_source")).columns


def test_early_exit_probe_cost_comes_from_the_stored_continuations(tmp_path):
    """With continuations/ stored, a probe costs its forcing ids + answer ids (here 3 + 10), not num_tokens - B."""
    from budgeteval.rundir.store import CONTINUATIONS, ContinuationRecord, write_shard

    run_dir = write_run(tmp_path / "run", "org/sweep", {}, extra_scores=forced_sweep(), bootstrap=0)
    sweep = forced_sweep()
    records = [ContinuationRecord(task="t", problem_id="p1", sample_idx=int(r.sample_idx), budget=int(r.budget),
                                  continued=not r.finished, force_token_ids=(1, 2, 3) if not r.finished else (),
                                  force_string="</think>", token_ids=tuple(range(10)) if not r.finished else (),
                                  text="", finish_reason="stop", seed=0, max_tokens=16)
               for r in sweep.itertuples(index=False)]
    for budget in sorted(sweep["budget"].unique()):
        write_shard(run_dir, "t", [r for r in records if r.budget == budget], kind=CONTINUATIONS)
    exits = efficiency.early_exit(load_run(run_dir)).set_index(["sample_idx", "window"])
    assert exits.loc[(0, 2), "probe_tokens"] == 3 * 13  # probes at 100, 200, 300 before stopping at 400
    assert exits.loc[(1, 3), "probe_tokens"] == 2 * 13
