"""The sweep: the life cycle of `budgeteval run`, on top of generation, the run directory and scoring.

Takes a `RunConfig`; opens or resumes the run directory under its lock, writes the manifest first,
generates every missing sample (and the forced and conditioned budgets) through a backend, stores
them, and scores the run. Gives a scored run directory; a kill at any point leaves one that the
same command resumes.
"""
