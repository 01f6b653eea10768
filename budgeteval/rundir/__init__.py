"""The run directory: its layout, the typed manifest, the write lock, the scores schema, the
generation stores and the problems (with their groups).

Takes the records generation and scoring produce; gives the files every later stage reads. One
package owns the contract every stage reads and writes, a module per job:

    RUN/manifest.json                   `manifest.Manifest`: config, fingerprint, tasks, versions, ...
    RUN/generations|continuations|conditioned/<task>/part-*.parquet   the stores (`store`)
    RUN/problems/<task>.parquet         problems and their groups (`store`)
    RUN/tokenizer/                      the tokenizer the run used
    RUN/scores.parquet                  `scores.SCORE_COLUMNS`: one row per sample x budget x mode
    RUN/metrics.csv, RUN/metrics.json   written by `budgeteval.scoring.metrics`
    RUN/verdicts/part-*.parquet         the run's verdict cache (`budgeteval.scoring.verdict_cache`)

`layout` is the only code that spells these names; every other stage asks it for a path.
`manifest.read_manifest`/`write_manifest` are the only code that touches `manifest.json` (written
atomically, keys sorted, so equal content gives equal bytes); a reader refuses a newer format and
reads every format written so far. `manifest.open_run` creates a directory, or checks that an
existing one was made with the same generation fingerprint (refusing a changed configuration unless
told to overwrite). Scoring, replay and generation are other stages' jobs: this one knows where
things are and what they hold.

Every command that writes a run directory (run, score, import, watch, repair, merge) holds its write
lock (`lock.lock_run`): an OS lock (`fcntl.flock`) on `RUN/.budgeteval.lock` that dies with its
process, so a kill -9 never leaves a stale lock, and a second writer is refused at once with the
holder's pid and command. Readers (report, compare, plot, view) never take it: every file is
replaced atomically (`budgeteval.atomic`). The start order is crash-proof: the manifest is the first
file a command writes, so a directory a kill left behind is always one the same command resumes
(`layout.save_tokenizer` and the problems are rewritten on every start).
"""
