"""Generation through an OpenAI-compatible server (vLLM's `api_server` / `vllm serve`, SGLang).

Prompts go to `/completions` as token ids, so the server sees exactly the prompt every other
backend sees. Each sample is its own HTTP request (`n=1`, `seed = request seed + sample index`):
that is how vLLM seeds the children of an `n`-sample request, so the ids equal the offline
engine's (checked against `vllm.LLM`), while SGLang gives all `n` children of one request the
same seed (sgl-project/sglang#28805, open), which would return n copies of one sample.

Response token ids, best source first, chosen once by a probe request when the backend starts:
1. `"return_token_ids": true` -> each choice's `token_ids` (vLLM >= 0.10.2, SGLang with #30917);
2. `"logprobs": 0, "return_tokens_as_token_ids": true` -> `logprobs.tokens` as `token_id:N`;
3. neither: the text is re-tokenized with the run's tokenizer (approximate; `describe()` says so
   and counts the responses).
vLLM includes the final end-of-sequence id in `token_ids` exactly as `vllm.LLM` does
(`stop_reason` is None for the tokenizer's EOS, the id for generation-config EOS ids). A server
that reports `stop` without that id gets it appended (the id in `stop_reason` / SGLang's
`matched_stop`, else the tokenizer's EOS), so `len(ids) <= B and finish == stop` keeps meaning
"finished within B" for every backend.

Many servers: `--base-url` given several times spreads the requests over every server (least
outstanding requests, `budgeteval.generation.backends.endpoints`); a request that failed on a dead or
overloaded server is sent at once to another, and `describe()` reports each server's share and
failures. The servers must serve the same model with the same engine: per-request seeds make a
sample independent of which server produced it.

Not here: streaming, chat completions (the chat template is applied by `budgeteval.tasks.prompts`),
or any server management; the user starts the servers.
"""

import http.client
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

from budgeteval.errors import UserError
from budgeteval.generation.backends.base import GenerationRequest, SampleOutput, SamplingConfig, normalise_finish_reason
from budgeteval.generation.backends.endpoints import EndpointPool
from budgeteval.generation.config import EngineOptions, RunConfig
from budgeteval.generation.seeds import sample_seed

IDS_FROM_SERVER = "return_token_ids"
"""Token ids read from each choice's `token_ids`."""
IDS_FROM_LOGPROBS = "logprobs"
"""Token ids read from `logprobs.tokens` written as `token_id:N`."""
IDS_RETOKENIZED = "retokenized"
"""Token ids re-computed from the response text with the run's tokenizer."""

_TOKEN_ID_PREFIX = "token_id:"
_MAX_BACKOFF_S = 60.0
_INFO_TIMEOUT_S = 10.0
_ABORTED_FINISH_REASONS = ("abort", "error")


class _Retryable(Exception):
    """A failure worth another attempt (connection, timeout, HTTP 429/5xx, aborted generation)."""

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class _Cancelled(Exception):
    """Another request of the same `generate` call failed; stop without retrying."""


class OpenAIBackend:
    """Generate by sending token-id prompts to an OpenAI-compatible `/completions` endpoint."""

    name = "openai"

    @classmethod
    def from_config(cls, config: RunConfig, tokenizer_path: str) -> "OpenAIBackend":
        """Connect to the server a run's configuration names."""
        return cls(config.model, tokenizer_path, config.engine)

    def __init__(self, model: str, tokenizer: str, options: EngineOptions, backoff_s: float = 1.0):
        """`model` is the name the servers serve; `tokenizer` is only loaded if ids must be re-derived."""
        urls = []
        for url in (options.base_url, *options.extra_base_urls):
            clean = (url or "").rstrip("/")
            if not clean.startswith(("http://", "https://")):
                raise UserError(f"--base-url must be an http(s) URL such as http://127.0.0.1:8000/v1, got {url!r}.")
            if clean in urls:
                raise UserError(f"--base-url {url} is given twice: name each server once.")
            urls.append(clean)
        base_url = urls[0]
        self.model = model
        self.tokenizer_path = tokenizer
        self.options = options
        self.backoff_s = backoff_s
        """First retry waits about this long; each further retry doubles it (with jitter, capped)."""
        self.base_url = base_url
        """The first server (the only one unless --base-url is repeated)."""
        self.completions_url = f"{base_url}/completions"
        self._pool = EndpointPool(urls, cooldown_s=backoff_s, max_cooldown_s=_MAX_BACKOFF_S)
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        api_key = os.environ.get(options.api_key_env) if options.api_key_env else None
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._lock = threading.Lock()
        self._tokenizer = None
        self._counts = {"samples": 0, "retokenized": 0, "eos_appended": 0, "retries": 0}
        self.ids_source = self._probe_ids_source()
        self._server = self._server_facts()

    # --- HTTP ---------------------------------------------------------------------------------

    def _post(self, body: dict, cancelled: threading.Event | None = None) -> dict:
        """POST `body` to /completions of the best endpoint, failing over and backing off on transient failures.

        A round tries every live endpoint at most once (the next one at once after a failure);
        after a round in which all failed it waits (exponential backoff with jitter, or the
        server's Retry-After) and starts another; `max_retries` rounds after the first, it gives up.
        """
        data = json.dumps(body).encode()
        rounds, tried, last = 0, set(), None
        while True:
            if cancelled is not None and cancelled.is_set():
                raise _Cancelled()
            index = self._pool.acquire(tried)
            if index is None:  # every live endpoint failed this round
                rounds += 1
                if rounds > self.options.max_retries:
                    raise UserError(self._gave_up(rounds, last)) from None
                delay = last[1].retry_after_s
                if delay is None:
                    delay = min(_MAX_BACKOFF_S, self.backoff_s * 2 ** (rounds - 1)) * random.uniform(0.5, 1.5)
                delay = min(delay, _MAX_BACKOFF_S)
                if cancelled is not None:
                    cancelled.wait(delay)  # wakes early when another sample of the call failed
                else:
                    time.sleep(delay)
                tried = set()
                continue
            url = self._pool.urls[index]
            try:
                payload = self._post_once(f"{url}/completions", data)
            except _Retryable as failure:
                self._pool.failed(index, str(failure), failure.retry_after_s)
                tried.add(index)
                last = (url, failure)
                if rounds < self.options.max_retries or len(tried) < len(self._pool):
                    with self._lock:
                        self._counts["retries"] += 1
                continue
            except BaseException:
                self._pool.released(index)
                raise
            self._pool.succeeded(index)
            return payload

    def _gave_up(self, rounds: int, last: tuple) -> str:
        url, failure = last
        if len(self._pool) == 1:
            return (f"The server at {url}/completions failed {rounds} times in a row (last: {failure}); "
                    f"check that it is running and reachable.")
        return (f"All {len(self._pool)} servers ({', '.join(self._pool.urls)}) failed, {rounds} rounds in a row "
                f"(last: {url}: {failure}); check that they are running and reachable.")

    def _post_once(self, completions_url: str, data: bytes) -> dict:
        request = urllib.request.Request(completions_url, data=data, headers=self._headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.options.request_timeout_s) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as error:
            message = _server_message(error)
            if error.code == 429 or error.code >= 500:
                raise _Retryable(f"HTTP {error.code}: {message}", _retry_after_s(error)) from None
            if error.code in (400, 422) and "thinking_token_budget" in message and b'"thinking_token_budget"' in data:
                raise UserError(
                    f"The server at {completions_url} refused thinking_token_budget (HTTP {error.code}: {message}); "
                    f"engine mode needs a server with a thinking budget (vLLM started with --reasoning-parser or "
                    f"--reasoning-config): drop engine from --modes for this server.") from None
            raise UserError(
                f"The server at {completions_url} answered HTTP {error.code}: {message}{self._hint(error.code)}."
            ) from None
        except (OSError, http.client.HTTPException) as error:  # refused, reset, timed out, cut short
            raise _Retryable(f"{type(error).__name__}: {error}") from None
        except ValueError as error:  # a 200 whose body is not JSON: a proxy cut it short
            raise _Retryable(f"unreadable response ({error})") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list) or not payload["choices"]:
            raise _Retryable(f"response without choices ({str(payload)[:200]})")
        return payload

    def _hint(self, status: int) -> str:
        if status in (401, 403):
            return f" (put the API key in the environment variable {self.options.api_key_env})"
        if status == 404:
            return f" (does --base-url end with /v1, and is {self.model!r} the model name the server serves?)"
        return ""

    def _get_json(self, url: str) -> dict | None:
        """Best-effort GET for the manifest (server version, served models); None when unavailable."""
        request = urllib.request.Request(url, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=_INFO_TIMEOUT_S) as response:
                payload = json.loads(response.read())
        except (OSError, http.client.HTTPException, ValueError):
            return None
        return payload if isinstance(payload, dict) else None

    # --- requests and responses ---------------------------------------------------------------

    def _body(self, prompt_token_ids: Sequence[int], seed: int, max_tokens: int, sampling: SamplingConfig,
              ids_source: str) -> dict:
        body = {
            "model": self.model,
            "prompt": [int(token) for token in prompt_token_ids],
            "n": 1,
            "seed": int(seed),
            "max_tokens": max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k if sampling.top_k > 0 else -1,
            "min_p": sampling.min_p,
            # Pinned because a server fills unset fields from the model's generation_config,
            # which the offline engine (explicit SamplingParams) does not.
            "repetition_penalty": 1.0,
            "presence_penalty": 0.0,
            "frequency_penalty": 0.0,
            "stream": False,
            "return_token_ids": True,
        }
        if ids_source == IDS_FROM_LOGPROBS:
            body["logprobs"] = 0
            body["return_tokens_as_token_ids"] = True
        return body

    def _probe_ids_source(self) -> str:
        """Ask the server for one greedy token to learn which route gives token ids (and fail early)."""
        probe = SamplingConfig(temperature=0.0, top_p=1.0, top_k=-1, min_p=0.0)
        choice = self._post(self._body([0], 0, 1, probe, IDS_FROM_SERVER))["choices"][0]
        if isinstance(choice.get("token_ids"), list):
            return IDS_FROM_SERVER
        choice = self._post(self._body([0], 0, 1, probe, IDS_FROM_LOGPROBS))["choices"][0]
        if _ids_from_logprobs(choice) is not None:
            return IDS_FROM_LOGPROBS
        return IDS_RETOKENIZED

    def _server_facts(self) -> dict:
        """Version and served-model card of the first endpoint that answers (all serve the same model)."""
        for base_url in self._pool.urls:
            root = base_url[:-3] if base_url.endswith("/v1") else base_url
            facts = {}
            version = self._get_json(f"{root}/version")
            if version and "version" in version:
                facts["server_version"] = version["version"]
            models = self._get_json(f"{base_url}/models")
            for card in (models or {}).get("data") or []:
                if isinstance(card, dict) and card.get("id") == self.model:
                    facts["served_model"] = {key: card[key] for key in ("id", "root", "max_model_len") if key in card}
            if facts:
                return facts
        return {}

    def _tokenizer_or_load(self):
        with self._lock:
            if self._tokenizer is None:
                from budgeteval.generation.tokenizer import load_tokenizer

                self._tokenizer = load_tokenizer(self.tokenizer_path)
            return self._tokenizer

    def _sample_output(self, choice: dict) -> SampleOutput:
        text = choice.get("text") or ""
        finish = choice.get("finish_reason")
        if finish in _ABORTED_FINISH_REASONS:
            raise _Retryable(f"the server ended the generation with finish_reason={finish!r}")
        retokenized = False
        ids = choice.get("token_ids")
        if not isinstance(ids, list):
            ids = _ids_from_logprobs(choice)
        if ids is None:
            tokenizer = self._tokenizer_or_load()
            with self._lock:  # a fast tokenizer is not safe to call from several threads at once
                ids = tokenizer.encode(text, add_special_tokens=False)
            retokenized = True
        ids = [int(token) for token in ids]
        finish_reason = normalise_finish_reason(finish)
        appended = False
        if finish_reason == "stop":
            stop = choice.get("stop_reason")  # vLLM
            if stop is None:
                stop = choice.get("matched_stop")  # SGLang
            if isinstance(stop, int) and not isinstance(stop, bool):
                stop_id = stop
            elif stop is None:  # the tokenizer's own EOS (a stop string would be named here)
                stop_id = self._tokenizer_or_load().eos_token_id
            else:
                stop_id = None
            if stop_id is not None and (not ids or ids[-1] != stop_id):
                ids.append(int(stop_id))
                appended = True
        with self._lock:
            self._counts["samples"] += 1
            self._counts["retokenized"] += retokenized
            self._counts["eos_appended"] += appended
        return SampleOutput(token_ids=tuple(ids), text=text, finish_reason=finish_reason)

    def _generate_one(self, request: GenerationRequest, index: int, sampling: SamplingConfig,
                      cancelled: threading.Event) -> SampleOutput:
        body = self._body(request.prompt_token_ids, sample_seed(request.seed, index), request.max_tokens, sampling, self.ids_source)
        if request.thinking_budget is not None:  # engine mode: the server's own thinking budget (vLLM's field)
            body["thinking_token_budget"] = int(request.thinking_budget)
        attempts = self.options.max_retries + 1
        for attempt in range(attempts):
            choices = sorted(self._post(body, cancelled)["choices"], key=lambda choice: choice.get("index", 0))
            try:
                return self._sample_output(choices[0])
            except _Retryable as failure:  # an aborted generation: ask again (same seed, same sample)
                if attempt + 1 == attempts:
                    raise UserError(f"The server{'s' if len(self._pool) > 1 else ''} at "
                                    f"{', '.join(self._pool.urls)} aborted {request.key} sample {index} "
                                    f"{attempts} times ({failure}).") from None
        raise AssertionError("unreachable")

    # --- Backend protocol ---------------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> list[list[SampleOutput]]:
        jobs = [(position, index) for position, request in enumerate(requests) for index in range(request.n)]
        results: list[list[SampleOutput | None]] = [[None] * request.n for request in requests]
        if not jobs:
            return results
        cancelled = threading.Event()
        executor = ThreadPoolExecutor(max_workers=max(1, min(self.options.concurrency, len(jobs))),
                                      thread_name_prefix="budgeteval-openai")
        try:
            futures = {
                executor.submit(self._generate_one, requests[position], index, sampling, cancelled): (position, index)
                for position, index in jobs
            }
            for future in as_completed(futures):  # the first failure ends the call at once
                position, index = futures[future]
                results[position][index] = future.result()
        except BaseException:
            cancelled.set()
            raise
        finally:
            executor.shutdown(wait=not cancelled.is_set(), cancel_futures=True)
        return results

    def describe(self) -> dict:
        with self._lock:
            counts = dict(self._counts)
        return {
            "engine": "openai",
            "base_url": self.base_url,
            "endpoints": self._pool.describe(),
            "served_model_name": self.model,
            **self._server,
            "token_ids_source": self.ids_source,
            "samples_generated": counts["samples"],
            "retokenized_responses": counts["retokenized"],
            "eos_appended_responses": counts["eos_appended"],
            "retries": counts["retries"],
            "concurrency": self.options.concurrency,
            "max_retries": self.options.max_retries,
            "request_timeout_s": self.options.request_timeout_s,
        }

    def close(self) -> None:
        pass


def _ids_from_logprobs(choice: dict) -> list[int] | None:
    """Token ids from `logprobs.tokens` when the server wrote them as `token_id:N`, else None."""
    tokens = (choice.get("logprobs") or {}).get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(token, str) and token.startswith(_TOKEN_ID_PREFIX)
                                               for token in tokens):
        return None
    try:
        return [int(token[len(_TOKEN_ID_PREFIX):]) for token in tokens]
    except ValueError:
        return None


def _server_message(error: urllib.error.HTTPError) -> str:
    """The server's own error text (OpenAI, vLLM and SGLang shapes), on one short line."""
    try:
        raw = error.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        raw = ""
    message = raw
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        inner = payload.get("error")
        if isinstance(inner, dict):
            inner = inner.get("message")
        message = str(inner or payload.get("message") or payload.get("detail") or raw)
    message = " ".join(message.split()) or str(error.reason)
    return message if len(message) <= 300 else message[:297] + "..."


def _retry_after_s(error: urllib.error.HTTPError) -> float | None:
    """Seconds from a numeric `Retry-After` header, if the server sent one."""
    value = error.headers.get("Retry-After") if error.headers else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
