"""Stopping `corpus serve` mid-build against a real Prefect server: the runs in flight end (not
Running for ever), their worker pool goes with them, a run started while nothing serves is
warned about and given up on, and the next `corpus serve` resumes the build."""

from __future__ import annotations

import json
import re
import signal

import psutil
import pytest

from tests.service.conftest import api, corpus, said, serving, subflow_runs, write_input
from tests.service.test_operations import alive, build_state, fire, pool_workers, wait_for

pytestmark = pytest.mark.slow
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


def test_sigterm_stops_the_runs_and_their_pool_and_a_restart_resumes_the_build(prefect_server, sample_table, tmp_path):
    incoming = write_input(tmp_path / "incoming", sample_table.slice(0, 80), shards=4)
    out = tmp_path / "scheduled"
    config = tmp_path / "service.yaml"
    config.write_text(
        f"plugins: [tests.service.nap_stage]\nworkers: 2\nnap: {{seconds: 12}}\n"
        f"service: {{input: {incoming}, out: {out}, stages: [nap]}}\n"
    )
    with serving(prefect_server, config, tmp_path / "serve.log") as serve:
        _, run = fire(prefect_server, incoming, out, watch=False)
        done_records = out / "build-0001" / "nap" / "_done"
        # Stopped with two shards finished and two in their naps.
        wait_for(lambda: len(list(done_records.glob("*.json"))) == 2, 120, "two shards done")
        wait_for(lambda: len(pool_workers(serve)) == 2, 30, "the next two shards running")
        processes = psutil.Process(serve.pid).children(recursive=True)
        finished = {p.name: p.stat().st_mtime_ns for p in done_records.glob("*.json")}
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=90) == 0
    assert not alive(processes), [p.cmdline() for p in alive(processes)]
    runs = [run["id"], *subflow_runs(prefect_server, run["id"])]
    states = {
        r["id"]: r["state"]["type"]
        for r in api(prefect_server, "/flow_runs/filter", {"flow_runs": {"id": {"any_": runs}}})
    }
    assert len(states) == 3 and set(states.values()) <= FINAL, states  # scheduled, corpus_build, nap
    tasks = api(prefect_server, "/task_runs/filter", {"task_runs": {"flow_run_id": {"any_": runs}}})
    assert {t["state"]["type"] for t in tasks} <= FINAL, [(t["name"], t["state"]["type"]) for t in tasks]
    assert build_state(out / "build-0001") == "interrupted"

    # Nothing serves the deployment now: a watched run is warned about, then given up on.
    waited = corpus(prefect_server, "run-deployment", "corpus-build", "--watch", "--start-timeout", "8")
    assert waited.returncode == 1
    assert "warning: no `corpus serve` polls this deployment" in waited.stderr
    assert "did not start within 8 s: nothing serves its deployment" in waited.stderr
    given_up = re.search(r"\(([0-9a-f-]{36})\)", waited.stdout).group(1)
    assert api(prefect_server, f"/flow_runs/{given_up}")["state"]["type"] == "CANCELLED"

    with serving(prefect_server, config, tmp_path / "serve-again.log"):
        done, resumed = fire(prefect_server, incoming, out)
    assert resumed["state"]["name"] == "Completed", done.stderr
    assert said(prefect_server, resumed["id"], "resuming the unfinished")
    assert {p.name: p.stat().st_mtime_ns for p in done_records.glob("*.json") if p.name in finished} == finished
    assert json.loads((out / "build-0001" / "manifest.json").read_text())["stages"]["nap"]["docs_in"] == 80
