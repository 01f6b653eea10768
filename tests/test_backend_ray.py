"""The ray backend on a local Ray cluster this module starts (2 CPUs, 127.0.0.1): a tiny-model sweep
equals `--backend vllm` sample for sample; a driver killed with kill -9 mid-run resumes losing and
duplicating nothing; no Ray process outlives the cluster."""

import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from guards import import_or_need
from sweep_checks import stored_samples, sweep_config

from budgeteval.generation.config import EngineOptions
from budgeteval.rundir.manifest import read_manifest
from budgeteval.sweep.runner import run

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.vllm, pytest.mark.shared]

BUDGETS = (16, 32)


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster; yields its address. On exit, checks that every Ray process of it is gone."""
    ray = import_or_need("ray", "needs Ray (pip install -e '.[ray]')")
    import_or_need("vllm", "needs vLLM (pip install -e '.[cpu]' on CPU machines)")
    import psutil

    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit
    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, _temp_dir=temp_dir,
             log_to_driver=False)
    seen = set()

    def remember_ray_processes():
        # Ray's own processes only: a vLLM engine in this process leaves a multiprocessing
        # resource tracker that lives as long as pytest does.
        for child in psutil.Process().children(recursive=True):
            try:
                text = " ".join(child.cmdline())
            except psutil.Error:
                continue
            if "ray::" in text or "/ray/" in text:
                seen.add(child)

    try:
        yield ray.get_runtime_context().gcs_address, remember_ray_processes
    finally:
        remember_ray_processes()
        ray.shutdown()
        gone, alive = psutil.wait_procs(list(seen), timeout=30)
        for process in alive:
            process.kill()
        assert not alive, f"Ray processes outlived the cluster: {[process.pid for process in alive]}"


@pytest.fixture(scope="module")
def vllm_reference(tiny_model, aime25_file, tmp_path_factory):
    """The same sweep through --backend vllm."""
    out = tmp_path_factory.mktemp("ray-ref") / "vllm"
    return run(sweep_config(tiny_model, out, BUDGETS, aime25_file), progress=False)


def test_ray_sweep_equals_vllm(ray_cluster, vllm_reference, tiny_model, aime25_file, tmp_path):
    _, remember = ray_cluster
    out = run(sweep_config(tiny_model, tmp_path / "ray", BUDGETS, aime25_file, backend="ray",
                           engine=EngineOptions(dtype="float32", enforce_eager=True)), progress=False)
    remember()
    assert stored_samples(out) == stored_samples(vllm_reference)
    assert (out / "scores.parquet").read_bytes() == (vllm_reference / "scores.parquet").read_bytes()
    engine = read_manifest(out).engine
    assert engine["engine"] == "ray" and engine["replicas"] == 1 and engine["pipelines_run"] == 1


def test_ray_engine_mode_equals_vllm(ray_cluster, aime25_file, tmp_path):
    """Engine mode through Ray's actors: the same thinking budget, forced string and samples as in-process vLLM
    (DeepSeek-R1's template opens the thinking block, so the random model is forced at every budget)."""
    from conftest import shared_path
    from tiny_model import build_tiny_qwen3

    from budgeteval.generation.config import ModeSettings
    from budgeteval.rundir.store import ENGINE, read_task

    _, remember = ray_cluster
    model = build_tiny_qwen3(shared_path("tokenizers", "deepseek-r1-distill-qwen"), tmp_path / "tiny-r1")
    modes = ModeSettings(modes=("engine",), answer_tokens=4)
    outs = {backend: run(sweep_config(model, tmp_path / backend, BUDGETS, aime25_file, backend=backend, n=2, limit=2,
                                      modes=modes), progress=False)
            for backend in ("vllm", "ray")}
    remember()
    rows = {backend: sorted((r["problem_id"], r["sample_idx"], r["budget"], tuple(r["token_ids"]))
                            for r in read_task(out, "aime25", kind=ENGINE).to_pylist()) for backend, out in outs.items()}
    assert rows["ray"] == rows["vllm"] and len(rows["ray"]) == 2 * 2 * len(BUDGETS)
    assert all(len(ids) < budget + 16 for _, _, budget, ids in rows["ray"])  # forced at B, then 4 answer tokens


def test_killed_ray_driver_resumes_without_loss_or_duplicates(ray_cluster, vllm_reference, tiny_model, aime25_file,
                                                               tmp_path):
    address, remember = ray_cluster
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "budgeteval.cli", "run", "--backend", "ray", "--ray-address", address,
               "--model", str(tiny_model), "--tasks", "aime25", "--data", f"aime25={aime25_file}", "--limit", "3",
               "--n", "4", "--budgets", ",".join(map(str, BUDGETS)), "--temperature", "1.0", "--top-p", "0.95",
               "--top-k", "20", "--dtype", "float32", "--enforce-eager", "--problems-per-shard", "2",
               "--workers", "2", "--quiet", "--out", str(out)]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    parts = out / "generations" / "aime25"
    deadline = time.monotonic() + 300
    while not list(parts.glob("part-*.parquet")) and driver.poll() is None and time.monotonic() < deadline:
        remember()
        time.sleep(0.2)
    assert driver.poll() is None, f"the driver ended before it could be killed: {driver.stderr.read()[-2000:]}"
    os.kill(driver.pid, signal.SIGKILL)  # the driver only: its actors die with it
    driver.wait()
    assert len(list(parts.glob("part-*.parquet"))) == 1, "killed after the first of two chunks"
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    remember()
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # read_task refuses duplicate samples, so equality also says nothing was stored twice.
    assert stored_samples(out) == stored_samples(vllm_reference)
    assert (out / "scores.parquet").read_bytes() == (vllm_reference / "scores.parquet").read_bytes()
    assert read_manifest(out).engine["pipelines_run"] == 1  # only the missing chunk was generated
