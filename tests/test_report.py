"""Tests for budgeteval.report.tables: the markdown table shows the right numbers in the right places."""

import pandas as pd
import pytest

from budgeteval.errors import UserError
from budgeteval.report.tables import format_report
from budgeteval.scoring.metrics import (
    compute_metrics,
    count_timeouts,
    metrics_to_csv,
    metrics_to_json,
    read_metrics,
    write_metrics,
)


def scores_table(rows: list[tuple], task: str = "aime25", mode: str = "cutoff", timed_out=()) -> pd.DataFrame:
    """Scores from (budget, problem_id, sample_idx, num_tokens, finished, extracted, correct) tuples."""
    columns = ["budget", "problem_id", "sample_idx", "num_tokens", "finished", "extracted", "correct"]
    scores = pd.DataFrame(rows, columns=columns).assign(task=task, mode=mode)
    scores["timed_out"] = [(r[0], r[1], r[2]) in timed_out for r in rows]
    return scores


# Two problems x four samples. At 2048: p1 right on samples 0 and 2, p2 only on sample 3.
# At 4096 every sample is right. At 1000 (not a multiple of 1024) nothing is.
ROWS = [
    (2048, "p1", 0, 100, True, "5", True), (2048, "p1", 1, 300, True, "3", False),
    (2048, "p1", 2, 500, True, "5", True), (2048, "p1", 3, 2048, False, None, False),
    (2048, "p2", 0, 200, True, "7", False), (2048, "p2", 1, 400, True, "7", False),
    (2048, "p2", 2, 600, True, "8", False), (2048, "p2", 3, 804, True, "9", True),
    *[(4096, p, i, 1000 + i, True, "1", True) for p in ("p1", "p2") for i in range(4)],
    *[(1000, p, i, 1000, False, None, False) for p in ("p1", "p2") for i in range(4)],
]


def report(fmt="markdown", ks=None, with_timeouts=True, timed_out=()):
    scores = scores_table(ROWS, timed_out=timed_out)
    metrics = compute_metrics(scores, [1, 4])
    return format_report(metrics, fmt, ks=ks, timeouts=count_timeouts(scores) if with_timeouts else None)


def table_rows(markdown: str) -> dict[str, list[str]]:
    """Map 'budget mode' to the cells of that table row (markdown with a single task)."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[f"{cells[0]} {cells[1]}"] = dict(zip(header, cells))
    return rows


def test_markdown_shows_percentages_with_stderr_per_budget():
    markdown = report()
    assert "## aime25" in markdown
    rows = table_rows(markdown)
    assert list(rows) == ["1000 cutoff", "2k cutoff", "4k cutoff"]
    two_k = rows["2k cutoff"]
    assert two_k["mean@1"] == "50.0 ± 50.0"
    assert two_k["mean@4"] == "37.5 ± 12.5"
    assert two_k["pass@1"] == "37.5 ± 12.5"
    assert two_k["pass@4"] == "100.0 ± 0.0"
    assert two_k["maj@4"] == "50.0 ± 50.0"
    assert two_k["tokens mean"] == "619"
    assert two_k["tokens median"] == "450"
    assert two_k["truncated %"] == "12.5"
    assert rows["4k cutoff"]["mean@4"] == "100.0 ± 0.0"
    assert rows["1000 cutoff"]["truncated %"] == "100.0"


def test_markdown_columns_follow_requested_ks():
    markdown = report(ks=[4])
    header = markdown.splitlines()[2 + 2]
    assert "mean@4" in header and "maj@4" in header
    assert "@1" not in markdown


def test_unknown_k_is_a_user_error():
    with pytest.raises(UserError, match="k=16 is not in these metrics"):
        report(ks=[16])


def test_timeouts_column_appears_only_when_there_are_timeouts():
    assert "timeouts" not in report()
    rows = table_rows(report(timed_out={(2048, "p2", 0)}))
    assert rows["2k cutoff"]["timeouts"] == "1"
    assert rows["4k cutoff"]["timeouts"] == "0"


def test_unknown_format_is_a_user_error():
    with pytest.raises(UserError, match="Unknown report format 'html'"):
        report(fmt="html")


def test_csv_and_json_are_the_long_table():
    metrics = compute_metrics(scores_table(ROWS), [1, 4])
    assert format_report(metrics, "csv") == metrics_to_csv(metrics)
    assert format_report(metrics, "json") == metrics_to_json(metrics)
    only_k1 = format_report(metrics, "csv", ks=[1])
    assert ",1," in only_k1 and ",4," not in only_k1


def test_report_from_metrics_read_back_from_disk(tmp_path):
    metrics = compute_metrics(scores_table(ROWS), [1, 4])
    write_metrics(metrics, tmp_path)
    assert format_report(read_metrics(tmp_path), "markdown") == format_report(metrics, "markdown")
    assert format_report(pd.read_csv(tmp_path / "metrics.csv"), "markdown") == format_report(metrics, "markdown")


def test_modes_side_by_side():
    cutoff = scores_table(ROWS)
    forced = scores_table([(b, p, i, tokens + 10, True, "5" if p == "p1" else "7", p == "p1")
                           for b, p, i, tokens, *_ in ROWS], mode="forced")
    metrics = compute_metrics(pd.concat([cutoff, forced], ignore_index=True), [1, 4])
    text = format_report(metrics, "markdown")
    side = text.split("Budget modes side by side:")[1].split("All metrics:")[0]
    lines = [line for line in side.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[:3] == ["budget", "cutoff mean@4", "forced mean@4"]
    row_2k = dict(zip(header, [cell.strip() for cell in lines[3].strip("|").split("|")]))
    assert row_2k["budget"] == "2k"
    assert row_2k["cutoff mean@4"] == "37.5" and row_2k["forced mean@4"] == "50.0"
    assert row_2k["cutoff truncated %"] == "12.5" and row_2k["forced truncated %"] == "0.0"
    assert row_2k["forced tokens"] == f"{(100 + 300 + 500 + 2048 + 200 + 400 + 600 + 804) / 8 + 10:.0f}"
    assert "| 2k | forced |" in text  # the full table still has one row per budget x mode


def test_single_mode_has_no_side_by_side_table():
    assert "side by side" not in report()


def test_thinking_columns_only_for_a_run_with_a_marker_and_n_a_before_the_split():
    scores = scores_table(ROWS)
    scores["thinking_tokens"] = (scores["num_tokens"] * 3) // 4
    scores["answer_tokens"] = scores["num_tokens"] - scores["thinking_tokens"]
    scores["cut_thinking"] = ~scores["finished"]
    metrics = compute_metrics(scores, [1, 4])
    assert "thinking" not in format_report(metrics, "markdown")  # a run without an end-of-thinking marker
    rows = table_rows(format_report(metrics, "markdown", thinking=True))
    two_k = rows["2k cutoff"]
    assert (two_k["thinking"], two_k["answer"], two_k["cut thinking %"]) == ("464", "155", "12.5")  # 3714/8, 1238/8: they add up to 619
    before_split = format_report(compute_metrics(scores_table(ROWS), [1, 4]), "markdown", thinking=True)
    assert table_rows(before_split)["2k cutoff"]["thinking"] == "n/a"
    assert "re-run `budgeteval score`" in before_split
