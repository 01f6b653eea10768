"""The scores table (`RUN/scores.parquet`): its schema, format version, writer and reader.
"""

from __future__ import annotations

from pathlib import Path

from budgeteval.atomic import write_atomic
from budgeteval.errors import UserError
from budgeteval.rundir.layout import SCORES_NAME, scores_path
from budgeteval.rundir.manifest import read_manifest

SCORES_FORMAT_VERSION = 3
"""Format of `scores.parquet` (key `budgeteval_scores_format` of its schema metadata); a reader
refuses a newer one. Files written before the key existed read as format 1. Format 2 adds
`answer_source` and lets `finished` be null (unknown); a format-1 file reads with `answer_source`
null. Format 3 adds `thinking_tokens`, `answer_tokens` and `cut_thinking` (the token split) and
`cap_exceeded` (engine mode); older files read with them null (re-score to fill the split)."""

_SCORES_FORMAT_KEY = b"budgeteval_scores_format"


def _scores_schema():
    import pyarrow as pa

    # large_string: what pandas' string columns convert to, so a written file is what pandas gives.
    return pa.schema([
        ("task", pa.large_string()),
        ("problem_id", pa.large_string()),
        ("sample_idx", pa.int32()),
        ("budget", pa.int64()),
        ("mode", pa.large_string()),
        ("num_tokens", pa.int64()),
        ("finished", pa.bool_()),
        ("extracted", pa.large_string()),
        ("correct", pa.bool_()),
        ("timed_out", pa.bool_()),
        ("answer_source", pa.large_string()),
        ("thinking_tokens", pa.int64()),
        ("answer_tokens", pa.int64()),
        ("cut_thinking", pa.bool_()),
        ("cap_exceeded", pa.bool_()),
    ])


SCORE_COLUMNS = ("task", "problem_id", "sample_idx", "budget", "mode", "num_tokens", "finished", "extracted",
                 "correct", "timed_out", "answer_source", "thinking_tokens", "answer_tokens", "cut_thinking",
                 "cap_exceeded")
"""Columns of `scores.parquet`, in order; one row per task x problem x sample x budget x mode.

task, problem_id (str); sample_idx (int32); budget (int64, tokens); mode (str: cutoff, forced,
conditioned); num_tokens (int64, tokens counted at that budget and mode); finished (bool, ended on
its own within the budget; null: unknown, an import without finish reasons or --max-tokens);
extracted (str or null: the scorer's normalised answer); correct (bool); timed_out (bool: the
verification timed out and counted as wrong); answer_source (str: boxed, stated, fallback or none,
`budgeteval.scoring.answers.SOURCES`; null for scorers without answer sources, `code`, and in format-1 files);
thinking_tokens, answer_tokens (int64: the counted tokens through and after the last end-of-thinking
marker, adding up to num_tokens; a non-thinking response is all answer); cut_thinking (bool: still
thinking at the budget, `budgeteval.scoring.replay.count_tokens`; null: unknown); cap_exceeded (bool,
engine mode: the response thought past B + the forced end string, so the engine's thinking budget did
not hold; null in the other modes). The last four are null in files written before format 3."""

TOKEN_SPLIT_COLUMNS = ("thinking_tokens", "answer_tokens", "cut_thinking")
"""Columns of the thinking/answer split (format 3); null in a file scored before they existed."""

SCORE_SORT_ORDER = ("task", "mode", "budget", "problem_id", "sample_idx")
"""Row order of `scores.parquet` (so the same scores give the same bytes)."""


def scores_schema():
    """The pyarrow schema of `scores.parquet` (`SCORE_COLUMNS`), format version in its metadata."""
    return _scores_schema().with_metadata({_SCORES_FORMAT_KEY: str(SCORES_FORMAT_VERSION).encode()})


def write_scores(run_dir: Path, scores) -> None:
    """Atomically write `scores.parquet`, sorted by `SCORE_SORT_ORDER`, in the scores schema."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    if "answer_source" not in scores.columns:  # a scorer (or a test) that records no sources
        scores = scores.assign(answer_source=None).astype({"answer_source": "string"})
    missing_split = [name for name in TOKEN_SPLIT_COLUMNS if name not in scores.columns]
    if missing_split:  # a table from before the split (or a test) writes them null
        scores = scores.assign(**{name: pd.NA for name in missing_split}).astype(
            {"thinking_tokens": "Int64", "answer_tokens": "Int64", "cut_thinking": "boolean"})
    if "cap_exceeded" not in scores.columns:  # frames made without engine mode (imports, tests)
        scores = scores.assign(cap_exceeded=pd.array([None] * len(scores), dtype="boolean"))
    ordered = scores.sort_values(list(SCORE_SORT_ORDER), kind="stable").reset_index(drop=True)
    table = pa.Table.from_pandas(ordered[list(SCORE_COLUMNS)], preserve_index=False)
    schema = _scores_schema()
    if not table.schema.remove_metadata().equals(schema):
        table = table.cast(schema.with_metadata(table.schema.metadata))
    metadata = {**(table.schema.metadata or {}), _SCORES_FORMAT_KEY: str(SCORES_FORMAT_VERSION).encode()}
    table = table.replace_schema_metadata(metadata)
    write_atomic(scores_path(run_dir), lambda temp: pq.write_table(table, temp))


def read_scores(run_dir: Path):
    """Load `scores.parquet` of a run as a pandas frame (checking first that `run_dir` is a run directory)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    read_manifest(run_dir)
    path = scores_path(run_dir)
    if not path.is_file():
        raise UserError(f"{run_dir} has no {SCORES_NAME}: run `budgeteval score {run_dir}` first.")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise UserError(f"Cannot read {path} ({error}); re-create it with `budgeteval score {run_dir}`.") from None
    version = (table.schema.metadata or {}).get(_SCORES_FORMAT_KEY, b"1")
    try:
        version = int(version)
    except ValueError:
        version = SCORES_FORMAT_VERSION + 1
    if version > SCORES_FORMAT_VERSION:
        raise UserError(f"{path} has scores format {version}, newer than this budgeteval reads "
                        f"({SCORES_FORMAT_VERSION}): upgrade budgeteval.")
    optional = ("timed_out", "answer_source", "cap_exceeded") + TOKEN_SPLIT_COLUMNS
    missing = [name for name in SCORE_COLUMNS if name not in table.column_names and name not in optional]
    if missing:
        raise UserError(f"{path} lacks column(s) {', '.join(missing)}; re-create it with `budgeteval score {run_dir}`.")
    scores = table.to_pandas()
    if "answer_source" not in scores.columns:  # format 1: written before answer sources were recorded
        scores["answer_source"] = pd.array([None] * len(scores), dtype="string")
    for name, dtype in (("thinking_tokens", "Int64"), ("answer_tokens", "Int64"), ("cut_thinking", "boolean"),
                        ("cap_exceeded", "boolean")):
        if name not in scores.columns:  # before format 3: no split, no engine mode
            scores[name] = pd.array([None] * len(scores), dtype=dtype)
    for name in ("finished", "cut_thinking"):
        if scores[name].dtype == object:  # nulls (unknown) come back as objects
            scores[name] = scores[name].astype("boolean")
    if scores["cap_exceeded"].dtype != "boolean":  # null outside engine mode: one nullable dtype always
        scores["cap_exceeded"] = scores["cap_exceeded"].astype("boolean")
    return scores
