"""Tests for budgeteval.scoring.metrics: pass@k against brute force, hand cases from a table, file output."""

import itertools
import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from budgeteval.errors import UserError
from budgeteval.scoring.metrics import (
    METRIC_COLUMNS,
    bootstrap_interval,
    compute_metrics,
    count_timeouts,
    metrics_to_csv,
    pass_at_k,
    read_metrics,
    resample_counts,
    standard_error,
    write_metrics,
)

CASES_PATH = Path(__file__).parent / "cases" / "metrics_cases.json"
CASE_TABLE = json.loads(CASES_PATH.read_text())
CELL_KEYS = ("task", "mode", "budget")


def scores_from_case(case: dict) -> pd.DataFrame:
    """Build the scores table of one case: its rows, plus the table's and the case's defaults."""
    defaults = {**CASE_TABLE["defaults"], **case.get("defaults", {})}
    scores = pd.DataFrame(case["rows"], columns=case["columns"])
    for column, value in defaults.items():
        if column not in scores.columns:
            scores[column] = value
    return scores


def brute_force_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """Fraction of all k-subsets of n samples (c correct) that contain a correct sample."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(samples, k))
    return Fraction(sum(any(subset) for subset in subsets), len(subsets))


def test_pass_at_k_matches_enumeration_of_all_subsets():
    for n in range(1, 11):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(float(brute_force_pass_at_k(n, c, k)), abs=1e-12), (n, c, k)


def test_pass_at_k_stays_stable_for_large_n():
    # C(200, 100) overflows floats; the product form does not.
    assert pass_at_k(200, 1, 100) == pytest.approx(0.5)
    assert pass_at_k(200, 0, 100) == 0.0
    assert pass_at_k(200, 101, 100) == 1.0


def test_pass_at_k_refuses_k_above_n():
    with pytest.raises(UserError, match=r"k=16 exceeds the 8 samples per problem"):
        pass_at_k(8, 3, 16)


def test_pass_at_k_refuses_impossible_counts():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_standard_error_is_sample_std_over_sqrt_problems():
    assert standard_error([0.0, 1.0, 1.0, 0.0]) == pytest.approx(math.sqrt(1 / 3) / 2)
    assert math.isnan(standard_error([0.5]))
    assert math.isnan(standard_error([]))


@pytest.mark.parametrize("case", CASE_TABLE["cases"], ids=[case["name"] for case in CASE_TABLE["cases"]])
def test_metrics_case_table(case):
    scores = scores_from_case(case)
    if "error" in case:
        with pytest.raises(UserError) as raised:
            compute_metrics(scores, case["ks"])
        assert case["error"] in str(raised.value)
        return

    metrics = compute_metrics(scores, case["ks"])
    if "row_count" in case:
        assert len(metrics) == case["row_count"]
    defaults = {**CASE_TABLE["defaults"], **case.get("defaults", {})}
    for expected in case["expected"]:
        keys = {key: expected.get(key, defaults.get(key)) for key in CELL_KEYS}
        match = (
            (metrics["task"] == keys["task"])
            & (metrics["mode"] == keys["mode"])
            & (metrics["budget"] == keys["budget"])
            & (metrics["metric"] == expected["metric"])
        )
        match &= metrics["k"].isna() if expected["k"] is None else (metrics["k"] == expected["k"]).fillna(False)
        rows = metrics[match]
        assert len(rows) == 1, expected
        row = rows.iloc[0]
        assert_same_number(row["value"], expected["value"], expected)
        if "stderr" in expected:
            assert_same_number(row["stderr"], expected["stderr"], expected)


def assert_same_number(actual: float, expected: float | None, context: dict) -> None:
    if expected is None:
        assert math.isnan(actual), context
    else:
        assert actual == pytest.approx(expected, abs=1e-12), context


def small_scores() -> pd.DataFrame:
    """Three problems x four samples at two budgets and two modes, with a timed-out verification."""
    rows = []
    for mode in ("cutoff", "forced"):
        for budget in (2048, 4096):
            for p, problem_id in enumerate(("p1", "p2", "p3")):
                for sample_idx in range(4):
                    correct = (p + sample_idx + budget // 2048) % 3 == 0
                    rows.append(
                        {
                            "task": "aime25",
                            "problem_id": problem_id,
                            "sample_idx": sample_idx,
                            "budget": budget,
                            "mode": mode,
                            "num_tokens": 100 * (sample_idx + 1) + p,
                            "finished": sample_idx != 3,
                            "extracted": None if sample_idx == 3 else str((p * sample_idx) % 2),
                            "correct": correct,
                            "timed_out": problem_id == "p2" and sample_idx == 0 and budget == 4096,
                        }
                    )
    return pd.DataFrame(rows)


def test_nan_answers_do_not_vote_like_none():
    scores = small_scores()
    with_nan = scores.assign(extracted=scores["extracted"].astype(object).where(scores["extracted"].notna(), math.nan))
    pd.testing.assert_frame_equal(compute_metrics(scores, [1, 4]), compute_metrics(with_nan, [1, 4]))


def test_output_has_exact_columns_one_row_per_cell_metric_and_k_in_sorted_order():
    metrics = compute_metrics(small_scores(), [4, 1, 2])
    assert tuple(metrics.columns) == METRIC_COLUMNS
    assert str(metrics["k"].dtype) == "Int64"
    assert len(metrics) == 2 * 2 * (3 * 3 + 5)
    assert not metrics.duplicated(["task", "mode", "budget", "metric", "k"]).any()
    assert metrics["k"].isna().tolist() == (~metrics["metric"].isin(["mean", "pass", "maj"])).tolist()
    resorted = metrics.sort_values(["task", "mode", "budget", "metric", "k"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(metrics, resorted)
    accuracies = metrics[metrics["metric"].isin(["mean", "pass", "maj", "truncation_rate"])]["value"]
    assert accuracies.between(0, 1).all()


def test_input_row_order_does_not_change_the_metrics():
    scores = small_scores()
    shuffled = scores.sample(frac=1, random_state=7)
    pd.testing.assert_frame_equal(compute_metrics(scores, [1, 2]), compute_metrics(shuffled, [1, 2]))


def test_missing_score_columns_are_named():
    with pytest.raises(UserError, match="num_tokens"):
        compute_metrics(small_scores().drop(columns="num_tokens"), [1])


def test_count_timeouts_per_cell():
    timeouts = count_timeouts(small_scores())
    assert list(timeouts.columns) == ["task", "mode", "budget", "timeouts"]
    assert timeouts["timeouts"].tolist() == [0, 1, 0, 1]
    without_column = count_timeouts(small_scores().drop(columns="timed_out"))
    assert without_column["timeouts"].tolist() == [0, 0, 0, 0]


def test_write_metrics_is_byte_for_byte_deterministic(tmp_path):
    scores = small_scores()
    write_metrics(compute_metrics(scores, [1, 4]), tmp_path / "a")
    write_metrics(compute_metrics(scores.sample(frac=1, random_state=3), [4, 1]), tmp_path / "b")
    for name in ("metrics.csv", "metrics.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["metrics.csv", "metrics.json"]


def test_write_metrics_replaces_old_files_and_writes_nan_as_null(tmp_path):
    (tmp_path / "metrics.json").write_text("stale")
    metrics = compute_metrics(small_scores(), [1])
    write_metrics(metrics, tmp_path)
    records = json.loads((tmp_path / "metrics.json").read_text())
    assert len(records) == len(metrics)
    assert list(records[0]) == list(METRIC_COLUMNS)
    median = next(r for r in records if r["metric"] == "length_median")
    assert median["k"] is None and median["stderr"] is None
    assert "NaN" not in (tmp_path / "metrics.json").read_text()


def test_read_metrics_round_trips_exactly(tmp_path):
    metrics = compute_metrics(small_scores(), [1, 2])
    write_metrics(metrics, tmp_path)
    pd.testing.assert_frame_equal(read_metrics(tmp_path), metrics)


def test_read_metrics_without_a_file_says_what_to_do(tmp_path):
    with pytest.raises(UserError, match="budgeteval score"):
        read_metrics(tmp_path)


# --- bootstrap confidence intervals ----------------------------------------------------------------


def test_bootstrap_is_off_by_default_and_intervals_are_empty():
    metrics = compute_metrics(small_scores(), [1])
    assert tuple(metrics.columns[:7]) == ("task", "mode", "budget", "metric", "k", "value", "stderr")
    assert metrics["ci_low"].isna().all() and metrics["ci_high"].isna().all()


def test_bootstrap_of_two_problems_spans_their_values():
    # Two problems, one always right and one always wrong: a resample's mean is 0, 1/2 or 1, each
    # extreme with probability 1/4, so the 2.5th and 97.5th percentiles of 1000 resamples are 0 and 1.
    scores = pd.DataFrame({
        "task": "t", "mode": "cutoff", "budget": 2048, "problem_id": ["a", "a", "b", "b"], "sample_idx": [0, 1, 0, 1],
        "num_tokens": [10, 20, 30, 40], "finished": True, "extracted": "1", "correct": [True, True, False, False],
    })
    metrics = compute_metrics(scores, [1, 2], bootstrap=1000, seed=0).set_index(["metric", "k"])
    assert (metrics.loc[("mean", 1), "ci_low"], metrics.loc[("mean", 1), "ci_high"]) == (0.0, 1.0)
    assert (metrics.loc[("pass", 2), "ci_low"], metrics.loc[("pass", 2), "ci_high"]) == (0.0, 1.0)
    # Per-problem mean lengths 15 and 35.
    assert (metrics.loc[("length_mean", pd.NA), "ci_low"], metrics.loc[("length_mean", pd.NA), "ci_high"]) == (15.0, 35.0)
    assert math.isnan(metrics.loc[("length_median", pd.NA), "ci_low"])


def test_bootstrap_interval_is_the_percentile_interval_of_resampled_means():
    values = [0.0, 0.25, 0.5, 1.0, 1.0]
    counts = resample_counts("t", len(values), 2000, seed=3)
    assert counts.shape == (2000, 5) and (counts.sum(axis=1) == 5).all()
    means = [sum(c * v for c, v in zip(row, values)) / 5 for row in counts]
    low, high = bootstrap_interval(values, counts)
    assert low == pytest.approx(float(np.percentile(means, 2.5))) and high == pytest.approx(float(np.percentile(means, 97.5)))
    assert low < sum(values) / 5 < high
    assert bootstrap_interval([0.5], resample_counts("t", 1, 10, 0)) == (pytest.approx(math.nan, nan_ok=True),) * 2


def test_bootstrap_is_deterministic_for_a_seed_and_changes_with_it(tmp_path):
    scores = small_scores()
    write_metrics(compute_metrics(scores, [1, 4], bootstrap=200, seed=5), tmp_path / "a")
    write_metrics(compute_metrics(scores.sample(frac=1, random_state=1), [4, 1], bootstrap=200, seed=5), tmp_path / "b")
    write_metrics(compute_metrics(scores, [1, 4], bootstrap=200, seed=6), tmp_path / "c")
    for name in ("metrics.csv", "metrics.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "metrics.csv").read_bytes() != (tmp_path / "c" / "metrics.csv").read_bytes()
    header = (tmp_path / "a" / "metrics.csv").read_text().splitlines()[0]
    assert header == "task,mode,budget,metric,k,value,stderr,ci_low,ci_high"
    pd.testing.assert_frame_equal(read_metrics(tmp_path / "a"), compute_metrics(scores, [1, 4], bootstrap=200, seed=5))


def test_bootstrap_intervals_do_not_depend_on_other_cells_or_ks():
    scores = small_scores()
    alone = compute_metrics(scores[scores["budget"] == 2048], [1], bootstrap=300, seed=0)
    together = compute_metrics(scores, [1, 2, 4], bootstrap=300, seed=0)
    keys = ["task", "mode", "budget", "metric", "k"]
    merged = alone.merge(together, on=keys, suffixes=("", "_together"))
    assert len(merged) == len(alone)
    pd.testing.assert_series_equal(merged["ci_low"], merged["ci_low_together"], check_names=False)
    pd.testing.assert_series_equal(merged["ci_high"], merged["ci_high_together"], check_names=False)
    has_ci = together["metric"].isin(["mean", "pass", "maj", "length_mean", "truncation_rate"])
    assert together.loc[has_ci, "ci_low"].notna().all() and together.loc[~has_ci, "ci_low"].isna().all()
    inside = together[has_ci]
    assert ((inside["ci_low"] <= inside["value"] + 1e-12) & (inside["value"] <= inside["ci_high"] + 1e-12)).all()


def test_metrics_files_without_interval_columns_still_read(tmp_path):
    metrics = compute_metrics(small_scores(), [1])
    old_style = metrics_to_csv(metrics).splitlines()
    old_style = "\n".join(",".join(line.split(",")[:7]) for line in old_style) + "\n"
    (tmp_path / "metrics.csv").write_text(old_style)
    pd.testing.assert_frame_equal(read_metrics(tmp_path), metrics)


def test_negative_bootstrap_settings_are_user_errors():
    with pytest.raises(UserError, match="--bootstrap -1"):
        compute_metrics(small_scores(), [1], bootstrap=-1)
    with pytest.raises(UserError, match="--bootstrap-seed -2"):
        compute_metrics(small_scores(), [1], bootstrap=10, seed=-2)
