"""Which of several OpenAI-compatible servers (all serving the same model) gets the next request.

Least outstanding requests: a request goes to the live endpoint with the fewest requests in
flight (ties: the one sent fewest so far, then the order given on the command line). An endpoint
that fails (refused, reset, timed out, HTTP 429/5xx) is benched for a cooldown that doubles with
each consecutive failure and ends at its next success. A request that failed on one endpoint is
tried at once on another it has not tried yet; only when it has tried every live endpoint does it
wait (the caller's backoff) and start another round. A benched endpoint gets requests again when
its cooldown ends, or when every endpoint is benched (a total outage still retries).

Per-request seeds make a sample independent of the endpoint that produced it, so routing never
changes a result. Counts per endpoint (requests answered, failures, the last error) go into the
manifest (`describe`) and the end-of-run report (`format_endpoint_report`).

Not here: HTTP (the openai backend), health checks on a timer, weights per endpoint.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _EndpointState:
    """Mutable counters of one endpoint, guarded by the pool's lock (never leaves this module)."""

    url: str
    outstanding: int = 0
    sent: int = 0
    succeeded: int = 0
    failed: int = 0
    consecutive_failures: int = 0
    benched_until: float = 0.0
    last_error: str | None = None


class EndpointPool:
    """Thread-safe least-outstanding-requests routing over a fixed list of endpoint URLs."""

    def __init__(self, urls: list[str], cooldown_s: float, max_cooldown_s: float,
                 clock: Callable[[], float] = time.monotonic):
        """`cooldown_s` is the first bench time after a failure; it doubles per consecutive failure up to `max_cooldown_s`."""
        if not urls:
            raise ValueError("an endpoint pool needs at least one URL")
        self._states = [_EndpointState(url) for url in urls]
        self._cooldown_s = cooldown_s
        self._max_cooldown_s = max_cooldown_s
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def urls(self) -> list[str]:
        """The endpoint URLs in the order given."""
        return [state.url for state in self._states]

    def __len__(self) -> int:
        return len(self._states)

    def acquire(self, tried: set[int]) -> int | None:
        """Reserve an endpoint for one attempt, or return None when this round of attempts is over.

        `tried` holds the endpoints the request already failed on in this round. Live endpoints
        not tried yet come first; when none is left the round ends (None), unless every endpoint
        is benched, in which case the one whose cooldown ends first is tried.
        """
        with self._lock:
            now = self._clock()
            live = [index for index, state in enumerate(self._states) if state.benched_until <= now]
            candidates = [index for index in live if index not in tried]
            if not candidates:
                if live:
                    return None
                untried = [index for index in range(len(self._states)) if index not in tried]
                if not untried:
                    return None
                candidates = [min(untried, key=lambda index: self._states[index].benched_until)]
            index = min(candidates, key=lambda index: (self._states[index].outstanding, self._states[index].sent, index))
            state = self._states[index]
            state.outstanding += 1
            state.sent += 1
            return index

    def succeeded(self, index: int) -> None:
        """The attempt on endpoint `index` got an answer: it is live again."""
        with self._lock:
            state = self._states[index]
            state.outstanding -= 1
            state.succeeded += 1
            state.consecutive_failures = 0
            state.benched_until = 0.0

    def failed(self, index: int, error: str, retry_after_s: float | None = None) -> None:
        """The attempt on endpoint `index` failed in a way worth retrying: bench it for a while."""
        with self._lock:
            state = self._states[index]
            state.outstanding -= 1
            state.failed += 1
            state.last_error = error
            cooldown = min(self._max_cooldown_s, self._cooldown_s * 2 ** state.consecutive_failures)
            if retry_after_s is not None:
                cooldown = min(self._max_cooldown_s, max(cooldown, retry_after_s))
            state.consecutive_failures += 1
            state.benched_until = self._clock() + cooldown

    def released(self, index: int) -> None:
        """The attempt on endpoint `index` ended without a verdict on the endpoint (a client error)."""
        with self._lock:
            self._states[index].outstanding -= 1

    def describe(self) -> list[dict]:
        """Per endpoint: answered requests, their share of all answered, failures and the last error."""
        with self._lock:
            total = sum(state.succeeded for state in self._states)
            return [{"url": state.url, "requests": state.succeeded,
                     "share": round(state.succeeded / total, 4) if total else 0.0,
                     "failures": state.failed, "last_error": state.last_error}
                    for state in self._states]


def format_endpoint_report(endpoints: list[dict]) -> str:
    """One line per endpoint (share of the requests, failures, last error), for the end of a run."""
    width = max(len(endpoint["url"]) for endpoint in endpoints)
    lines = []
    for endpoint in endpoints:
        line = (f"  {endpoint['url'].ljust(width)}  {endpoint['requests']} requests "
                f"({100 * endpoint['share']:.1f}%), {endpoint['failures']} failed")
        if endpoint["failures"] and endpoint["requests"] == 0:
            line += ", never answered"
        if endpoint["last_error"]:
            line += f" (last error: {endpoint['last_error']})"
        lines.append(line)
    return "Endpoints:\n" + "\n".join(lines)
