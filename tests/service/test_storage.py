"""fsspec URL input: remote shards are copied into the build's input cache and read from there."""

from __future__ import annotations

import uuid

import fsspec
import pyarrow.parquet as pq
import pytest

from pipeline.errors import InputError
from pipeline.shards import fingerprint, prepare_inputs


@pytest.fixture
def memory_input(small_input):
    """The small input uploaded to a fresh memory:// bucket; yields its URL."""
    url = f"memory://bucket-{uuid.uuid4().hex[:8]}/incoming"
    fs = fsspec.filesystem("memory")
    for path in sorted(small_input.glob("*.parquet")):
        fs.pipe(f"{url}/{path.name}", path.read_bytes())
    yield url
    fs.rm(url, recursive=True)


def test_memory_url_input_reads_the_same_shards_as_the_local_folder(memory_input, small_input, tmp_path):
    remote = prepare_inputs(memory_input, tmp_path / "build" / "input")
    local = prepare_inputs(str(small_input), tmp_path / "unused")
    assert [(s.name, s.docs, fingerprint(s.path)) for s in remote] == [
        (s.name, s.docs, fingerprint(s.path)) for s in local
    ]
    assert all(s.path.is_relative_to(tmp_path / "build" / "input" / "remote") for s in remote)


def test_a_changed_remote_shard_is_fetched_again(memory_input, small_input, tmp_path):
    first = prepare_inputs(memory_input, tmp_path / "build" / "input")
    fs = fsspec.filesystem("memory")
    fewer = pq.read_table(small_input / "part-00000.parquet").slice(0, 10)
    with fs.open(f"{memory_input}/part-00000.parquet", "wb") as f:
        pq.write_table(fewer, f)
    second = prepare_inputs(memory_input, tmp_path / "build" / "input")
    assert (first[0].docs, second[0].docs) == (76, 10)
    assert second[0].path == first[0].path


def test_file_url_is_the_local_path(small_input, tmp_path):
    shards = prepare_inputs(f"file://{small_input}", tmp_path / "build" / "input")
    assert [s.path for s in shards] == sorted(small_input.glob("*.parquet"))


def test_missing_remote_input_is_one_line_naming_the_url(tmp_path):
    with pytest.raises(InputError, match=r"^memory://nowhere/at-all: no such file or folder\.") as error:
        prepare_inputs("memory://nowhere/at-all", tmp_path / "build" / "input")
    assert "\n" not in str(error.value)
