"""Builds of a planned input: one large file split into shards keeps the documents it would
have as many files, and a build killed while cutting the file or filtering its pieces resumes to
the bytes of one never interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.test_build_flow import output_digests

pytestmark = pytest.mark.slow
# Shards of 128 KB: the ~1.2 MB below becomes ~10 shards, as a 10 MB file does by default.
OPTIONS = ("--stages", "quality", "--workers", "2", "--set", "shards.min_mb=0.125")


@pytest.fixture(scope="module")
def corpus(sample_table: pa.Table, tmp_path_factory) -> dict[str, Path]:
    """~1,000 sample documents as one JSONL file, and the same lines as 20 files."""
    rows = sample_table.take(list(range(0, sample_table.num_rows, 9))).select(["id", "text"]).to_pylist()
    lines = [json.dumps(row, ensure_ascii=False) + "\n" for row in rows]
    folder = tmp_path_factory.mktemp("planned_input")
    (folder / "one").mkdir()
    (folder / "one" / "corpus.jsonl").write_text("".join(lines), encoding="utf-8")
    (folder / "many").mkdir()
    for n in range(20):
        (folder / "many" / f"corpus-{n:02d}.jsonl").write_text("".join(lines[n::20]), encoding="utf-8")
    return {"one": folder / "one", "many": folder / "many"}


def start(api_url: str, input_dir: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "build", "--input", str(input_dir), "--out", str(out), *OPTIONS],
        env=dict(os.environ, PREFECT_API_URL=api_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the kill takes the workers too
    )


def finished(build: subprocess.Popen) -> None:
    assert build.wait(timeout=900) == 0, build.stderr.read()


def written(out: Path) -> set[Path]:
    found = set()
    for folder in (out / "input" / "shards", out / "quality"):
        for path in folder.rglob("*") if folder.exists() else ():
            try:
                if path.is_file():
                    found.add(path)
            except FileNotFoundError:  # renamed onto its final name mid-walk
                pass
    return found


def kill_after(build: subprocess.Popen, out: Path, new_files: int) -> bool:
    """SIGKILL the build's process group once it wrote `new_files` more planned shards or quality
    outputs (temporary files included); False if it ended first."""
    seen = written(out)
    count = 0
    while build.poll() is None:
        fresh = written(out) - seen
        seen |= fresh
        count += len(fresh)
        if count >= new_files:
            os.killpg(build.pid, signal.SIGKILL)
            build.wait()
            return True
        time.sleep(0.02)
    return False


def documents(build_dir: Path, removed: bool = False) -> pa.Table:
    folder = build_dir / "quality" / ("removed" if removed else "")
    table = pa.concat_tables(pq.read_table(p) for p in sorted(folder.glob("part-*.parquet")))
    return table.take(pc.sort_indices(table, [("id", "ascending")]))


@pytest.fixture(scope="module")
def reference(prefect_server, corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "b"
    finished(start(prefect_server, corpus["one"], out))
    return out


def test_one_large_file_is_built_as_several_shards_with_the_documents_of_many_files(
    prefect_server, corpus, reference, tmp_path
):
    manifest = json.loads((reference / "manifest.json").read_text())
    assert len(manifest["input_shards"]) >= 6
    assert all(shard["rows"][0][0].endswith("corpus.jsonl") for shard in manifest["input_shards"])
    finished(start(prefect_server, corpus["many"], tmp_path / "many"))
    for removed in (False, True):
        assert documents(reference, removed).equals(documents(tmp_path / "many", removed))


def test_a_split_build_killed_while_cutting_and_filtering_resumes_to_the_same_bytes(
    prefect_server, corpus, reference, tmp_path
):
    out = tmp_path / "killed"
    kills = [kill_after(start(prefect_server, corpus["one"], out), out, n) for n in (3, 9, 14)]
    assert kills.count(True) >= 2, "the build ended before most kill points"
    finished(start(prefect_server, corpus["one"], out))
    assert output_digests(out) == output_digests(reference)
    assert not list(out.rglob("*.tmp"))
