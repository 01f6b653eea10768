"""The verdict cache: verdicts already reached, kept so that no answer is verified twice.

A verdict depends only on what a scorer reads: (scorer, scorer version, answer policy, reference,
answer key). Scorers whose verification is expensive (`math`: math-verify in worker processes;
`code`: programs in the sandbox) look each distinct key up before verifying and add what they
verified, so re-scoring at new budgets, after a crash, or a second run of the same model verifies
only keys not seen before. Cheap in-process scorers (`gsm8k`, `choice`, `lmeval`) do not use it.
A verdict that is not a verdict on the answer is never cached: a timeout, a killed or crashed
worker, a scorer error, a sandbox failure. Verdicts read from the cache are the verdicts the
scorer gave (the same `extracted`, `correct`, `timed_out`, `answer_source`), so scores are
byte-identical with and without it (tested).

A namespace names everything besides the key a verdict depends on: the scorer, its
`SCORER_VERSION`, the answer policy, the verifying library's version, the scorer's settings (e.g.
math-verify's timeout). A change to any of them starts an empty namespace; old entries are never
read again.

On disk: a folder of parquet parts, `part-<32 hex>.parquet`, one row per verdict: `namespace`,
`key` (the first 32 hex digits of the SHA-256 of the key's canonical JSON), `extracted`,
`correct`, `timed_out`, `answer_source`; schema metadata `budgeteval_verdicts_format`. Parts are
only added (atomically, under a name no other writer uses), so writers that share a folder (runs
scored at once with one `--verdict-cache DIR`) never clash, and a kill loses at most the verdicts
not yet flushed (every `FLUSH_EVERY` verdicts and when a scorer call ends). A run directory keeps its
own cache in `RUN/verdicts/` (`budgeteval.rundir.layout.verdicts_dir`); `compact` merges its parts while
the run's write lock is held. A user's shared folder is read and added to, never compacted.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from pathlib import Path

from budgeteval.atomic import write_atomic
from budgeteval.errors import UserError
from budgeteval.scoring.scorers.base import Verdict

VERDICTS_FORMAT_VERSION = 1
"""Format of a part (`budgeteval_verdicts_format` in its schema metadata); a newer one is refused."""
FLUSH_EVERY = 1000
"""New verdicts held in memory before they are written as a part."""
COMPACT_AT = 16
"""A run's cache is merged into one part once it has more parts than this."""
_FORMAT_KEY = b"budgeteval_verdicts_format"


def _schema():
    import pyarrow as pa

    return pa.schema([
        ("namespace", pa.string()),
        ("key", pa.string()),
        ("extracted", pa.string()),
        ("correct", pa.bool_()),
        ("timed_out", pa.bool_()),
        ("answer_source", pa.string()),
    ], metadata={_FORMAT_KEY: str(VERDICTS_FORMAT_VERSION).encode()})


def cache_key(*parts) -> str:
    """The stored key of one verdict: a digest of its parts (strings, numbers, None) as canonical JSON."""
    text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _part_paths(folder: Path) -> list[Path]:
    return sorted(Path(folder).glob("part-*.parquet"))


def _read_part(path: Path, namespace: str | None):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as error:
        raise UserError(f"Verdict cache part {path} cannot be read ({error}): remove it (its verdicts are "
                        f"verified again).") from None
    version = int((table.schema.metadata or {}).get(_FORMAT_KEY, b"1"))
    if version > VERDICTS_FORMAT_VERSION:
        raise UserError(f"Verdict cache part {path} was written by a newer budgeteval (format {version}): upgrade "
                        f"budgeteval, or use another --verdict-cache folder.")
    if namespace is not None:
        table = table.filter(pc.equal(table.column("namespace"), namespace))
    return table


def _write_part(folder: Path, rows: dict[str, list]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pydict(rows, schema=_schema())
    write_atomic(Path(folder) / f"part-{uuid.uuid4().hex}.parquet", lambda temp: pq.write_table(table, temp))


class VerdictCache:
    """Verdicts in one or more folders (the run's own, a shared one): read from all, added to all."""

    def __init__(self, folders: Sequence[Path]):
        self.folders = [Path(folder) for folder in folders]
        self.hits = 0
        """Verdicts served from the cache (all namespaces), for the progress line and benchmarks."""
        self.added = 0
        """Verdicts added."""

    def view(self, namespace: str) -> CacheView:
        """The cache's verdicts of one namespace, loaded now."""
        return CacheView(self, namespace)


class CacheView:
    """One namespace of a `VerdictCache`: `get` and `put` by key parts, `flush` to disk."""

    def __init__(self, cache: VerdictCache, namespace: str):
        self.cache = cache
        self.namespace = namespace
        self.known: dict[str, Verdict] = {}
        for folder in cache.folders:
            for path in _part_paths(folder):
                table = _read_part(path, namespace)
                columns = {name: table.column(name).to_pylist() for name in
                           ("key", "extracted", "correct", "timed_out", "answer_source")}
                for key, extracted, correct, timed_out, source in zip(*columns.values()):
                    self.known[key] = Verdict(extracted, correct, timed_out, source)
        self.new: dict[str, Verdict] = {}

    def get(self, key: str) -> Verdict | None:
        """The cached verdict of a key (`cache_key(...)`), or None."""
        verdict = self.known.get(key)
        if verdict is not None:
            self.cache.hits += 1
        return verdict

    def put(self, key: str, verdict: Verdict) -> None:
        """Remember a verdict (the caller only passes real verdicts: no timeouts or failures)."""
        if verdict.timed_out or key in self.known:
            return
        self.known[key] = verdict
        self.new[key] = verdict
        self.cache.added += 1
        if len(self.new) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Write the verdicts added since the last flush as a new part in every folder."""
        if not self.new:
            return
        rows = {
            "namespace": [self.namespace] * len(self.new),
            "key": list(self.new),
            "extracted": [verdict.extracted for verdict in self.new.values()],
            "correct": [bool(verdict.correct) for verdict in self.new.values()],
            "timed_out": [bool(verdict.timed_out) for verdict in self.new.values()],
            "answer_source": [verdict.answer_source for verdict in self.new.values()],
        }
        for folder in self.cache.folders:
            _write_part(folder, rows)
        self.new = {}


def shared_cache_dir(folder) -> Path:
    """A user's `--verdict-cache DIR`, created if missing; one clear sentence if it cannot be used."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--verdict-cache {folder} is a file, not a folder: pass a folder (created if missing).")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"--verdict-cache {folder} cannot be created ({error.strerror}): pass a folder you can "
                        f"write.") from None
    return folder


def compact(folder: Path) -> None:
    """Merge a cache folder's parts into one once it has more than `COMPACT_AT` (only while its
    only writer holds a lock on it: the run's write lock for `RUN/verdicts/`)."""
    import pyarrow as pa

    if not Path(folder).is_dir():
        return
    parts = _part_paths(folder)
    if len(parts) <= COMPACT_AT:
        return
    merged = pa.concat_tables([_read_part(path, None).replace_schema_metadata(None) for path in parts])
    _write_part(folder, merged.to_pydict())
    for path in parts:
        path.unlink()
