"""The checked input cut along the shard plan: Parquet split along row groups, JSONL and
JSONL.gz by lines, tiny files merged; every row once, in order, with the ids it has unsplit;
the same bytes on every run; errors that name the user's file and row."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline import shards as shard_io
from pipeline.config import ShardsConfig
from pipeline.errors import InputError
from pipeline.shard_split import planned_inputs
from pipeline.shards import prepare_inputs, read_input_shard
from tests.test_cli import assert_one_line_error, build

# Shards of 64 KB at least: the sample's few hundred KB split as a corpus's GBs would.
SMALL = ShardsConfig(min_mb=1 / 16)


def plan_of(spec: Path | str, build: Path, config: ShardsConfig = SMALL, workers: int = 2):
    return planned_inputs(prepare_inputs(str(spec), build / "input"), build / "input", config, workers)


def rows_of(planned) -> pa.Table:
    return pa.concat_tables((read_input_shard(s.path) for s in planned), promote_options="default")


@pytest.fixture
def texts(sample_table: pa.Table) -> pa.Table:
    """~600 sample documents (every 15th: every source and kind)."""
    return sample_table.take(list(range(0, sample_table.num_rows, 15))).select(["id", "text"])


def write_jsonl(table: pa.Table, path: Path, with_ids: bool = True) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as f:
        for row in table.to_pylist():
            f.write(json.dumps(row if with_ids else {"text": row["text"]}) + "\n")
    return path


def test_a_large_parquet_file_is_split_along_row_groups_keeping_its_made_ids(texts, tmp_path):
    path = tmp_path / "in" / "dump.parquet"
    path.parent.mkdir()
    pq.write_table(texts.select(["text"]), path, row_group_size=50)  # no ids: made from file and row
    planned = plan_of(path.parent, tmp_path / "b")
    assert len(planned) >= 4
    assert [s.name for s in planned] == [f"part-00000-{k:03d}" for k in range(len(planned))]
    assert all(s.path.parent == tmp_path / "b" / "input" / "shards" for s in planned)
    assert [s.docs for s in planned] == [s.pieces[0][2] - s.pieces[0][1] for s in planned]
    # Every row once, in order, with the id it has when the file is one shard.
    assert rows_of(planned).equals(read_input_shard(path))
    assert rows_of(planned)["id"][0].as_py() == "dump-0"


def test_a_parquet_file_of_one_large_row_group_is_cut_by_rows(texts, tmp_path):
    path = tmp_path / "in" / "one_group.parquet"
    path.parent.mkdir()
    pq.write_table(texts, path)
    assert pq.read_metadata(path).num_row_groups == 1
    planned = plan_of(path.parent, tmp_path / "b")
    assert len(planned) >= 4
    assert rows_of(planned).equals(read_input_shard(path))


@pytest.mark.parametrize("name", ["docs.jsonl", "docs.jsonl.gz"])
def test_a_large_jsonl_file_is_split_by_lines_keeping_its_ids(name, texts, tmp_path, monkeypatch):
    monkeypatch.setattr(shard_io, "JSONL_BATCH_BYTES", 32 << 10)  # row groups of the conversion
    path = write_jsonl(texts, (tmp_path / "in").mkdir() or tmp_path / "in" / name)
    planned = plan_of(path.parent, tmp_path / "b")
    assert len(planned) >= 4
    assert {s.origin for s in planned} == {path}
    assert rows_of(planned)["id"].to_pylist() == texts["id"].to_pylist()
    assert rows_of(planned)["text"].to_pylist() == texts["text"].to_pylist()


def test_jsonl_lines_without_ids_keep_their_line_numbers_in_every_piece(texts, tmp_path, monkeypatch):
    monkeypatch.setattr(shard_io, "JSONL_BATCH_BYTES", 32 << 10)
    path = write_jsonl(texts, (tmp_path / "in").mkdir() or tmp_path / "in" / "docs.jsonl", with_ids=False)
    planned = plan_of(path.parent, tmp_path / "b")
    assert len(planned) >= 4
    assert rows_of(planned)["id"].to_pylist() == [f"docs-{line}" for line in range(1, texts.num_rows + 1)]


def test_jsonl_is_converted_streaming_a_batch_at_a_time(texts, tmp_path, monkeypatch):
    """A 5 GB file never sits in memory whole: the conversion holds one batch of lines."""
    monkeypatch.setattr(shard_io, "JSONL_BATCH_BYTES", 32 << 10)
    path = write_jsonl(texts, tmp_path / "docs.jsonl")
    batches = list(shard_io._jsonl_batches(path))
    assert len(batches) > 10
    assert max(pc.sum(pc.binary_length(b["text"])).as_py() for b in batches) < 2 * (32 << 10) + max(
        len(t) for t in texts["text"].to_pylist()
    )
    prepare_inputs(str(path), tmp_path / "b" / "input")
    assert pq.read_metadata(tmp_path / "b" / "input" / "part-00000.parquet").num_row_groups == len(batches)


def test_tiny_files_are_merged_into_few_shards_under_the_union_of_their_columns(texts, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for n in range(60):
        part = texts.slice(n * 10, 10)
        if n == 7:  # one file brings a column the others lack
            part = part.append_column("url", pa.array(["https://example.org/"] * part.num_rows))
        pq.write_table(part, folder / f"tiny-{n:03d}.parquet")
    planned = plan_of(folder, tmp_path / "b", ShardsConfig(per_worker=2), workers=2)  # 4 shards wanted
    assert 4 <= len(planned) <= 8
    assert planned[0].name == "part-00000" and len(planned[0].pieces) > 1
    merged = rows_of(planned)
    assert merged["id"].to_pylist() == texts["id"].to_pylist()[:600]
    assert merged["url"].null_count == merged.num_rows - 10


def test_files_near_the_shard_size_are_left_as_they_are(sample_slice, tmp_path):
    """The test build: its three files are its three shards, read in place."""
    planned = plan_of(sample_slice, tmp_path / "b", ShardsConfig(), workers=2)
    assert [(s.name, s.path, s.pieces) for s in planned] == [
        (f"part-{n:05d}", sample_slice / f"part-{n:05d}.parquet", ()) for n in range(3)
    ]


def test_the_plan_and_its_bytes_are_the_same_on_every_run(texts, tmp_path):
    path = tmp_path / "in" / "dump.parquet"
    path.parent.mkdir()
    pq.write_table(texts, path, row_group_size=40)
    first, second = plan_of(path.parent, tmp_path / "b1"), plan_of(path.parent, tmp_path / "b2")
    assert [(s.name, s.pieces) for s in first] == [(s.name, s.pieces) for s in second]
    assert [s.path.read_bytes() for s in first] == [s.path.read_bytes() for s in second]


def test_a_rerun_reuses_the_written_shards_and_a_rewritten_file_changes_only_its_own(texts, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(texts.slice(0, 300), folder / "a.parquet", row_group_size=30)
    pq.write_table(texts.slice(300, 300), folder / "b.parquet", row_group_size=30)
    first = plan_of(folder, tmp_path / "b")
    written = {s.name: s.path.stat().st_mtime_ns for s in first}
    again = plan_of(folder, tmp_path / "b")
    assert again == first and {s.name: s.path.stat().st_mtime_ns for s in again} == written
    changed = texts.slice(300, 300).set_column(1, "text", pc.utf8_upper(texts.slice(300, 300)["text"]))
    pq.write_table(changed, folder / "b.parquet", row_group_size=30)
    after = plan_of(folder, tmp_path / "b")
    untouched = [s.name for s in after if s.origin.name == "a.parquet"]
    assert untouched and all(
        s.path.stat().st_mtime_ns == written[s.name] for s in after if s.origin.name == "a.parquet"
    )
    assert all(s.path.stat().st_mtime_ns != written.get(s.name) for s in after if s.origin.name == "b.parquet")


def test_a_bad_line_deep_in_a_split_jsonl_file_names_the_file_and_its_line(texts, tmp_path, monkeypatch):
    monkeypatch.setattr(shard_io, "JSONL_BATCH_BYTES", 32 << 10)
    path = write_jsonl(texts, (tmp_path / "in").mkdir() or tmp_path / "in" / "docs.jsonl")
    lines = path.read_text().splitlines()
    lines[450] = '{"id": "broken", "text": '
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=rf"^{path}: row 451: not valid JSON"):
        plan_of(path.parent, tmp_path / "b")


def test_a_null_text_deep_in_a_large_parquet_file_names_the_file_and_its_row(texts, tmp_path):
    path = tmp_path / "in" / "dump.parquet"
    path.parent.mkdir()
    nulled = pa.array([None if i == 333 else t for i, t in enumerate(texts["text"].to_pylist())], pa.string())
    pq.write_table(texts.set_column(1, "text", nulled), path, row_group_size=50)
    with pytest.raises(InputError, match=rf'^{path}: row 333: "text" is null'):
        plan_of(path.parent, tmp_path / "b")


def test_merged_files_whose_columns_clash_are_named(texts, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for n in range(10):
        part = texts.slice(n * 5, 5)
        kind = pa.int64() if n == 1 else pa.string()
        pq.write_table(part.append_column("year", pa.array([None] * 5, kind)), folder / f"t{n}.parquet")
    with pytest.raises(InputError, match="t0.parquet, .*t1.parquet.*: these files are merged into one shard"):
        plan_of(folder, tmp_path / "b", ShardsConfig(per_worker=1), workers=1)
    # From the CLI, the plan's error is one line and exit 2 like every other bad input.
    result = build(folder, tmp_path / "cli", "--workers", "1", "--set", "shards.per_worker=1", "--stages", "quality")
    assert_one_line_error(result, "t1.parquet", "these files are merged into one shard")
