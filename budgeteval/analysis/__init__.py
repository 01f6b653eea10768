"""Analysis: where the tokens go in finished runs (problem profiles, difficulty buckets, first correct
answers, early exit) and its text tables.

Takes `Run`s; gives frames and tables. Writes nothing.
"""
