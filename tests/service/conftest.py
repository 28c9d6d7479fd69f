"""Fixtures of the service tests: small real inputs, and `corpus` commands run against a server."""

from __future__ import annotations

import os
import subprocess
import sys
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
