"""Scoring: replay at every budget, answer sources, the scorers, the sandbox, the worker pool, the
verdict cache and the metrics computed from verdicts.

Takes a run directory's stored generations; gives `scores.parquet` and `metrics.csv`/`metrics.json`.
Never loads a model.
"""
