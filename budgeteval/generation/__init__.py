"""Generation: the sweep's life cycle, its settings, seeds, shards, forcing and the backends.

Takes `Task`s, `Problem`s and a `RunConfig`; gives `SampleOutput`s (token ids, text, finish
reason, seed) that the run directory's stores keep.
"""
