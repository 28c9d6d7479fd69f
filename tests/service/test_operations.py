"""Operating the scheduled build against a real Prefect server and `corpus serve`, as a team
leaves it running: a bad shard is quarantined and never blocks the schedule, a fault fails one
run and no more, overlapping runs skip (or wait), a cancelled build stops its workers and stays
cancelled until asked, and `corpus run-deployment` refuses in one line what a run could not do.

Builds run the test-only `nap` stage (tests/service/nap_stage.py): it keeps every document after
a configurable sleep, so a build lasts as long as a test needs, and can kill its worker.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.service.conftest import api, corpus, said, serving, write_input

pytestmark = pytest.mark.slow


def nap_config(seconds: float = 0.0, die_on: str = "", **service: str) -> str:
    """A run's `config` parameter: the nap stage, two workers."""
    config = {"plugins": ["tests.service.nap_stage"], "workers": 2, "nap": {"seconds": seconds, "die_on": die_on}}
    return json.dumps(config | {"service": service})


@pytest.fixture(scope="module")
def ops(prefect_server, tmp_path_factory):
    """`corpus serve` whose scheduled deployment runs the nap stage; each test passes its own
    `input`, `out` and `config` per run. Yields the serve process."""
    root = tmp_path_factory.mktemp("ops")
    config = root / "service.yaml"
    config.write_text(
        "plugins: [tests.service.nap_stage]\nworkers: 2\n"
        f"service: {{input: {root / 'incoming'}, out: {root / 'scheduled'}, stages: [nap]}}\n"
    )
    with serving(prefect_server, config, root / "serve.log") as process:
        yield process


def fire(
    api_url: str, input_dir: Path, out: Path, *params: str, watch: bool = True
) -> tuple[subprocess.CompletedProcess, dict]:
    """`corpus run-deployment corpus-build` on this input and out; the command and the flow run
    as the API has it."""
    args = ["run-deployment", "corpus-build", "--param", f"input={input_dir}", "--param", f"out={out}"]
    for param in params:
        args += ["--param", param]
    done = corpus(api_url, *args, *(["--watch"] if watch else []))
    found = re.search(r"\(([0-9a-f-]{36})\)", done.stdout)
    assert found, done.stdout + done.stderr
    return done, api(api_url, f"/flow_runs/{found.group(1)}")


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what}")
        time.sleep(0.5)


def build_state(build_dir: Path) -> str:
    try:
        return json.loads((build_dir / "status.json").read_text())["state"]
    except (OSError, ValueError):
        return ""


def pool_workers(serve: subprocess.Popen) -> list[psutil.Process]:
    """The worker-pool processes the runs of `corpus serve` started: the children of a run's fork
    server (flows/workers.py)."""
    servers = [
        p
        for p in psutil.Process(serve.pid).children(recursive=True)
        if "multiprocessing.forkserver" in " ".join(p.cmdline())
        and "multiprocessing.forkserver" not in " ".join(p.parent().cmdline())
    ]
    return [worker for server in servers for worker in server.children()]


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_a_bad_shard_is_quarantined_the_rest_built_and_it_is_not_taken_again(
    prefect_server, ops, small_input, sample_table, tmp_path
):
    out = tmp_path / "scheduled"
    bad = small_input / "part-00002.parquet"
    bad.write_bytes(b"PAR1 this is not a Parquet file")
    done, run = fire(prefect_server, small_input, out, f"config={nap_config()}")
    assert done.returncode == 0, done.stderr
    assert (run["state"]["type"], run["state"]["name"]) == ("COMPLETED", "Completed")
    manifest = json.loads((out / "build-0001" / "manifest.json").read_text())
    [quarantined] = manifest["quarantined"]
    assert quarantined["path"] == str(bad)
    assert quarantined["reason"].startswith(f"{bad}: unreadable Parquet")
    assert [s["path"] for s in manifest["input_shards"]] == [str(small_input / f"part-0000{i}.parquet") for i in (0, 1)]
    assert manifest["stages"]["nap"]["docs_in"] == 151
    assert said(prefect_server, run["id"], f"quarantined: {bad}: unreadable Parquet")
    shown = corpus(prefect_server, "status", str(out))
    assert re.search(r"build-0001 +done .* nap +151 -> 151  1 quarantined", shown.stdout), shown.stdout
    assert f"    quarantined: {bad}: unreadable Parquet" in shown.stdout

    # The same bad file is not taken again: the next run has nothing new and fails nothing.
    done, run = fire(prefect_server, small_input, out, f"config={nap_config()}")
    assert run["state"]["type"] == "COMPLETED" and not (out / "build-0002").exists()
    assert said(prefect_server, run["id"], "no new input")

    # Rewritten with good documents it is new input, built by the next run.
    fixed = sample_table.slice(0, 20)
    pq.write_table(fixed.set_column(0, "id", pa.array([f"fixed-{i}" for i in range(20)])), bad)
    done, run = fire(prefect_server, small_input, out, f"config={nap_config()}")
    assert run["state"]["type"] == "COMPLETED", done.stderr
    manifest = json.loads((out / "build-0002" / "manifest.json").read_text())
    assert [s["path"] for s in manifest["input_shards"]] == [str(bad)] and manifest["quarantined"] == []


def test_a_failed_build_fails_one_run_is_held_while_nothing_changes_and_goes_on_without_a_removed_file(
    prefect_server, ops, sample_table, tmp_path
):
    incoming = write_input(tmp_path / "incoming", sample_table.slice(0, 90), shards=3)
    killer = pq.read_table(incoming / "part-00001.parquet")["id"][0].as_py()  # its shard kills its worker
    out = tmp_path / "scheduled"
    config = f"config={nap_config(die_on=killer)}"

    done, run = fire(prefect_server, incoming, out, config)
    assert done.returncode == 1 and run["state"]["type"] == "FAILED"
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "ended Failed" in lines[0] and "terminated abruptly" in lines[0], done.stderr
    assert build_state(out / "build-0001") == "failed"

    # Nothing changed: the next run does not try again, and does not fail.
    done, run = fire(prefect_server, incoming, out, config)
    assert done.returncode == 0, done.stderr
    assert (run["state"]["type"], run["state"]["name"]) == ("COMPLETED", "Skipped")
    assert (
        "build-0001 failed" in run["state"]["message"]
        and "Nothing it depends on has changed" in run["state"]["message"]
    )

    # The file removed: the build resumes without it (and from scratch: shard names shift).
    (incoming / "part-00001.parquet").unlink()
    done, run = fire(prefect_server, incoming, out, config)
    assert run["state"]["type"] == "COMPLETED", done.stderr
    manifest = json.loads((out / "build-0001" / "manifest.json").read_text())
    assert [s["path"] for s in manifest["input_shards"]] == [str(incoming / f"part-0000{i}.parquet") for i in (0, 2)]
    assert manifest["stages"]["nap"]["docs_in"] == 60
    plan = json.loads((out / "build-0001" / "scheduled.json").read_text())
    assert plan["finished"] and plan["dropped"] == [str(incoming / "part-00001.parquet")]


def test_a_missing_input_folder_fails_one_run_and_the_next_skip_until_it_is_back(
    prefect_server, ops, small_input, tmp_path
):
    incoming, out = tmp_path / "not-mounted", tmp_path / "scheduled"
    done, run = fire(prefect_server, incoming, out, f"config={nap_config()}")
    assert run["state"]["type"] == "FAILED" and "not-mounted: no such file or folder" in done.stderr
    done, run = fire(prefect_server, incoming, out, f"config={nap_config()}")
    assert (run["state"]["type"], run["state"]["name"]) == ("COMPLETED", "Skipped"), done.stderr
    assert run["state"]["message"].startswith("still failing as at") and "not-mounted" in run["state"]["message"]
    small_input.rename(incoming)
    done, run = fire(prefect_server, incoming, out, f"config={nap_config()}")
    assert run["state"]["name"] == "Completed" and (out / "build-0001" / "manifest.json").exists()


def test_a_run_that_finds_a_build_running_skips_or_by_config_waits(prefect_server, ops, sample_table, tmp_path):
    incoming = write_input(tmp_path / "incoming", sample_table.slice(0, 60), shards=2)
    out = tmp_path / "scheduled"
    # Long enough to outlast the next two runs' starts on busy cores (30 s did not, at load 19).
    _, first = fire(prefect_server, incoming, out, f"config={nap_config(seconds=90)}", watch=False)
    wait_for(lambda: build_state(out / "build-0001") == "running", 90, "the first build runs")

    done, second = fire(prefect_server, incoming, out, f"config={nap_config()}")
    assert done.returncode == 0, done.stderr
    assert (second["state"]["type"], second["state"]["name"]) == ("COMPLETED", "Skipped")
    assert f"is running (run {first['name']}" in second["state"]["message"]

    write_input(tmp_path / "more", sample_table.slice(60, 30), shards=1).joinpath("part-00000.parquet").rename(
        incoming / "part-00002.parquet"
    )
    done, third = fire(prefect_server, incoming, out, f"config={nap_config(overlap='wait')}")
    assert done.returncode == 0 and third["state"]["name"] == "Completed", done.stderr
    assert said(prefect_server, third["id"], "waiting for it to end (service.overlap: wait)")
    assert api(prefect_server, f"/flow_runs/{first['id']}")["state"]["type"] == "COMPLETED"
    assert build_state(out / "build-0001") == build_state(out / "build-0002") == "done"
    second_inputs = json.loads((out / "build-0002" / "manifest.json").read_text())["input_shards"]
    assert [s["path"] for s in second_inputs] == [str(incoming / "part-00002.parquet")]


def test_a_cancelled_build_stops_its_workers_and_is_resumed_only_when_asked(
    prefect_server, ops, sample_table, tmp_path
):
    incoming = write_input(tmp_path / "incoming", sample_table.slice(0, 80), shards=4)
    out = tmp_path / "scheduled"
    _, run = fire(prefect_server, incoming, out, f"config={nap_config(seconds=60)}", watch=False)
    wait_for(lambda: build_state(out / "build-0001") == "running" and pool_workers(ops), 90, "the build's pool runs")
    time.sleep(3)  # into the shards' naps
    workers = pool_workers(ops)

    cancelled = corpus(prefect_server, "cancel", run["name"])
    assert cancelled.returncode == 0, cancelled.stderr
    wait_for(lambda: api(prefect_server, f"/flow_runs/{run['id']}")["state"]["type"] == "CANCELLED", 60, "cancelled")
    wait_for(lambda: not alive(workers), 30, "the pool's workers are gone")
    assert build_state(out / "build-0001") == "cancelled"
    listed = corpus(prefect_server, "runs", "--limit", "50")
    assert re.search(rf"{run['name']} +corpus_scheduled_build +Cancelled", listed.stdout), listed.stdout
    assert re.search(r"build-0001 +cancelled ", corpus(prefect_server, "status", str(out)).stdout)

    done, again = fire(prefect_server, incoming, out, f"config={nap_config()}")
    assert (again["state"]["type"], again["state"]["name"]) == ("COMPLETED", "Skipped"), done.stderr
    assert "build-0001 was cancelled" in again["state"]["message"] and "retry=true" in again["state"]["message"]
    assert "Skipped: build-0001 was cancelled" in " ".join(done.stdout.split())

    done, retried = fire(prefect_server, incoming, out, f"config={nap_config()}", "retry=true")
    assert retried["state"]["name"] == "Completed", done.stderr
    assert json.loads((out / "build-0001" / "scheduled.json").read_text())["finished"]
    assert json.loads((out / "build-0001" / "manifest.json").read_text())["stages"]["nap"]["docs_in"] == 80


def test_run_deployment_refuses_a_missing_parameter_or_an_unknown_stage_in_one_line_before_any_run(prefect_server, ops):
    def runs() -> int:
        return len(api(prefect_server, "/flow_runs/filter", {"limit": 200}))

    before = runs()
    for args, words in (
        (["build"], "error: build: parameter 'input' is required: pass --param input=VALUE."),
        (["build", "--param", "input=x", "--param", "out=y", "--param", "stages=[bogus]"], "unknown stage 'bogus'"),
        (["corpus-build", "--param", "stages=[quality, bogus]"], "unknown stage 'bogus'"),
        (["build", "--param", "inptu=x"], "--param inptu: build takes no such parameter"),
    ):
        done = corpus(prefect_server, "run-deployment", *args)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr
    assert runs() == before


def test_scheduled_sources_build_only_the_source_with_a_new_shard_against_what_earlier_builds_kept(
    prefect_server, ops, sample_table, tmp_path
):
    """`service.sources` through `corpus serve`: the first run builds every source; a new shard
    in one source is the next build, of that source alone (its dedup against the earlier builds'
    documents, its own tokenizer and mixture), and then nothing is new."""
    web = write_input(tmp_path / "web", sample_table.take(list(range(0, 1200, 20))), shards=2)
    books = write_input(tmp_path / "books", sample_table.take(list(range(10, 600, 20))), shards=1)
    config = {
        "plugins": ["tests.service.nap_stage"],
        "workers": 2,
        "tokenizer": {"vocab_size": 512, "val_fraction": 0.1},
        "service": {
            "sources": [
                {"name": "web", "input": str(web), "kind": "web", "weight": 0.6},
                {"name": "books", "input": str(books), "kind": "books", "weight": 0.4},
            ]
        },
    }
    out = tmp_path / "scheduled"
    run_params = (f"config={json.dumps(config)}", "stages=[dedup, tokenizer]")
    done, run = fire(prefect_server, tmp_path / "unused", out, *run_params)
    assert run["state"]["type"] == "COMPLETED", done.stdout + done.stderr
    first = json.loads((out / "build-0001" / "manifest.json").read_text())
    assert [(s["source"], Path(s["path"]).parent) for s in first["input_shards"]] == [
        ("web", web),
        ("web", web),
        ("books", books),
    ]
    mixture = json.loads((out / "build-0001" / "tokens" / "mixture.json").read_text())
    assert set(mixture["sources"]) == {"web", "books"}

    # A new books shard: ten documents no build had, and a copy of a web document already built.
    web_docs = pq.read_table(web / "part-00000.parquet")
    fresh = sample_table.take(list(range(2000, 2010)))
    copy = web_docs.slice(0, 1).set_column(0, "id", pa.array(["copy-of-a-web-document"]))
    pq.write_table(pa.concat_tables([fresh, copy]), books / "part-00001.parquet")
    done, run = fire(prefect_server, tmp_path / "unused", out, *run_params)
    assert run["state"]["type"] == "COMPLETED", done.stdout + done.stderr
    assert said(prefect_server, run["id"], "new shard(s) (books 1) into")
    second = json.loads((out / "build-0002" / "manifest.json").read_text())
    assert [(s["source"], s["path"]) for s in second["input_shards"]] == [("books", str(books / "part-00001.parquet"))]
    dedup = second["stages"]["dedup"]
    assert set(dedup["sources"]) == {"books"} and dedup["docs_in"] == 11
    removed = pq.read_table(out / "build-0002" / "dedup" / "removed").to_pylist()
    assert {"id": "copy-of-a-web-document", "reason": "duplicate_of_earlier_build"} in [
        {"id": row["id"], "reason": row["reason"]} for row in removed
    ]
    mixture = json.loads((out / "build-0002" / "tokens" / "mixture.json").read_text())
    assert set(mixture["sources"]) == {"books"}

    done, run = fire(prefect_server, tmp_path / "unused", out, *run_params)
    assert run["state"]["type"] == "COMPLETED" and not (out / "build-0003").exists()
    assert said(prefect_server, run["id"], "no new input")
