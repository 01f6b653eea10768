"""The per-problem budget profile of a scores table: at which budgets each problem is solved.

`Run.profile` and the analysis stage read it; it is computed from `scores.parquet` alone.
"""

import pandas as pd

SOLVED_FRACTION = 0.5
"""A problem is solved at a budget when at least this fraction of its samples is correct."""

PROBLEM_KEYS = ["task", "mode", "problem_id"]
"""The columns that name one problem of one mode."""


def profile_from_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per task x mode x problem x budget of a scores table: how often each problem is solved.

    Columns: num_samples, num_correct, pass_rate (= num_correct / num_samples), solved
    (pass_rate >= `SOLVED_FRACTION`), stays_solved (solved at this budget and at every larger one),
    and per problem (repeated on its rows): solved_from (the smallest budget from which it stays
    solved; NA when it is not solved at the largest budget) and lost (solved at some smaller budget
    but not at the largest).
    """
    cells = (scores.groupby(PROBLEM_KEYS + ["budget"], sort=True)["correct"]
             .agg(num_samples="size", num_correct="sum").reset_index())
    cells["num_correct"] = cells["num_correct"].astype(int)
    cells["pass_rate"] = cells["num_correct"] / cells["num_samples"]
    cells["solved"] = cells["pass_rate"] >= SOLVED_FRACTION
    # Reverse cumulative AND over budgets: solved here and at every larger budget.
    cells["stays_solved"] = (cells.iloc[::-1].groupby(PROBLEM_KEYS, sort=False)["solved"].cummin().iloc[::-1]
                             .astype(bool))
    first = (cells[cells["stays_solved"]].groupby(PROBLEM_KEYS)["budget"].min().rename("solved_from"))
    largest = cells.groupby(PROBLEM_KEYS)["budget"].transform("max")
    at_largest = cells[cells["budget"] == largest].set_index(PROBLEM_KEYS)["solved"].rename("_solved_at_largest")
    ever_smaller = cells[cells["budget"] < largest].groupby(PROBLEM_KEYS)["solved"].any().rename("_ever_smaller")
    cells = cells.join(first, on=PROBLEM_KEYS).join(at_largest, on=PROBLEM_KEYS).join(ever_smaller, on=PROBLEM_KEYS)
    cells["solved_from"] = cells["solved_from"].astype("Int64")
    cells["lost"] = cells["_ever_smaller"].fillna(False).astype(bool) & ~cells["_solved_at_largest"].astype(bool)
    return cells.drop(columns=["_solved_at_largest", "_ever_smaller"]).reset_index(drop=True)
