"""Where things are in a pushed dataset repository: its folder and file names and the configs reading them.

Only this module spells these names; `hub` writes and checks the files, `card` lists the configs.
"""

CARD_NAME = "README.md"
"""The dataset card."""
DATA_DIR = "data"
"""Folder of the tables: `data/<table>/<run>/...`."""
RUNS_DIR = "runs"
"""Folder of each run's provenance: `runs/<run>/manifest.json` and `runs/<run>/push.json`."""
FIGURE_PATH = "figures/accuracy.png"
"""The accuracy-vs-budget figure of the runs of a push, shown in the card."""
PUSH_RECORD = "push.json"
"""`runs/<run>/push.json`: the run's tasks, the gated tasks it includes, its files and their hash."""

TABLE_CONFIGS = ("scores", "metrics", "generations", "problems")
"""The configs every push writes."""
STORE_CONFIGS = ("continuations", "conditioned", "engine")
"""The configs of the forced-, conditioned- and engine-mode stores, in a repository holding a run with them."""

CONFIG_FILES = {
    "scores": f"{DATA_DIR}/scores/*/*.parquet",
    "metrics": f"{DATA_DIR}/metrics/*/*.parquet",
    "generations": f"{DATA_DIR}/generations/*/*/*.parquet",
    "problems": f"{DATA_DIR}/problems/*/*.parquet",
    "continuations": f"{DATA_DIR}/continuations/*/*/*.parquet",
    "conditioned": f"{DATA_DIR}/conditioned/*/*/*.parquet",
    "engine": f"{DATA_DIR}/engine/*/*/*.parquet",
}
"""Config name -> the files it reads, for every run the repository holds (the card's `configs:`)."""


def scores_file(run: str) -> str:
    """`data/scores/<run>/scores.parquet`."""
    return f"{DATA_DIR}/scores/{run}/scores.parquet"


def metrics_file(run: str) -> str:
    """`data/metrics/<run>/metrics.parquet`."""
    return f"{DATA_DIR}/metrics/{run}/metrics.parquet"


def problems_file(run: str, task: str) -> str:
    """`data/problems/<run>/<task>.parquet`."""
    return f"{DATA_DIR}/problems/{run}/{task}.parquet"


def store_file(store: str, run: str, task: str, shard_name: str) -> str:
    """`data/<store>/<run>/<task>/<shard file name>` (store: generations, continuations, conditioned, engine):
    one file per shard of the run's store."""
    return f"{DATA_DIR}/{store}/{run}/{task}/{shard_name}"


def configs_with_files(paths) -> list[str]:
    """The configs a repository holding the files `paths` has: every table, and each store config with a file."""
    present = {path.split("/")[1] for path in paths if path.startswith(f"{DATA_DIR}/") and path.count("/") >= 2}
    return list(TABLE_CONFIGS) + [name for name in STORE_CONFIGS if name in present]


def run_files_patterns(run: str) -> list[str]:
    """Globs matching every file of one run in the repository (what --replace deletes)."""
    return [f"{DATA_DIR}/*/{run}/*", f"{DATA_DIR}/*/{run}/*/*", f"{RUNS_DIR}/{run}/*"]
