"""Killed at random moments, restarted, a build ends byte-identical to one never interrupted.

Each trial starts `corpus build` into the same directory and SIGKILLs its whole process group
(the CLI and its worker processes, as an OOM kill or a lost machine would) at a seeded moment:
when one stage's folder has gained a seeded number of new files, temporary files included, so
kills land inside writes, between an output and its done record, in global steps and in
pretraining, in every stage. After the last trial the build runs to the end. Its data
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

from pipeline.stages import TOKENIZER, registry
from tests.conftest import TEST_CONFIG
from tests.test_build_flow import output_digests

pytestmark = pytest.mark.slow
KILLS_PER_STAGE = 3
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


# The stages' output folders in the order they fill (the tokenizer stage writes its tokenizer
# file before its token shards): the lock and the manifest, written by every start, are no progress.
STAGE_FOLDERS = tuple(
    folder for stage in registry for folder in (["tokenizer"] if stage is TOKENIZER else []) + [stage.out]
)


def files_under(folder: Path, stages: tuple[str, ...] = STAGE_FOLDERS) -> set[str]:
    """Every file the stages wrote (temporary ones included) that is there now."""
    files = set()
    for path in (p for stage in stages for p in (folder / stage).rglob("*")):
        try:
            if path.is_file():
                files.add(str(path))
        except FileNotFoundError:  # renamed onto its final name mid-walk
            pass
    return files


def finished_files(folder: Path, stage: str) -> set[str]:
    return {path for path in files_under(folder, (stage,)) if not path.endswith(".tmp")}


def kill_after_new_files(
    build: subprocess.Popen, out: Path, new_files: int, stages: tuple[str, ...] = STAGE_FOLDERS
) -> str | None:
    """SIGKILL the build's process group once `stages` gained `new_files` new files (temporary
    ones included); returns the stage folder the last of them is in, None if the build ended first."""
    seen = files_under(out, stages)
    written: list[str] = []
    while build.poll() is None:
        fresh = files_under(out, stages) - seen
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
    # Kills in every stage: while a stage's folder is not complete, a trial runs until it has
    # gained a seeded few new files there (temporary ones count too, so kills land inside writes
    # and between an output and its done record). One sequence of positions over the whole
    # build would spend most kills on the stages with many temporary files and miss others.
    killed_in = []
    written = [stage for stage in STAGE_FOLDERS if files_under(tmp_path / "reference", (stage,))]
    for stage in written:
        final_files = len(files_under(tmp_path / "reference", (stage,)))
        for _ in range(KILLS_PER_STAGE):
            if len(finished_files(out, stage)) == final_files:
                break
            # Never more than the files still to come, or the build may end before the kill
            # (the shard plan's 8 shards per worker made the token files many).
            left = final_files - len(finished_files(out, stage))
            build = start_build(prefect_server, small_input, out, config)
            step = rng.randint(1, max(1, min(left, final_files // KILLS_PER_STAGE)))
            killed_in.append(kill_after_new_files(build, out, step, stages=(stage,)))
    print("killed while writing in:", killed_in, "of", total_files, "files")
    missed = set(written) - set(killed_in)
    assert not missed, f"no kill landed in {missed}: {killed_in}"

    final = start_build(prefect_server, small_input, out, config)
    assert final.wait(timeout=1200) == 0, final.stderr.read()
    assert output_digests(out) == output_digests(tmp_path / "reference")
    reference_weights, weights = model_weights(tmp_path / "reference"), model_weights(out)
    assert reference_weights.keys() == weights.keys()
    assert all(torch.equal(reference_weights[k], weights[k]) for k in weights)
    assert json.loads((out / "manifest.json").read_text())["conservation"]["ok"]
    assert not list(out.rglob("*.tmp")), "a restarted build removes what killed writes left"
