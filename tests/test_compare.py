"""Tests for `budgeteval compare` and budgeteval.report.compare: every number checked against a hand computation.

The runs (tests/synthetic_runs.py) have 2 problems x 2 samples, k = 2:

    budget  run  p1 correct / tokens      p2 correct / tokens      mean@2  pass@2  length
    1024    A    T 100, F 200             F 300, F 400             0.25    0.5     250
    1024    B    T 50,  T 50              F 100, F 200             0.50    0.5     100
    1024    C    F 10,  F 10              F 10,  F 10              0.00    0.0     10
    2048    A    T 100, F 200             T 500, F 600             0.50    1.0     350
    2048    B    T 50,  T 50              T 100, T 200             1.00    1.0     100
    4096    A    T 100, T 200             T 1000, F 1100           0.75    1.0     600
    4096    B    T 50,  T 50              T 150, T 350             1.00    1.0     150
    4096    C    T 20,  F 20              F 20,  F 20              0.25    0.5     20

(pass@2 of a problem with n = 2 is 1 when any sample is right.)
"""

import io
import math

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import read_cases
from synthetic_runs import RUN_A, RUN_B, hand_checked_runs, write_run

from budgeteval.cli import main
from budgeteval.errors import UserError
from budgeteval.report.compare import (
    accuracy_efficiency_score,
    accuracy_per_computation_unit,
    compare_runs,
    curve_area,
    ock_score,
    parse_params,
    reach_budget,
)
from budgeteval.report.runs import load_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return hand_checked_runs(tmp_path_factory.mktemp("compare"))


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


# --- the estimators --------------------------------------------------------------------------------


def test_aes_follows_o1_pruner_with_gain_and_loss_branches():
    # B vs A at 1024: dLength = (250-100)/250 = 0.6, dAcc = (0.5-0.25)/0.25 = 1 -> 0.6 + 3*1.
    assert accuracy_efficiency_score(0.5, 0.25, 100, 250) == pytest.approx(3.6)
    # C vs A at 4096: dLength = 580/600, dAcc = (0.25-0.75)/0.75 = -2/3 -> 580/600 - 5*2/3.
    assert accuracy_efficiency_score(0.25, 0.75, 20, 600) == pytest.approx(580 / 600 - 10 / 3)
    # Longer and no better: only the (negative) length term.
    assert accuracy_efficiency_score(0.5, 0.5, 150, 100) == pytest.approx(-0.5)
    assert accuracy_efficiency_score(0.5, 0.5, 100, 100) == 0.0
    # The weights are arguments.
    assert accuracy_efficiency_score(0.5, 0.25, 100, 250, alpha=2, beta=1) == pytest.approx(2 * 0.6 + 1)
    for undefined in [(0.5, 0.0, 100, 250), (0.5, 0.25, 100, 0), (math.nan, 0.25, 100, 250)]:
        assert math.isnan(accuracy_efficiency_score(*undefined))


def test_curve_area_is_the_mean_of_the_curve_over_log2_budgets():
    assert curve_area([1024, 2048, 4096], [0.25, 0.5, 0.75]) == pytest.approx(0.5)
    # log2 budgets 7, 8, 10: (0+1)/2 * 1 + (1+1)/2 * 2 = 2.5 over a width of 3.
    assert curve_area([128, 256, 1024], [0.0, 1.0, 1.0]) == pytest.approx(2.5 / 3)
    assert curve_area([1024, 128, 256], [1.0, 0.0, 1.0]) == pytest.approx(2.5 / 3)  # order does not matter
    assert curve_area([2048, 32768], [1.0, 1.0]) == 1.0
    assert curve_area([2048, 32768], [0.0, 0.0]) == 0.0
    assert math.isnan(curve_area([2048], [0.5]))
    assert math.isnan(curve_area([2048, 4096], [0.5, math.nan]))


def test_reach_budget_is_the_first_budget_with_95_percent_of_the_best():
    assert reach_budget([128, 256, 512], [0.5, 0.95, 1.0]) == 256
    assert reach_budget([128, 256, 512], [0.5, 0.94, 1.0]) == 512
    assert reach_budget([512, 128, 256], [0.8, 0.2, 0.76]) == 256  # exactly 95% of 0.8 counts
    assert reach_budget([128, 256], [0.9, 0.5]) == 128  # the best need not be the largest budget
    assert reach_budget([128, 256], [0.5, 1.0], fraction=0.5) == 128
    assert reach_budget([128, 256], [0.0, 0.0]) is None
    assert reach_budget([], []) is None


# --- the table -------------------------------------------------------------------------------------


def test_csv_numbers_equal_the_hand_computation(runs):
    a, b, c = runs
    result = invoke("compare", a, b, c, "--baseline", a, "--format", "csv")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.output))
    rows = {(r["run"], r["budget"]): r for r in table.to_dict("records")}
    assert list(table["run"]) == ["model-a", "model-b", "model-c", "model-a", "model-b", "model-a", "model-b", "model-c"]
    assert set(table["k"]) == {2}
    expected = {
        # (run, budget): mean, pass, length, mean delta, pass delta, length change, AES
        ("model-a", 1024): (0.25, 0.5, 250, None, None, None, None),
        ("model-b", 1024): (0.5, 0.5, 100, 0.25, 0.0, -0.6, 0.6 + 3 * 1.0),
        ("model-c", 1024): (0.0, 0.0, 10, -0.25, -0.5, -0.96, 0.96 - 5 * 1.0),
        ("model-a", 2048): (0.5, 1.0, 350, None, None, None, None),
        ("model-b", 2048): (1.0, 1.0, 100, 0.5, 0.0, -250 / 350, 250 / 350 + 3 * 1.0),
        ("model-a", 4096): (0.75, 1.0, 600, None, None, None, None),
        ("model-b", 4096): (1.0, 1.0, 150, 0.25, 0.0, -0.75, 0.75 + 3 * (0.25 / 0.75)),
        ("model-c", 4096): (0.25, 0.5, 20, -0.5, -0.5, -580 / 600, 580 / 600 - 5 * (0.5 / 0.75)),
    }
    columns = ("mean", "pass", "length", "mean_delta", "pass_delta", "length_change", "aes")
    for key, values in expected.items():
        for column, value in zip(columns, values):
            actual = rows[key][column]
            if value is None:
                assert math.isnan(actual), (key, column)
            else:
                assert actual == pytest.approx(value, abs=1e-12), (key, column)
    assert rows[("model-a", 1024)]["baseline"] and not rows[("model-b", 1024)]["baseline"]
    # Curve summaries use the budgets every run has: C lacks 2048, so 1024 and 4096 (log2 10 and 12).
    for run, auc, auc_delta, best in [("model-a", (0.25 + 0.75) / 2, None, 0.75),
                                      ("model-b", (0.5 + 1.0) / 2, 0.25, 1.0),
                                      ("model-c", (0.0 + 0.25) / 2, -0.375, 0.25)]:
        row = rows[(run, 1024)]
        assert (row["budget_min"], row["budget_max"], row["num_budgets"]) == (1024, 4096, 2)
        assert row["auc"] == pytest.approx(auc) and row["best_mean"] == pytest.approx(best)
        assert math.isnan(row["auc_delta"]) if auc_delta is None else row["auc_delta"] == pytest.approx(auc_delta)
        assert row["reach_budget"] == 4096
    # Bootstrap intervals of mean@2 come from the runs' metrics files.
    assert rows[("model-a", 2048)]["mean_ci_low"] == 0.5 == rows[("model-a", 2048)]["mean_ci_high"]
    assert rows[("model-a", 1024)]["mean_ci_low"] == 0.0 and rows[("model-a", 1024)]["mean_ci_high"] == 0.5


def test_two_runs_use_all_their_shared_budgets(runs):
    a, b, _ = runs
    comparison = compare_runs([load_run(a), load_run(b)])
    summary = comparison.summary.set_index("run")
    # log2 budgets 10, 11, 12. A: (0.25+0.5)/2 + (0.5+0.75)/2 = 1.0 over 2; B: (0.5+1)/2 + (1+1)/2 = 1.75 over 2.
    assert summary.loc["model-a", "auc"] == pytest.approx(0.5)
    assert summary.loc["model-b", "auc"] == pytest.approx(0.875)
    assert summary.loc["model-b", "auc_delta"] == pytest.approx(0.375)
    # B reaches 95% of its best (1.0) at 2048; A reaches 0.95 * 0.75 only at 4096.
    assert summary.loc["model-b", "reach_budget"] == 2048
    assert summary.loc["model-a", "reach_budget"] == 4096


def test_markdown_cells_show_points_arrows_and_aes(runs):
    a, b, c = runs
    result = invoke("compare", f"{a}=Base", f"{b}=Ours", c, "--baseline", "Base")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Baseline: Base. mean@2 and pass@2 in percent")
    assert "| budget | mode | run | mean@2 | pass@2 | length | AES |" in lines
    assert "| 1k | cutoff | Base | 25.0 | 50.0 | 250 | — |" in lines
    assert "| 1k | cutoff | Ours | 50.0 (+25.0) | 50.0 (+0.0) | 100 (↓60.0%) | 3.60 |" in lines
    assert "| 1k | cutoff | model-c | 0.0 (-25.0) | 0.0 (-50.0) | 10 (↓96.0%) | -4.04 |" in lines
    assert "| 2k | cutoff | Ours | 100.0 (+50.0) | 100.0 (+0.0) | 100 (↓71.4%) | 3.71 |" in lines
    assert "| cutoff | Ours | 0.750 (+0.250) | 100.0 | 4k |" in lines
    assert "over 1k–4k (2 budgets)" in result.output


def test_longer_runs_show_an_up_arrow(tmp_path):
    a = write_run(tmp_path / "a", "m/a", RUN_B)
    b = write_run(tmp_path / "b", "m/b", RUN_A)
    text = compare_runs([load_run(a), load_run(b)]).format("markdown")
    # A vs B at 1024: 250 tokens vs 100 is +150%; accuracy 0.25 vs 0.5.
    assert "| 1k | cutoff | b | 25.0 (-25.0) | 50.0 (+0.0) | 250 (↑150.0%) | -4.00 |" in text


def test_latex_is_booktabs_with_escaped_labels(runs):
    a, b, _ = runs
    result = invoke("compare", a, f"{b}=ours_v2 & 50%", "--format", "latex")
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.count(r"\begin{tabular}") == 3 and r"\toprule" in text and r"\bottomrule" in text
    assert r"Budget & Model & Mean@2 & Pass@2 & Length & AES \\" in text
    assert (r" & ours\_v2 \& 50\% & 50.0\,{\scriptsize (+25.0)} & 50.0\,{\scriptsize (+0.0)} & "
            r"100\,{\scriptsize ($\downarrow$60.0\%)} & 3.60 \\") in text
    assert r"1k & model-a & 25.0 & 50.0 & 250 & -- \\" in text


def test_modes_are_compared_within_each_mode(tmp_path):
    forced_b = pd.DataFrame([
        {"task": "t", "problem_id": p, "sample_idx": i, "budget": 1024, "mode": "forced", "num_tokens": 1100,
         "finished": True, "extracted": "right", "correct": True, "timed_out": False}
        for p in ("p1", "p2") for i in range(2)])
    forced_a = forced_b.assign(correct=[True, False, False, False], num_tokens=1000)
    a = write_run(tmp_path / "a", "m/a", RUN_A, extra_scores=forced_a)
    b = write_run(tmp_path / "b", "m/b", RUN_B, extra_scores=forced_b)
    comparison = compare_runs([load_run(a), load_run(b)])
    forced = comparison.table[comparison.table["mode"] == "forced"].set_index("run")
    assert forced.loc["a", "mean"] == 0.25 and forced.loc["b", "mean"] == 1.0
    assert forced.loc["b", "mean_delta"] == 0.75 and forced.loc["b", "length_change"] == pytest.approx(0.1)
    cutoff = comparison.table[(comparison.table["mode"] == "cutoff") & (comparison.table["budget"] == 1024)]
    assert cutoff.set_index("run").loc["b", "mean_delta"] == 0.25
    markdown = comparison.format("markdown")
    assert "| 1k | forced | b | 100.0 (+75.0) | 100.0 (+50.0) | 1100 (↑10.0%) |" in markdown
    latex = comparison.format("latex")
    assert r"Budget & Mode & Model & Mean@2" in latex and "1k & forced & a" in latex
    # A single budget per forced curve: no area, but a best accuracy and the budget reaching it.
    forced_summary = comparison.summary.set_index(["mode", "run"]).loc[("forced", "b")]
    assert math.isnan(forced_summary["auc"]) and forced_summary["best_mean"] == 1.0
    assert forced_summary["reach_budget"] == 1024


def test_k_missing_from_the_metrics_file_is_computed_from_scores(tmp_path):
    a = write_run(tmp_path / "a", "m/a", RUN_A, ks=(2,))
    b = write_run(tmp_path / "b", "m/b", RUN_B, ks=(2,))
    comparison = compare_runs([load_run(a), load_run(b)], k=1)
    row = comparison.table[(comparison.table["run"] == "b") & (comparison.table["budget"] == 2048)].iloc[0]
    # k = 1: the first sample of each problem. A at 2048: p1 T, p2 T -> 1.0; B: T, T -> 1.0.
    assert row["mean"] == 1.0 and row["mean_delta"] == 0.0 and row["pass"] == 1.0
    assert row["mean_ci_low"] == 1.0  # the bootstrap settings recorded in the manifest were used
    assert compare_runs([load_run(a), load_run(b)]).k == 2


def test_user_errors(runs, tmp_path):
    a, b, c = runs
    cases = [
        (("compare", a, f"{b}=model-a"), "both labelled 'model-a'"),
        (("compare", a, b, "--baseline", "nobody"), "--baseline 'nobody' is none of the runs"),
        (("compare", a, b, "--k", "3"), "k=3 exceeds the 2 samples"),
        (("compare", a), "at least two runs"),
        (("compare", a, tmp_path / "missing"), "does not exist"),
        (("compare", a, b, "--format", "html"), "html"),
    ]
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_run_api_labels_lazy_frames_and_compare_method(runs):
    a, b, c = runs
    base = load_run(a)
    assert base.label == "model-a" and load_run(c).label == "model-c" and base.model == "org/model-a"
    assert "scores" not in vars(base)  # nothing read yet
    assert len(base.scores) == 3 * 2 * 2 and "scores" in vars(base)
    assert list(base.metrics.columns[-2:]) == ["ci_low", "ci_high"]
    assert base.with_label("Base").label == "Base" and base.with_label("Base").path == base.path
    with pytest.raises(UserError, match="no generations/"):
        _ = base.generations
    via_method = base.compare(load_run(b), load_run(c))
    via_function = compare_runs([load_run(c), load_run(b), load_run(a)], baseline="model-a")
    assert via_method.runs == ("model-a", "model-b", "model-c")
    assert via_function.runs == ("model-a", "model-c", "model-b")  # the baseline first, then the order given
    pd.testing.assert_frame_equal(
        via_method.table.sort_values(["budget", "run"]).reset_index(drop=True),
        via_function.table.sort_values(["budget", "run"]).reset_index(drop=True))


def test_same_inputs_give_the_same_bytes(runs):
    a, b, c = runs
    first = invoke("compare", a, b, c, "--format", "csv").output
    assert first == invoke("compare", a, b, c, "--format", "csv").output


def test_token_efficiency_columns_by_hand(runs):
    # RUN_A at 1k: mean@2 = (1/2 + 0) / 2 = 0.25 over mean length (100+200+300+400)/4 = 250 -> 1.0 per 1k tokens;
    # correct 100, incorrect (200+300+400)/3 = 300. RUN_B at 1k: 0.5 over (50+50+100+200)/4 = 100 -> 5.0 per 1k;
    # correct 50 (-50%), incorrect (100+200)/2 = 150 (-50%).
    a, b, _ = runs
    comparison = compare_runs([load_run(a), load_run(b)], k=2)
    table = comparison.table.set_index(["budget", "run"])
    assert table.loc[(1024, "model-a"), ["accuracy_per_1k", "length_correct", "length_incorrect"]].tolist() == \
        pytest.approx([1.0, 100.0, 300.0])
    row = table.loc[(1024, "model-b")]
    assert [row.accuracy_per_1k, row.length_correct, row.length_incorrect] == pytest.approx([5.0, 50.0, 150.0])
    assert [row.length_correct_change, row.length_incorrect_change] == pytest.approx([-0.5, -0.5])
    assert math.isnan(table.loc[(1024, "model-a"), "length_correct_change"])
    markdown = comparison.format("markdown")
    assert ("| budget | mode | run | mean@2 (%) per 1k tokens | length correct | length incorrect | OckScore | ACU |"
            in markdown)
    # OckScore 50 - 10 ln(1.01) = 49.9; no --params: ACU empty.
    assert "| 1k | cutoff | model-b | 500.0 | 50 (↓50.0%) | 150 (↓50.0%) | 49.9 | — |" in markdown
    assert "accuracy_per_1k" in comparison.format("csv").splitlines()[0]


@pytest.mark.parametrize("case", read_cases("efficiency_score_cases.jsonl"), ids=lambda case: case["rule"])
def test_efficiency_scores_from_their_papers(case):
    if case["score"] == "acu":
        value = accuracy_per_computation_unit(case["accuracy"], case["params_b"], case["tokens"])
    else:
        value = ock_score(case["accuracy"], case["tokens"])
    assert math.isnan(value) if case["value"] is None else value == pytest.approx(case["value"], rel=1e-12)


@pytest.mark.parametrize("text, billions", [("1.7B", 1.7), ("500M", 0.5), ("70b", 70.0), ("135m", 0.135)])
def test_parse_params(text, billions):
    assert parse_params(text) == pytest.approx(billions)


@pytest.mark.parametrize("text", ["1.7", "B", "-1B", "seven B", "0B", "1.7T"])
def test_parse_params_needs_a_unit(text):
    with pytest.raises(UserError, match="--params"):
        parse_params(text)


def test_acu_and_ockscore_in_compare_with_params(runs):
    # RUN_B at 1k: mean@2 0.5 over 100 mean tokens: ACU = 100 * 50 / (1.7 * 100) = 29.41; OckScore 50 - 10 ln 1.01.
    a, b, _ = runs
    result = invoke("compare", a, b, "--params", f"{b}=1.7B", "--params", "7B", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = {(r["run"], r["budget"]): r for r in pd.read_csv(io.StringIO(result.output)).to_dict("records")}
    assert rows[("model-b", 1024)]["params_b"] == 1.7 and rows[("model-a", 1024)]["params_b"] == 7
    assert rows[("model-b", 1024)]["acu"] == pytest.approx(100 * 50 / (1.7 * 100))
    assert rows[("model-a", 1024)]["acu"] == pytest.approx(100 * 25 / (7 * 250))
    assert rows[("model-b", 1024)]["ockscore"] == pytest.approx(50 - 10 * math.log(1.01))
    same = compare_runs([load_run(a), load_run(b)], params=1.7).table  # one number: every run
    assert (same["params_b"] == 1.7).all() and same["acu"].notna().all()
    bad = invoke("compare", a, b, "--params", "1.7")
    assert bad.exit_code == 2 and "write it with its unit" in bad.output
    unknown = invoke("compare", a, b, "--params", "nope=1B")
    assert unknown.exit_code == 2 and "--params 'nope' is none of the runs" in unknown.output
