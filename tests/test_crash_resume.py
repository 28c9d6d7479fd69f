"""Killed at random moments, restarted, a build ends byte-identical to one never interrupted.

Each trial starts `corpus build` into the same directory and SIGKILLs its whole process group
(the CLI and its worker processes, as an OOM kill or a lost machine would) at a seeded moment:
when the build directory has gained a seeded number of new files, temporary files included, so
kills land inside writes, between an output and its done record, in global steps and in
pretraining, across every stage. After the last trial the build runs to the end. Its data
outputs must equal those of an uninterrupted build byte for byte, the model's weights must be
equal, conservation must hold, and no temporary file may remain.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from pipeline.stages import registry
from tests.conftest import TEST_CONFIG
from tests.test_build_flow import output_digests

pytestmark = pytest.mark.slow
TRIALS = 20
SEED = 2026
# The test config, with pretraining bounded by steps only: a wall-clock budget would make the
# number of steps, and so the weights, depend on the machine's load.
CONFIG = TEST_CONFIG | {
    "pretrain": TEST_CONFIG["pretrain"] | {"max_steps": 12, "eval_interval": 6, "time_budget_s": 3600}
}


@pytest.fixture(scope="module")
def small_input(sample_table: pa.Table, tmp_path_factory) -> Path:
    """90 sample documents in three shards (every 100th: every source and kind of defect)."""
    folder = tmp_path_factory.mktemp("crash_input")
    rows = sample_table.take(list(range(0, sample_table.num_rows, 100)))
    for shard in range(3):
        pq.write_table(rows.slice(shard * 30, 30), folder / f"part-{shard:05d}.parquet")
    return folder


def start_build(api_url: str, input_dir: Path, out: Path, config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "build",
            "--input",
            str(input_dir),
            "--out",
            str(out),
            "--config",
            str(config),
            "--workers",
            "2",
        ],
        env=dict(os.environ, PREFECT_API_URL=api_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the kill takes the workers too
    )


# The stages' output folders (and the tokenizer file's): the lock and the manifest, written by
# every start, are no progress.
STAGE_FOLDERS = (*(stage.out for stage in registry), "tokenizer")


def files_under(folder: Path) -> set[str]:
    """Every file the stages wrote (temporary ones included) that is there now."""
    files = set()
    for path in (p for stage in STAGE_FOLDERS for p in (folder / stage).rglob("*")):
        try:
            if path.is_file():
                files.add(str(path))
        except FileNotFoundError:  # renamed onto its final name mid-walk
            pass
    return files


def kill_after_new_files(build: subprocess.Popen, out: Path, new_files: int) -> str | None:
    """SIGKILL the build's process group once its stages wrote `new_files` new files (temporary
    ones included); returns the stage folder the last of them is in, None if the build ended first."""
    seen = files_under(out)
    written: list[str] = []
    while build.poll() is None:
        fresh = files_under(out) - seen
        seen |= fresh
        written += sorted(fresh)
        if len(written) >= new_files:
            os.killpg(build.pid, signal.SIGKILL)
            build.wait()
            return Path(written[-1]).relative_to(out).parts[0]
        time.sleep(0.02)
    return None


def model_weights(build_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(build_dir / "model" / "ckpt.pt", map_location="cpu", weights_only=False)["model"]


def test_builds_killed_at_random_moments_resume_to_an_identical_build(prefect_server, small_input, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    reference = start_build(prefect_server, small_input, tmp_path / "reference", config)
    assert reference.wait(timeout=1200) == 0, reference.stderr.read()
    total_files = len(files_under(tmp_path / "reference"))

    out = tmp_path / "killed"
    rng = random.Random(SEED)
    # Kill points spread over the build: seeded positions among its files, each trial running
    # until the next one. Temporary files count too, so two thirds of the final count already
    # take the kills into the last stages.
    points = sorted(rng.sample(range(1, total_files * 2 // 3), TRIALS))
    killed_in = []
    for new_files in (b - a for a, b in zip([0, *points], points)):
        build = start_build(prefect_server, small_input, out, config)
        killed_in.append(kill_after_new_files(build, out, new_files))
    print("killed while writing in:", killed_in)
    assert killed_in.count(None) <= 2, f"trials finished before their kill point: {killed_in}"
    assert len(set(killed_in)) >= 5, f"the kills did not spread over the stages: {killed_in}"

    final = start_build(prefect_server, small_input, out, config)
    assert final.wait(timeout=1200) == 0, final.stderr.read()
    assert output_digests(out) == output_digests(tmp_path / "reference")
    reference_weights, weights = model_weights(tmp_path / "reference"), model_weights(out)
    assert reference_weights.keys() == weights.keys()
    assert all(torch.equal(reference_weights[k], weights[k]) for k in weights)
    assert json.loads((out / "manifest.json").read_text())["conservation"]["ok"]
    assert not list(out.rglob("*.tmp")), "a restarted build removes what killed writes left"
