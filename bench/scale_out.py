"""Benchmark: the same sweep on 1 vs 2 inference servers (`--backend openai`) and on Ray with 1 vs 2 replicas.

Four ways, one sweep (same prompts, seeds and budgets, so the same samples come out of each):
  servers x1 — `--backend openai --base-url A` (one vLLM OpenAI server);
  servers x2 — `--backend openai --base-url A --base-url B` (least outstanding requests over two);
  ray x1     — `--backend ray --data-parallel-size 1` on a local Ray cluster;
  ray x2     — `--backend ray --data-parallel-size 2`.
Server start-up is excluded (servers are long-lived); a Ray call includes its replicas' engine
start, because a Ray Data pipeline owns its actors (see budgeteval/backends/ray_backend.py).
Prints generation wall time, the ratio to the x1 row, and the machine. Defaults use the tiny
random Qwen3 model from tests/ on the AIME 2025 copy in ../shared (CPU only; run under the
machine's heavy-work lock on a shared machine):

    flock /tmp/heavy.lock python bench/scale_out.py --problems 8 --n 4 --max-tokens 256
"""

import argparse
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: Path, log_path: Path, timeout_s: float = 600) -> tuple[subprocess.Popen, str]:
    """A vLLM OpenAI server on a free local port, in its own session; returns (process, /v1 URL)."""
    port = _free_port()
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--dtype", "float32",
               "--enforce-eager", "--host", "127.0.0.1", "--port", str(port), "--seed", "0"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                if response.status == 200:
                    return process, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(1)
    stop_server(process)
    raise SystemExit(f"vLLM server did not start; see {log_path}")


def stop_server(process: subprocess.Popen) -> None:
    """End the server and every process of its session."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}, load average {load:.1f} at start"


def main() -> None:
    import ray
    from sweep_checks import RecordingBackend, stored_samples, sweep_config
    from tiny_model import build_tiny_qwen3

    from budgeteval.generation.backends.openai_backend import OpenAIBackend
    from budgeteval.generation.backends.ray_backend import RayBackend
    from budgeteval.generation.config import EngineOptions
    from budgeteval.sweep.runner import run

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint (default: the tiny test model, built on the fly)")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "aime2025.jsonl"))
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="scale-out-"))
    model = Path(args.model) if args.model else build_tiny_qwen3(ROOT.parent / "shared" / "tokenizers" / "qwen3",
                                                                 work / "tiny-qwen3")
    described = machine()
    rows, samples = [], {}

    def sweep(name: str, backend, engine: EngineOptions, backend_name: str) -> None:
        recorder = RecordingBackend(backend)
        out = run(sweep_config(model, work / name.replace(" ", "-"), (args.max_tokens,), Path(args.data),
                               backend=backend_name, n=args.n, limit=args.problems, engine=engine),
                  progress=False, backend=recorder, bootstrap=0)
        samples[name] = stored_samples(out)
        rows.append((name, recorder.seconds, recorder.generated_tokens))

    servers = []
    try:
        for index in range(2):
            servers.append(start_server(model, work / f"server{index}.log"))
        urls = [url for _, url in servers]
        for count in (1, 2):
            options = EngineOptions(base_url=urls[0], extra_base_urls=tuple(urls[1:count]),
                                    concurrency=args.concurrency)
            sweep(f"servers x{count}", OpenAIBackend(str(model), str(model), options), options, "openai")
    finally:
        for process, _ in servers:
            stop_server(process)

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        for count in (1, 2):
            options = EngineOptions(dtype="float32", enforce_eager=True, data_parallel_size=count)
            backend = RayBackend(str(model), str(model), options)
            sweep(f"ray x{count}", backend, options, "ray")
    finally:
        ray.shutdown()

    same = all(value == samples["servers x1"] for value in samples.values())
    print(f"\nmachine: {described}")
    print(f"sweep: {args.problems} AIME 2025 problems x {args.n} samples, max_tokens {args.max_tokens}, "
          f"tiny Qwen3 ({model}); identical samples in every row: {same}\n")
    print("| method | generation wall s | tokens | ratio to x1 |")
    print("| --- | ---: | ---: | ---: |")
    base = {"servers": rows[0][1], "ray": rows[2][1]}
    for name, seconds, tokens in rows:
        print(f"| {name} | {seconds:.1f} | {tokens} | {base[name.split()[0]] / seconds:.2f}x |")


if __name__ == "__main__":
    main()
