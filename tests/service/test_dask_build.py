"""`corpus build --dask-address`: shard jobs run on a real Dask cluster (worker processes on
loopback) and the build's outputs are byte-identical to a local build's; a shard that kills its
workers, or a cluster without workers, fails the build in one line that says what happened."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import dask
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster

from flows.cluster import DaskTasks
from pipeline.config import DedupConfig
from pipeline.dedup.distributed import find_duplicates_distributed, link, plan
from pipeline.dedup.methods import find_duplicates, signatures
from pipeline.errors import BuildError
from pipeline.shards import write_shard
from tests.conftest import running
from tests.service.conftest import FAST_CONFIG, api, corpus
from tests.service.dying_tasks import Dying
from tests.test_build_flow import output_digests

pytestmark = pytest.mark.slow
STAGES = "dedup,tokenizer"  # shard jobs of both kinds, both global steps, every output type


def test_build_on_a_dask_cluster_matches_the_local_build(prefect_server, small_input, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(FAST_CONFIG)
    local = corpus(
        prefect_server,
        "build",
        "--input",
        str(small_input),
        "--out",
        str(tmp_path / "local"),
        "--config",
        str(config),
        "--stages",
        STAGES,
        "--workers",
        "2",
    )
    assert local.returncode == 0, local.stderr
    with LocalCluster(
        processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        on_dask = corpus(
            prefect_server,
            "build",
            "--input",
            str(small_input),
            "--out",
            str(tmp_path / "dask"),
            "--config",
            str(config),
            "--stages",
            STAGES,
            "--dask-address",
            cluster.scheduler_address,
        )
        ran_there = {prefix for prefix in cluster.scheduler.task_prefixes}
    assert on_dask.returncode == 0, on_dask.stderr
    # The shard jobs ran on the cluster's workers, each named by its step and shard.
    assert {"dedup_signatures-part", "dedup-part", "encode-part"} <= ran_there
    digests = output_digests(tmp_path / "dask")
    assert any(name.endswith(".bin") for name in digests) and "tokenizer/tokenizer.json" in digests
    assert digests == output_digests(tmp_path / "local")


def test_unreachable_dask_scheduler_is_one_line_naming_the_address(prefect_server, small_input, tmp_path):
    done = corpus(
        prefect_server,
        "build",
        "--input",
        str(small_input),
        "--out",
        str(tmp_path / "b"),
        "--stages",
        "dedup",
        "--dask-address",
        "tcp://127.0.0.1:9",
    )
    assert done.returncode == 2
    assert "error: --dask-address tcp://127.0.0.1:9: cannot reach a Dask scheduler" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_shard_that_kills_worker_after_worker_fails_the_build_naming_the_shard(prefect_server, small_input, tmp_path):
    killer = pq.read_table(small_input / "part-00001.parquet")["id"][0].as_py()
    # Dask gives a task up after it killed allowed-failures + 1 workers (3 + 1 by default).
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        LocalCluster(
            processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as cluster,
    ):
        done = corpus(
            prefect_server,
            "build",
            "--input",
            str(small_input),
            "--out",
            str(tmp_path / "b"),
            "--stages",
            "nap",
            *("--set", "plugins=[tests.service.nap_stage]", "--set", f"nap.die_on={killer}"),
            *("--dask-address", cluster.scheduler_address),
        )
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"error: nap on shard part-00001 ({small_input / 'part-00001.parquet'}): its job killed 2 Dask workers in a row"
    )
    assert "more memory than a worker has" in lines[0] and "run_job" not in lines[0]


@pytest.fixture
def lone_worker(tmp_path):
    """A Dask scheduler and one worker (no nanny, so that a killed worker stays dead) as processes;
    yields the scheduler's address and the worker process."""
    scheduler_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    with (
        running(
            [
                *dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            dict(os.environ),
            tmp_path / "scheduler.log",
            scheduler_file.exists,
            60,
        ),
        running(
            [
                *dask,
                "worker",
                "--no-nanny",
                "--nthreads",
                "1",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            dict(os.environ),
            tmp_path / "worker.log",
            lambda: True,
            60,
        ) as worker,
        Client(scheduler_file=str(scheduler_file), timeout=60) as client,
    ):
        client.wait_for_workers(1, timeout=60)
        yield client, worker


def test_a_cluster_that_lost_every_worker_says_so_and_fails_the_build_after_the_timeout(
    prefect_server, small_input, tmp_path, lone_worker
):
    client, worker = lone_worker
    address = client.scheduler.address
    command = [sys.executable, "-m", "flows.cli", "build", "--input", str(small_input), "--out", str(tmp_path / "b")]
    command += ["--stages", "nap", "--set", "plugins=[tests.service.nap_stage]", "--set", "nap.seconds=30"]
    command += ["--set", "dask_worker_timeout_s=10", "--dask-address", address]
    build = subprocess.Popen(
        command,
        env=dict(os.environ, PREFECT_API_URL=prefect_server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    while not any(client.processing().values()):  # a shard job is on the worker
        assert build.poll() is None and time.monotonic() < deadline, build.communicate()
        time.sleep(0.5)
    worker.kill()
    lost = time.monotonic()
    _, stderr = build.communicate(timeout=180)
    waited = time.monotonic() - lost
    assert build.returncode == 1, stderr
    assert f"Dask: no worker at {address}; the build waits for one and fails after 10 s" in stderr
    [line] = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: --dask-address {address}: no Dask worker for ")
    assert "(dask_worker_timeout_s=10). Start workers" in line
    assert 10 < waited < 60, waited
    logs = api(prefect_server, "/logs/filter", {"logs": {"level": {"ge_": 30}}})
    assert any(f"Dask: no worker at {address}" in entry["message"] for entry in logs)


# The clustering in tasks (pipeline/dedup/distributed.py) from the first documents on.
IN_TASKS = ("--set", "dedup.containment=false", "--set", "dedup.cluster_partition_rows=40")


def test_dedup_clustering_tasks_on_the_cluster_match_the_local_build_and_the_manifest_says_where(
    prefect_server, small_input, tmp_path
):
    build = ("build", "--input", str(small_input), "--stages", "dedup", *IN_TASKS)
    local = corpus(prefect_server, *build, "--out", str(tmp_path / "local"), "--workers", "2")
    assert local.returncode == 0, local.stderr
    with LocalCluster(
        processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        on_dask = corpus(
            prefect_server, *build, "--out", str(tmp_path / "dask"), "--dask-address", cluster.scheduler_address
        )
        ran_there = {prefix for prefix in cluster.scheduler.task_prefixes}
    assert on_dask.returncode == 0, on_dask.stderr
    assert {"dedup_clusters-scatter", "dedup_clusters-link", "dedup_clusters-decide"} <= ran_there
    digests = output_digests(tmp_path / "dask")
    assert any(name.startswith("dedup/_decisions/by_shard/") for name in digests)
    assert not any("_cluster_work" in name for name in digests)  # the tasks' files are gone
    assert digests == output_digests(tmp_path / "local")
    for folder, where in (("local", "local"), ("dask", cluster.scheduler_address)):
        step = json.loads((tmp_path / folder / "manifest.json").read_text())["build_steps"]["dedup_clusters"]
        assert step["stage"] == "dedup" and step["ran_on"] == where
        assert step["wall_s"] > 0 and step["peak_rss_bytes"] > 2**20 and step["peak_task_rss_bytes"] > 2**20


@pytest.fixture
def sample_signatures(sample_table, tmp_path) -> list:
    """Signatures of the sample (four sources) in four shards."""
    cfg, files = DedupConfig(), []
    table = sample_table.append_column("source", pa.nulls(sample_table.num_rows, pa.string()))
    for i in range(4):
        files.append(tmp_path / "signatures" / f"{i}.parquet")
        write_shard(signatures(table.slice(i * 3000, 3000), cfg), files[-1])
    return files


CLUSTERING = DedupConfig(containment=False, cluster_partition_rows=2_000)


def test_a_worker_lost_during_the_clustering_is_replaced_and_the_decisions_do_not_change(sample_signatures, tmp_path):
    outs = [tmp_path / "decisions" / f"{f.stem}.parquet" for f in sample_signatures]
    marker = tmp_path / "died-once"
    with LocalCluster(
        processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        tasks = DaskTasks(cluster.scheduler_address, 60, "dedup_clusters")

        def run(fn, items):  # the first `link` task to start kills its worker
            return tasks.map(Dying(fn, str(marker)) if fn is link else fn, items)

        find_duplicates_distributed(plan(sample_signatures, CLUSTERING, [], tmp_path / "work"), outs, run)
    assert marker.exists()
    decided = pa.concat_tables(pq.read_table(o) for o in outs).sort_by("id")
    assert decided.equals(find_duplicates(sample_signatures, CLUSTERING))


def test_a_clustering_task_that_kills_every_worker_fails_in_one_line_and_a_rerun_resumes(sample_signatures, tmp_path):
    outs = [tmp_path / "decisions" / f"{f.stem}.parquet" for f in sample_signatures]
    work = plan(sample_signatures, CLUSTERING, [], tmp_path / "work")
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        LocalCluster(
            processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as cluster,
    ):
        tasks = DaskTasks(cluster.scheduler_address, 60, "dedup_clusters")
        with pytest.raises(BuildError) as failed:
            find_duplicates_distributed(
                work, outs, lambda fn, items: tasks.map(Dying(fn, "") if fn is link else fn, items)
            )
        message = str(failed.value)
        assert "\n" not in message
        assert message.startswith("dedup_clusters: its task link killed 2 Dask workers in a row.")
        scattered = sorted((tmp_path / "work" / "scatter").glob("*.done"))
        stamps = [p.stat().st_mtime_ns for p in scattered]
        assert len(scattered) == len(sample_signatures)
        find_duplicates_distributed(work, outs, tasks.map)
    assert [p.stat().st_mtime_ns for p in scattered] == stamps  # the finished tasks were not redone
    decided = pa.concat_tables(pq.read_table(o) for o in outs).sort_by("id")
    assert decided.equals(find_duplicates(sample_signatures, CLUSTERING))
