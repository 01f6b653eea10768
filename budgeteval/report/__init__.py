"""Report: per-task tables, group breakdowns, comparisons between runs, training-step metrics and
`Run`, the reader of a finished run directory.

Takes `scores.parquet`, `metrics.csv` and `problems/`; gives text tables (markdown, CSV, LaTeX) and
`Comparison` records.
"""
