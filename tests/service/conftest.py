"""Fixtures of the service tests: small real inputs, `corpus` commands run against a server, and
`corpus serve` running against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

# Fast stages for service tests: what is tested is where and how the work runs, not the filters.
FAST_CONFIG = """\
quality:
  lingua: {enabled: false}
  perplexity: {enabled: false}
tokenizer: {vocab_size: 512, val_fraction: 0.1}
"""


def write_input(folder: Path, table: pa.Table, shards: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-table.num_rows // shards)
    for i in range(shards):
        pq.write_table(table.slice(i * size, size), folder / f"part-{i:05d}.parquet")
    return folder


@pytest.fixture
def small_input(sample_table: pa.Table, tmp_path: Path) -> Path:
    """151 sample documents (every 60th, so every source is in it) in two shards."""
    return write_input(tmp_path / "input", sample_table.take(list(range(0, sample_table.num_rows, 60))))


def corpus(api_url: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """`corpus ARGS` in a subprocess against the Prefect server at `api_url`."""
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        env=dict(os.environ, PREFECT_API_URL=api_url),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def api(url: str, path: str, body: dict | None = None) -> dict | list:
    """One call to the Prefect REST API at `url` (GET, or POST with a body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}{path}", data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@contextmanager
def serving(api_url: str, config: Path, log_path: Path) -> Iterator[subprocess.Popen]:
    """`corpus serve --config CONFIG` in a subprocess against the server, yielded once it has
    registered its deployments; stopped afterwards. It looks for runs every 2 s (Prefect's
    default 10 s would make every test wait)."""
    from tests.conftest import running

    started = datetime.now(UTC)

    def registered() -> bool:
        try:
            found = api(api_url, "/deployments/name/corpus_scheduled_build/corpus-build")
        except OSError:
            return False
        return datetime.fromisoformat(found["updated"]) >= started

    env = dict(os.environ, PREFECT_API_URL=api_url, PREFECT_RUNNER_POLL_FREQUENCY="2")
    command = [sys.executable, "-m", "flows.cli", "serve", "--config", str(config)]
    with running(command, env, log_path, registered, 180) as process:
        yield process


def said(api_url: str, flow_run_id: str, words: str, wait_s: float = 60, subflows: bool = True) -> bool:
    """Whether the flow run (or, with `subflows`, a run inside it) logged `words`; logs reach the
    API in batches, so poll a while."""
    deadline = time.monotonic() + wait_s
    while True:
        runs = [flow_run_id, *(subflow_runs(api_url, flow_run_id) if subflows else [])]
        logs = api(api_url, "/logs/filter", {"logs": {"flow_run_id": {"any_": runs}}})
        if any(words in entry["message"] for entry in logs):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(2)


def subflow_runs(api_url: str, flow_run_id: str) -> list[str]:
    """The ids of every flow run inside this one (its sub-flows, theirs, ...)."""
    found, frontier = [], [flow_run_id]
    while frontier:
        tasks = api(api_url, "/task_runs/filter", {"task_runs": {"flow_run_id": {"any_": frontier}}})
        children = (
            api(api_url, "/flow_runs/filter", {"flow_runs": {"parent_task_run_id": {"any_": [t["id"] for t in tasks]}}})
            if tasks
            else []
        )
        frontier = [child["id"] for child in children]
        found += frontier
    return found
