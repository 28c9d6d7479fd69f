"""Shared fixtures: the committed sample shards, a small slice of them, the shared data folder."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def builtin_stages_after_each_test() -> Iterator[None]:
    """A plugin stage that a test brought into this process leaves with the test, so later builds
    and the config reference see only the built-in stages. A plugin is imported here without any
    test asking: the Dask scheduler of an in-process LocalCluster unpickles the shard jobs that
    name the plugin's stage."""
    from pipeline.stages import registry

    before = registry.names()
    yield
    for name in set(registry.names()) - set(before):
        registry.unregister(name)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip("needs ../shared/data (development data, not part of a clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ground_truth() -> dict:
    return json.loads((SAMPLE / "ground_truth.json").read_text())


@pytest.fixture(scope="session")
def sample_table() -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in sorted(SAMPLE.rglob("part-*.parquet")))


@pytest.fixture(scope="session")
def sample_slice(tmp_path_factory, sample_table: pa.Table, ground_truth: dict) -> Path:
    """~700 sample documents in 3 shards: every kind of planted defect (with the originals of the
    planted duplicates) plus a seeded draw of ordinary documents, shuffled across shards."""
    rng = random.Random(7)
    wanted: set[str] = set()
    for kind in ("exact_duplicates", "normalised_duplicates"):
        for copy, original in rng.sample(sorted(ground_truth[kind].items()), 25):
            wanted |= {copy, original}
    for copy, info in rng.sample(sorted(ground_truth["near_duplicates"].items()), 50):
        wanted |= {copy, info["original"]}
    wanted |= set(rng.sample(sorted(ground_truth["pii"]), 60))
    wanted |= set(rng.sample(sorted(ground_truth["junk"]), 30))
    others = sorted(set(sample_table["id"].to_pylist()) - wanted)
    wanted |= set(rng.sample(others, 400))
    ids = sorted(wanted)
    rng.shuffle(ids)
    by_id = {row["id"]: row for row in sample_table.to_pylist()}
    out = tmp_path_factory.mktemp("sample_slice")
    for shard in range(3):
        rows = [by_id[i] for i in ids[shard::3]]
        pq.write_table(pa.Table.from_pylist(rows, schema=sample_table.schema), out / f"part-{shard:05d}.parquet")
    return out


# A build small enough for tests: a tiny tokenizer and a model trained for a few dozen steps.
TEST_CONFIG = {
    "tokenizer": {"vocab_size": 1024, "val_fraction": 0.1},
    "pretrain": {
        "n_layer": 2,
        "n_head": 2,
        "n_embd": 64,
        "block_size": 64,
        "batch_size": 8,
        "max_steps": 60,
        "eval_interval": 20,
        "eval_batches": 4,
        "time_budget_s": 120,
    },
}


@contextmanager
def running(
    command: list[str],
    env: dict,
    log_path: Path,
    ready: Callable[[], bool],
    timeout_s: float,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen]:
    """A long-lived subprocess (a server), output to `log_path`, yielded once `ready()` holds;
    terminated afterwards. Fails the test, naming the log, if it dies or is not ready in time."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        deadline = time.monotonic() + timeout_s
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"{' '.join(command[2:4])} did not come up: see {log_path}")
            time.sleep(1)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory) -> Iterator[str]:
    """A real `prefect server start` on loopback (SQLite in a temp PREFECT_HOME); yields its API
    URL. Builds run as subprocesses against it, so none starts its own ephemeral server."""
    home = tmp_path_factory.mktemp("prefect_home")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.pop("PREFECT_API_URL", None)
    url = f"http://127.0.0.1:{port}/api"
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with running(command, env, home / "server.log", lambda: answers(f"{url}/health"), timeout_s=240):
        yield url
