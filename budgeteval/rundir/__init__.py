"""The run directory: its layout, the typed manifest, the write lock, the scores schema, the
generation stores and the problems (with their groups).

Takes the records generation and scoring produce; gives the files every later stage reads
(`manifest.json`, `generations/`, `problems/`, `scores.parquet`, ...). Only this package spells
the run directory's file names.
"""
