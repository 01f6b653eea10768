"""A pool of spawned worker processes that runs jobs with a hard deadline each.

Scorers whose checks cannot run in the caller's process use it: math-verify's timeouts are
`signal.alarm`, which fails outside a main thread and cannot break every hang. Each worker is a
spawned process holding a job or two; a job still running past its hard deadline has its worker
killed and replaced, a worker that dies mid-job reports "crashed", and nothing outlives
`run_in_workers`. Jobs that share an affinity key go to the same worker while the load allows
(so a worker's caches, e.g. a parsed reference, serve them all). It knows nothing about what the
jobs compute.
"""

import logging
import multiprocessing
import multiprocessing.connection
import pickle
import signal
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobOutcome:
    """How one job ended."""

    status: Literal["ok", "killed", "crashed", "error"]
    """ok; killed: still running at the hard deadline; crashed: its worker died; error: it raised."""
    value: Any = None
    """The job's return value (ok) or the exception text (error)."""


_READY = "ready"


def _worker_main(connection: multiprocessing.connection.Connection, job_function: Callable,
                 initializer: Callable[[], None] | None) -> None:
    # Ctrl-C reaches the whole process group: leave cleanup to the parent, which kills us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:  # (before saying ready, so deadlines time jobs only)
        initializer()
    connection.send((_READY, None))
    while True:
        try:
            job = connection.recv()
        except EOFError:  # the parent is gone
            return
        try:
            reply = ("ok", job_function(job))
        except Exception as error:  # noqa: BLE001  (reported to the parent, never lost)
            reply = ("error", f"{type(error).__name__}: {error}")
        connection.send(reply)


JOBS_QUEUED_PER_WORKER = 2
"""Jobs a worker holds (one running, the rest queued), so it never waits for the parent between jobs."""
QUEUED_JOB_MAX_BYTES = 16 * 1024
"""A job is queued behind a running one only if this small: it must fit in the pipe's buffer,
or sending it would block the parent until the running job ends (never, if that one hangs)."""


class _Worker:
    """One spawned process and the jobs it holds (the first is running, the others queued)."""

    def __init__(self, context, job_function: Callable, initializer: Callable[[], None] | None) -> None:
        self.connection, child_connection = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child_connection, job_function, initializer),
                                       daemon=True)
        self.process.start()
        child_connection.close()
        self.spawned_at = time.monotonic()
        self.ready = False
        self.job_indices: deque[int] = deque()
        self.running_since = 0.0
        """When the first job of `job_indices` started: handed over, or the previous one replied."""
        self.affinity_key: Hashable = None
        """The affinity key of the last job handed over."""

    def stop(self) -> None:
        """End the process now: a worker holds nothing worth a graceful exit (interpreter
        teardown with sympy loaded takes longer than the jobs of a small batch)."""
        self.process.terminate()
        self.process.join(timeout=1)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.connection.close()


class _PendingJobs:
    """Jobs not yet handed out, grouped by affinity key in first-seen order.

    A worker takes more jobs of the key it last took while there are any (so its caches, e.g. a
    parsed reference, serve them all), else the first key no other worker is on, else any.
    """

    def __init__(self, affinity: Sequence[Hashable]) -> None:
        self.by_key: OrderedDict[Hashable, deque[int]] = OrderedDict()
        self.affinity = affinity
        for index, key in enumerate(affinity):
            self.by_key.setdefault(key, deque()).append(index)

    def __bool__(self) -> bool:
        return bool(self.by_key)

    def peek(self, preferred_key: Hashable, keys_of_other_workers: set) -> int:
        if preferred_key in self.by_key:
            return self.by_key[preferred_key][0]
        for key, indices in self.by_key.items():
            if key not in keys_of_other_workers:
                return indices[0]
        return next(iter(self.by_key.values()))[0]

    def remove(self, index: int) -> None:
        key = self.affinity[index]
        self.by_key[key].remove(index)
        if not self.by_key[key]:
            del self.by_key[key]

    def put_back(self, indices: Sequence[int]) -> None:
        """Return never-started jobs to the front of the queue, in their order."""
        for index in reversed(indices):
            key = self.affinity[index]
            self.by_key.setdefault(key, deque()).appendleft(index)
            self.by_key.move_to_end(key, last=False)


class Prestarted:
    """Workers started before their jobs are known, so their start-up (importing, warming caches)
    overlaps the caller's own work; one `run_in_workers` call with the same function adopts them.
    The caller must call `stop()` when done (in a `finally`): it ends any worker not adopted."""

    def __init__(self, job_function: Callable, initializer: Callable[[], None] | None = None) -> None:
        self.job_function = job_function
        self.initializer = initializer
        self.workers: list[_Worker] = []

    def start(self, count: int) -> None:
        """Have `count` workers starting (no-op for those already started)."""
        context = multiprocessing.get_context("spawn")
        while len(self.workers) < count:
            self.workers.append(_Worker(context, self.job_function, self.initializer))

    def take(self) -> list[_Worker]:
        taken, self.workers = self.workers, []
        return taken

    def stop(self) -> None:
        for worker in self.take():
            worker.stop()


def run_in_workers(
    job_function: Callable[[Any], Any],
    jobs: Sequence[Any],
    *,
    workers: int,
    hard_timeout_s: float,
    on_outcome: Callable[[int, JobOutcome], None] | None = None,
    affinity: Sequence[Hashable] | None = None,
    startup_timeout_s: float = 300.0,
    initializer: Callable[[], None] | None = None,
    prestarted: Prestarted | None = None,
) -> list[JobOutcome]:
    """Run `job_function(job)` for every job in spawned worker processes; outcomes in job order.

    `job_function` must be importable by name (a module-level function). A job still running
    `hard_timeout_s` after it started is "killed" (its worker is replaced, the jobs queued behind
    it go to other workers); a worker that dies mid-job gives "crashed". `on_outcome(job_index,
    outcome)` is called as each job ends, with how it ended. Jobs with equal `affinity` keys go to
    the same worker while the load allows. `initializer()` (importable by name too) runs once in
    each worker before its first job. `prestarted` workers (same function and initializer) are used
    before new ones are started.
    """
    outcomes: list[JobOutcome | None] = [None] * len(jobs)
    if not jobs:
        return []
    context = multiprocessing.get_context("spawn")
    pending = _PendingJobs(affinity if affinity is not None else range(len(jobs)))
    pool: list[_Worker] = []
    remaining = len(jobs)

    def finish(worker: _Worker, outcome: JobOutcome) -> None:
        nonlocal remaining
        index = worker.job_indices.popleft()
        worker.running_since = time.monotonic()
        outcomes[index] = outcome
        remaining -= 1
        if on_outcome is not None:
            on_outcome(index, outcome)

    def replace(worker: _Worker) -> None:
        worker.stop()
        pending.put_back(list(worker.job_indices))  # queued behind the lost job, never started
        worker.job_indices.clear()
        if pending:
            pool[pool.index(worker)] = _Worker(context, job_function, initializer)
        else:  # the jobs left are all running elsewhere: no new process to start
            pool.remove(worker)

    try:
        # Started inside the `try`: a signal between two starts still stops the first.
        size = max(1, min(workers, len(jobs)))
        if prestarted is not None:
            if (prestarted.job_function, prestarted.initializer) != (job_function, initializer):
                raise ValueError("prestarted workers run another function")
            pool.extend(prestarted.take())
            while len(pool) > size:
                pool.pop().stop()
        while len(pool) < size:
            pool.append(_Worker(context, job_function, initializer))
        while remaining:
            for worker in list(pool):
                while worker.ready and pending and len(worker.job_indices) < JOBS_QUEUED_PER_WORKER:
                    keys_of_others = {w.affinity_key for w in pool if w is not worker}
                    index = pending.peek(worker.affinity_key, keys_of_others)
                    payload = pickle.dumps(jobs[index], protocol=pickle.HIGHEST_PROTOCOL)
                    if worker.job_indices and len(payload) > QUEUED_JOB_MAX_BYTES:
                        break
                    try:
                        worker.connection.send_bytes(payload)
                    except (BrokenPipeError, OSError):  # it died: its jobs never started
                        replace(worker)
                        break
                    pending.remove(index)
                    worker.affinity_key = pending.affinity[index]
                    if not worker.job_indices:
                        worker.running_since = time.monotonic()
                    worker.job_indices.append(index)
            now = time.monotonic()
            deadlines = [w.running_since + hard_timeout_s for w in pool if w.job_indices]
            wait_s = min([1.0] + [max(0.0, deadline - now) for deadline in deadlines])
            readable = multiprocessing.connection.wait([w.connection for w in pool], timeout=wait_s)
            for worker in [w for w in pool if w.connection in readable]:
                try:
                    status, value = worker.connection.recv()
                except (EOFError, OSError):
                    worker.process.join(timeout=1)  # so its exit code is known for the message
                    if not worker.ready:
                        raise RuntimeError(
                            f"a scoring worker exited while starting (exit code {worker.process.exitcode})"
                        ) from None
                    if worker.job_indices:
                        logger.warning("a scoring worker died (exit code %s)", worker.process.exitcode)
                        finish(worker, JobOutcome("crashed"))
                    replace(worker)
                    continue
                if status == _READY:
                    worker.ready = True
                else:
                    finish(worker, JobOutcome(status, value))
            now = time.monotonic()
            for worker in list(pool):
                if worker.job_indices and now - worker.running_since > hard_timeout_s:
                    finish(worker, JobOutcome("killed"))
                    replace(worker)
                elif not worker.ready and now - worker.spawned_at > startup_timeout_s:
                    raise RuntimeError(f"a scoring worker did not start within {startup_timeout_s:.0f} s")
    finally:
        for worker in pool:
            worker.stop()
    return outcomes  # type: ignore[return-value]
