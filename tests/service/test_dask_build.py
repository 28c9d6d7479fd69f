"""`corpus build --dask-address`: shard jobs run on a real Dask cluster (worker processes on
loopback) and the build's outputs are byte-identical to a local build's."""

from __future__ import annotations

import pytest
from distributed import LocalCluster

from tests.service.conftest import FAST_CONFIG, corpus
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
    assert "run_job" in ran_there  # the shard jobs ran on the cluster's workers
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
