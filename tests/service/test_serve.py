"""`corpus serve` against a real Prefect server: deployments run to COMPLETED (read back from the
API), and the scheduled deployment builds only new shards, dedups them against earlier builds
and says so when there is nothing new."""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import running
from tests.service.conftest import FAST_CONFIG, corpus, write_input

pytestmark = pytest.mark.slow


def api(url: str, path: str, body: dict | None = None) -> dict | list:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}{path}", data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def served(prefect_server, sample_table, tmp_path_factory):
    """`corpus serve` in a subprocess; yields the folder its scheduled deployment reads and
    writes. Its input starts with two shards of every 60th sample document."""
    root = tmp_path_factory.mktemp("served")
    write_input(root / "incoming", sample_table.take(list(range(0, sample_table.num_rows, 60))))
    config = root / "service.yaml"
    config.write_text(
        FAST_CONFIG + f"service:\n  input: {root / 'incoming'}\n  out: {root / 'scheduled'}\n"
        "  stages: [quality, dedup]\n"
    )
    command = [sys.executable, "-m", "flows.cli", "serve", "--config", str(config)]

    def registered() -> bool:  # the deployments exist once serve has registered them
        try:
            api(prefect_server, "/deployments/name/corpus_scheduled_build/corpus-build")
            return True
        except OSError:
            return False

    with running(command, dict(os.environ, PREFECT_API_URL=prefect_server), root / "serve.log", registered, 180):
        yield root


def shards(folder: Path, columns: list[str] | None = None) -> pa.Table:
    """The part-*.parquet of one folder (a directory read would take removed/ and _signatures/ too)."""
    return pa.concat_tables(pq.read_table(p, columns=columns) for p in sorted(folder.glob("part-*.parquet")))


def run_deployment(api_url: str, *args: str) -> dict:
    """`corpus run-deployment ARGS --watch`; returns the flow run as the API has it."""
    done = corpus(api_url, "run-deployment", *args, "--watch")
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = re.search(r"\(([0-9a-f-]{36})\)", done.stdout).group(1)
    return api(api_url, f"/flow_runs/{run_id}")


def test_adhoc_stage_deployment_runs_to_completed(prefect_server, served, small_input, tmp_path):
    out = tmp_path / "adhoc"
    run = run_deployment(prefect_server, "dedup", "--param", f"input={small_input}", "--param", f"out={out}")
    assert run["state"]["type"] == "COMPLETED"
    assert run["parameters"]["stages"] == ["dedup"]
    assert sorted(p.name for p in (out / "dedup").glob("part-*.parquet")) == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    assert json.loads((out / "manifest.json").read_text())["conservation"]["ok"]


def test_build_against_a_server_is_recorded_completed_in_its_api(prefect_server, small_input, tmp_path):
    out = tmp_path / "direct"
    done = corpus(prefect_server, "build", "--input", str(small_input), "--out", str(out), "--stages", "dedup")
    assert done.returncode == 0, done.stderr
    runs = api(prefect_server, "/flow_runs/filter", {"flows": {"name": {"any_": ["corpus_build"]}}})
    [run] = [r for r in runs if r["parameters"].get("out") == str(out)]
    assert run["state"]["type"] == "COMPLETED"


def test_scheduled_builds_take_only_new_shards_and_drop_earlier_documents(prefect_server, served, sample_table):
    scheduled = served / "scheduled"
    run_deployment(prefect_server, "corpus-build")

    # A new shard: 30 documents no build has seen, and copies (new ids) of 5 the first build kept.
    unseen = sample_table.take(list(range(30, sample_table.num_rows, 60))[:30])
    kept_rows = shards(scheduled / "build-0001" / "dedup", ["id", "text", "origin"]).slice(0, 5)
    copies = kept_rows.set_column(0, "id", pa.array([f"copy-of-{i}" for i in kept_rows["id"].to_pylist()]))
    pq.write_table(
        pa.concat_tables([unseen.select(["id", "text", "origin"]), copies]), served / "incoming" / "part-00002.parquet"
    )

    run_deployment(prefect_server, "corpus-build")
    second = json.loads((scheduled / "build-0002" / "manifest.json").read_text())
    assert [s["path"] for s in second["input_shards"]] == [str(served / "incoming" / "part-00002.parquet")]
    assert second["stages"]["quality"]["docs_in"] == 35
    removed = shards(scheduled / "build-0002" / "dedup" / "removed").to_pylist()
    reasons = {row["id"]: row["reason"] for row in removed}
    assert {i: reasons.get(i) for i in copies["id"].to_pylist()} == dict.fromkeys(
        copies["id"].to_pylist(), "duplicate_of_earlier_build"
    )
    second_kept = set(shards(scheduled / "build-0002" / "dedup")["id"].to_pylist())
    assert second_kept and second_kept <= set(unseen["id"].to_pylist())

    third = run_deployment(prefect_server, "corpus-build")
    assert not (scheduled / "build-0003").exists()
    assert said(prefect_server, third["id"], "no new input")


def said(api_url: str, flow_run_id: str, words: str, wait_s: float = 60) -> bool:
    """Whether the flow run logged `words`; run logs reach the API in batches, so poll a while."""
    deadline = time.monotonic() + wait_s
    while True:
        logs = api(api_url, "/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run_id]}}})
        if any(words in entry["message"] for entry in logs):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(2)
