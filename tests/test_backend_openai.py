"""The openai backend: against vLLM's real OpenAI server (replay equivalence through `run`), and
against a scripted stdlib HTTP server (retries, backoff, errors, the token-id routes)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import shared_path
from guards import import_or_need
from sweep_checks import assert_replay_equivalent, check_forced_sweep, finish_reasons, stored_samples, sweep_config

from budgeteval.errors import UserError
from budgeteval.generation.backends.base import GenerationRequest, SamplingConfig
from budgeteval.generation.backends.openai_backend import IDS_FROM_LOGPROBS, IDS_FROM_SERVER, OpenAIBackend
from budgeteval.generation.config import EngineOptions
from budgeteval.rundir.manifest import read_manifest
from budgeteval.sweep.runner import run

pytestmark = [pytest.mark.slow, pytest.mark.vllm, pytest.mark.shared]

SERVER_START_TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- vLLM's OpenAI server --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vllm_server(tiny_model, tmp_path_factory):
    """vLLM's OpenAI-compatible server on the tiny model, on a free local port; yields its /v1 URL."""
    yield from _serve_tiny_model(tiny_model, tmp_path_factory)


def _serve_tiny_model(tiny_model, tmp_path_factory):
    import_or_need("vllm", "needs vLLM (pip install -e '.[cpu]' on CPU machines)")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm-server") / "server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    # `python -m ...api_server`, not the `vllm serve` script, which fails under vllm-cpu.
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_model),
               "--dtype", "float32", "--enforce-eager", "--host", "127.0.0.1", "--port", str(port), "--seed", "0"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _wait_until_healthy(process, f"http://127.0.0.1:{port}/health", log_path)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop(process)


def _wait_until_healthy(process: subprocess.Popen, health_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(health_url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    tail = log_path.read_text(errors="replace")[-4000:]
    state = f"exited with {process.returncode}" if process.poll() is not None else \
        f"not healthy after {SERVER_START_TIMEOUT_S} s"
    pytest.fail(f"vLLM's OpenAI server {state}; log tail:\n{tail}")


def _stop(process: subprocess.Popen) -> None:
    """Stop the server and its engine process (the whole process group we started)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    try:  # the engine core child may outlive the API process for a moment
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_server_replay_equals_separate_max_token_runs(vllm_server, tiny_model, aime25_file, tmp_path):
    engine = EngineOptions(base_url=vllm_server, concurrency=8)
    big = run(sweep_config(tiny_model, tmp_path / "big", (16, 32, 64), aime25_file, backend="openai", engine=engine),
              progress=False)
    assert finish_reasons(big) == {"stop", "length"}, "the tiny model should produce both endings"
    samples = stored_samples(big)
    assert len(samples) == 3 * 4
    assert all(ids[-1] == 151645 for ids, reason in samples.values() if reason == "stop"), \
        "a stopped response keeps its end-of-sequence id, as the offline engine stores it"
    engine_facts = read_manifest(big).engine
    assert engine_facts["engine"] == "openai" and engine_facts["token_ids_source"] == IDS_FROM_SERVER
    for budget in (16, 32):
        small = run(sweep_config(tiny_model, tmp_path / f"max{budget}", (budget,), aime25_file, backend="openai",
                                 engine=engine), progress=False)
        assert_replay_equivalent(big, small, budget)


def test_server_forced_mode_continues_through_completions(vllm_server, tiny_model, aime25_file, tmp_path):
    options = EngineOptions(base_url=vllm_server, concurrency=8)
    engine = OpenAIBackend(str(tiny_model), str(tiny_model), options)
    check_forced_sweep(engine, tiny_model, tmp_path / "forced", aime25_file, "openai")


# --- a scripted server: retries, errors, token-id routes ----------------------------------------------


class ScriptedServer:
    """A local HTTP server answering each POST with the next scripted (status, body, headers)."""

    def __init__(self, script):
        self.script = list(script)
        self.requests = []  # (headers, JSON body) of every POST, in arrival order
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner._lock:
                    owner.requests.append((dict(self.headers), body))
                    step = owner.script.pop(0) if owner.script else (500, {"message": "script exhausted"}, {})
                status, payload, headers = step if len(step) == 3 else (*step, {})
                if callable(payload):
                    payload = payload(body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def bodies(self):
        return [body for _, body in self.requests]


def completion(token_ids=None, text="x", finish_reason="length", stop_reason=None, logprob_tokens=None):
    """A /completions answer with one choice, shaped like vLLM's."""
    choice = {"index": 0, "text": text, "finish_reason": finish_reason, "stop_reason": stop_reason}
    if token_ids is not None:
        choice["token_ids"] = token_ids
    if logprob_tokens is not None:
        choice["logprobs"] = {"tokens": logprob_tokens, "token_logprobs": [-1.0] * len(logprob_tokens)}
    return {"id": "cmpl-1", "object": "text_completion", "model": "m", "choices": [choice]}


PROBE_OK = (200, completion(token_ids=[7]))
SAMPLING = SamplingConfig(temperature=1.0, top_p=0.9, top_k=20, min_p=0.05)


def backend_for(server, **options) -> OpenAIBackend:
    return OpenAIBackend("m", "unused-tokenizer", EngineOptions(base_url=server.url, **options), backoff_s=0.01)


def test_retries_429_and_503_then_succeeds(monkeypatch):
    monkeypatch.setenv("BUDGETEVAL_TEST_KEY", "sekret")
    script = [PROBE_OK,
              (429, {"error": {"message": "slow down"}}, {"Retry-After": "0"}),
              (503, {"message": "overloaded"}),
              (503, {"message": "overloaded"}),
              (200, completion(token_ids=[1, 2, 3], text="abc", finish_reason="length"))]
    with ScriptedServer(script) as server:
        backend = backend_for(server, max_retries=3, api_key_env="BUDGETEVAL_TEST_KEY")
        [[sample]] = backend.generate([GenerationRequest("t/p", (5, 6), 1, 41, 3)], SAMPLING)
    assert (sample.token_ids, sample.text, sample.finish_reason) == ((1, 2, 3), "abc", "length")
    assert len(server.requests) == 5 and backend.describe()["retries"] == 3
    headers, body = server.requests[-1]
    assert headers["Authorization"] == "Bearer sekret"
    assert body["prompt"] == [5, 6] and body["n"] == 1 and body["seed"] == 41 and body["max_tokens"] == 3
    assert (body["temperature"], body["top_p"], body["top_k"], body["min_p"]) == (1.0, 0.9, 20, 0.05)
    assert body["return_token_ids"] is True and body["model"] == "m"


def test_gives_up_after_max_retries():
    with ScriptedServer([PROBE_OK] + [(502, {"message": "bad gateway"})] * 3) as server:
        backend = backend_for(server, max_retries=2)
        with pytest.raises(UserError, match=r"failed 3 times in a row \(last: HTTP 502: bad gateway\)"):
            backend.generate([GenerationRequest("t/p", (5,), 1, 0, 3)], SAMPLING)
    assert len(server.requests) == 1 + 3


def test_client_error_is_not_retried_and_names_url_status_and_message():
    message = "max_tokens=100000 cannot be greater than max_model_len=4096."
    with ScriptedServer([PROBE_OK, (400, {"error": {"message": message, "type": "BadRequestError"}})]) as server:
        backend = backend_for(server, max_retries=5)
        with pytest.raises(UserError) as raised:
            backend.generate([GenerationRequest("t/p", (5,), 1, 0, 100000)], SAMPLING)
    assert f"{server.url}/completions" in str(raised.value)
    assert "HTTP 400" in str(raised.value) and message in str(raised.value)
    assert len(server.requests) == 2


def test_unreachable_server_fails_at_start_with_the_url():
    url = f"http://127.0.0.1:{_free_port()}/v1"
    with pytest.raises(UserError, match=rf"{url}/completions failed 2 times in a row"):
        OpenAIBackend("m", "unused", EngineOptions(base_url=url, max_retries=1), backoff_s=0.01)


def test_samples_are_seeded_per_index_and_kept_in_request_order():
    def echo_seed(body):  # a sample's ids encode its prompt and seed, so any mix-up shows
        return completion(token_ids=[body["prompt"][0], body["seed"]], finish_reason="length")

    with ScriptedServer([PROBE_OK] + [(200, echo_seed)] * 6) as server:
        backend = backend_for(server, concurrency=4)
        requests = [GenerationRequest("t/a", (100,), 2, 10, 2), GenerationRequest("t/b", (200,), 4, 50, 2)]
        outputs = backend.generate(requests, SAMPLING)
    assert [[sample.token_ids for sample in samples] for samples in outputs] == [
        [(100, 10), (100, 11)], [(200, 50), (200, 51), (200, 52), (200, 53)]]


def test_logprobs_route_and_missing_stop_id_appended():
    script = [(200, completion(token_ids=None)),  # probe 1: the server ignores return_token_ids
              (200, completion(logprob_tokens=["token_id:9"])),  # probe 2: logprobs as token ids work
              (200, completion(logprob_tokens=["token_id:4", "token_id:5"], finish_reason="stop", stop_reason=151643))]
    with ScriptedServer(script) as server:
        backend = backend_for(server)
        assert backend.ids_source == IDS_FROM_LOGPROBS
        [[sample]] = backend.generate([GenerationRequest("t/p", (5,), 1, 0, 8)], SAMPLING)
    assert sample.token_ids == (4, 5, 151643) and sample.finish_reason == "stop"
    assert server.bodies()[-1]["logprobs"] == 0 and server.bodies()[-1]["return_tokens_as_token_ids"] is True
    facts = backend.describe()
    assert facts["token_ids_source"] == IDS_FROM_LOGPROBS and facts["eos_appended_responses"] == 1


def test_retokenizes_when_the_server_gives_no_ids():
    tokenizer_dir = shared_path("tokenizers", "qwen3")
    script = [(200, completion(token_ids=None)), (200, completion(token_ids=None)),
              (200, completion(token_ids=None, text="The answer is 42.", finish_reason="stop"))]
    with ScriptedServer(script) as server:
        backend = OpenAIBackend("m", str(tokenizer_dir), EngineOptions(base_url=server.url), backoff_s=0.01)
        [[sample]] = backend.generate([GenerationRequest("t/p", (5,), 1, 0, 64)], SAMPLING)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    expected = tokenizer.encode("The answer is 42.", add_special_tokens=False) + [tokenizer.eos_token_id]
    assert list(sample.token_ids) == expected
    facts = backend.describe()
    assert facts["token_ids_source"] == "retokenized" and facts["retokenized_responses"] == 1


# --- many servers: least outstanding requests, failover, per-endpoint report -------------------------


@pytest.fixture(scope="module")
def second_vllm_server(tiny_model, tmp_path_factory):
    """A second vLLM server on the same tiny model (started only by the many-servers test)."""
    yield from _serve_tiny_model(tiny_model, tmp_path_factory)


def test_many_servers_with_a_dead_one_equal_one_server(vllm_server, second_vllm_server, tiny_model, aime25_file,
                                                        tmp_path):
    from budgeteval.generation.config import ModeSettings
    from budgeteval.rundir.store import CONTINUATIONS, read_task

    dead = f"http://127.0.0.1:{_free_port()}/v1"
    modes = ModeSettings(modes=("cutoff", "forced"), answer_tokens=6)
    one = run(sweep_config(tiny_model, tmp_path / "one", (16, 32, 64), aime25_file, backend="openai", modes=modes,
                           engine=EngineOptions(base_url=vllm_server, concurrency=8)), progress=False)
    many = run(sweep_config(tiny_model, tmp_path / "many", (16, 32, 64), aime25_file, backend="openai", modes=modes,
                            engine=EngineOptions(base_url=dead, extra_base_urls=(vllm_server, second_vllm_server),
                                                 concurrency=8)), progress=False)
    assert stored_samples(many) == stored_samples(one) and len(stored_samples(one)) == 3 * 4
    columns = ["problem_id", "sample_idx", "budget", "continued", "token_ids"]
    key = lambda row: (row["problem_id"], row["sample_idx"], row["budget"])  # noqa: E731
    assert sorted(read_task(many, "aime25", columns=columns, kind=CONTINUATIONS).to_pylist(), key=key) == \
        sorted(read_task(one, "aime25", columns=columns, kind=CONTINUATIONS).to_pylist(), key=key)
    assert (many / "scores.parquet").read_bytes() == (one / "scores.parquet").read_bytes()
    endpoints = {endpoint["url"]: endpoint for endpoint in read_manifest(many).engine["endpoints"]}
    assert endpoints[dead]["requests"] == 0 and endpoints[dead]["failures"] >= 1
    assert "Connection refused" in endpoints[dead]["last_error"]
    live = [endpoints[vllm_server], endpoints[second_vllm_server]]
    assert all(endpoint["requests"] > 0 and endpoint["failures"] == 0 for endpoint in live), live
    samples_sent = read_manifest(many).engine["samples_generated"]
    assert sum(endpoint["requests"] for endpoint in live) == samples_sent + 1  # + the start-up probe
    assert sum(endpoint["share"] for endpoint in live) == pytest.approx(1.0, abs=1e-3)


def test_failover_to_another_server_and_report(capsys):
    from budgeteval.generation.backends.endpoints import format_endpoint_report

    def echo_seed(body):
        return completion(token_ids=[body["prompt"][0], body["seed"]], finish_reason="length")

    dead = f"http://127.0.0.1:{_free_port()}/v1"
    # One server answers every request; the other is overloaded (503) on every one.
    with ScriptedServer([(200, echo_seed)] * 20) as good, ScriptedServer([(503, {"message": "busy"})] * 20) as busy:
        backend = OpenAIBackend("m", "unused", EngineOptions(base_url=busy.url, extra_base_urls=(dead, good.url),
                                                             concurrency=3, max_retries=0), backoff_s=30.0)
        started = time.monotonic()
        outputs = backend.generate([GenerationRequest("t/a", (100,), 3, 10, 2), GenerationRequest("t/b", (200,), 2, 50, 2)],
                                   SAMPLING)
        elapsed_s = time.monotonic() - started
    # With max_retries=0, every sample still completes: failing over is not a retry round, and no
    # backoff (30 s here) is waited while a live endpoint is left.
    assert [[sample.token_ids for sample in samples] for samples in outputs] == [
        [(100, 10), (100, 11), (100, 12)], [(200, 50), (200, 51)]]
    assert elapsed_s < 10
    endpoints = {endpoint["url"]: endpoint for endpoint in backend.describe()["endpoints"]}
    assert endpoints[good.url]["requests"] == 1 + 5 and endpoints[good.url]["share"] == 1.0
    assert endpoints[busy.url]["requests"] == 0 and endpoints[busy.url]["failures"] >= 1
    assert endpoints[busy.url]["last_error"] == "HTTP 503: busy"
    assert endpoints[dead]["requests"] == 0 and endpoints[dead]["failures"] >= 1
    report = format_endpoint_report(backend.describe()["endpoints"])
    assert re.search(rf"{re.escape(good.url)} +6 requests \(100\.0%\), 0 failed", report), report
    assert "never answered (last error: HTTP 503: busy)" in report


def test_all_servers_down_names_them_all():
    urls = [f"http://127.0.0.1:{_free_port()}/v1" for _ in range(2)]
    with pytest.raises(UserError, match=r"All 2 servers \(.*\) failed, 2 rounds in a row"):
        OpenAIBackend("m", "unused", EngineOptions(base_url=urls[0], extra_base_urls=(urls[1],), max_retries=1),
                      backoff_s=0.01)


def test_pool_prefers_least_outstanding_and_benches_failures():
    from budgeteval.generation.backends.endpoints import EndpointPool

    now = [0.0]
    pool = EndpointPool(["a", "b", "c"], cooldown_s=1.0, max_cooldown_s=4.0, clock=lambda: now[0])
    assert [pool.acquire(set()) for _ in range(4)] == [0, 1, 2, 0]  # spread, then the least loaded
    pool.succeeded(1)
    assert pool.acquire(set()) == 1  # b has nothing in flight now
    pool.failed(2, "refused")
    assert pool.acquire({0}) == 1  # c is benched, a was tried: b
    assert pool.acquire({0, 1}) is None  # the round is over: wait, then try again
    now[0] = 1.5
    assert pool.acquire({0, 1}) == 2  # c's cooldown (1 s) is over
    pool.failed(2, "refused")  # a second failure in a row: 2 s on the bench
    now[0] = 3.0
    assert pool.acquire({0, 1}) is None
    for index in (0, 0, 1, 1):
        pool.failed(index, "refused")
    assert pool.acquire(set()) == 2  # everything is benched: the one whose cooldown ends first
