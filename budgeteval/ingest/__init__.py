"""Ingest: runs made elsewhere become run directories: generation files (`budgeteval import`),
lm-eval and lighteval sample logs, and shards of one run (`budgeteval merge`).

Takes outside files or shard run directories; gives a scored run directory (it comes after
scoring because each ingest ends by scoring what it wrote).
"""
