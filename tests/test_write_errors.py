"""A full disk mid-build: the build stops with one line naming the file it could not write, leaves
nothing a rerun would trust, and the rerun (with space again) ends byte-identical to a clean build.

The full disk is real as far as the build can tell: RLIMIT_FSIZE makes the kernel refuse writes
past a size with EFBIG, just as a full disk refuses them with ENOSPC, in the build process and
its workers only (the Prefect server, a separate process, keeps writing its database).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.test_build_flow import output_digests

pytestmark = pytest.mark.slow
STAGES = "quality,dedup"


@pytest.fixture(scope="module")
def tiny_input(sample_table: pa.Table, tmp_path_factory) -> Path:
    """151 sample documents in two shards (every 60th, so every source is in it)."""
    folder = tmp_path_factory.mktemp("tiny_input")
    rows = sample_table.take(list(range(0, sample_table.num_rows, 60)))
    pq.write_table(rows.slice(0, 75), folder / "part-00000.parquet")
    pq.write_table(rows.slice(75), folder / "part-00001.parquet")
    return folder


def corpus_build(api_url: str, input_dir: Path, out: Path, max_file_bytes: int | None = None):
    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a refused write raises EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    return subprocess.run(
        [sys.executable, "-m", "flows.cli", "build", "--input", str(input_dir), "--out", str(out), "--stages", STAGES],
        env=dict(os.environ, PREFECT_API_URL=api_url),
        preexec_fn=full_disk if max_file_bytes else None,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_full_disk_fails_clearly_and_the_rerun_matches_a_clean_build(prefect_server, tiny_input, tmp_path):
    clean = corpus_build(prefect_server, tiny_input, tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr

    out = tmp_path / "full"
    failed = corpus_build(prefect_server, tiny_input, out, max_file_bytes=64 * 1024)
    lines = [line for line in failed.stderr.splitlines() if line.strip() and "━" not in line]
    assert failed.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr
    assert lines[-1].startswith("error: cannot write " + str(out)), lines[-1]
    assert "File too large" in lines[-1] and "rerun" in lines[-1]

    assert not list(out.rglob("*.tmp")), "a failed write must not leave its temporary file"
    for shard in out.rglob("*.parquet"):  # every shard under its final name is complete
        pq.read_metadata(shard)

    rerun = corpus_build(prefect_server, tiny_input, out)
    assert rerun.returncode == 0, rerun.stderr
    assert output_digests(out) == output_digests(tmp_path / "clean")
