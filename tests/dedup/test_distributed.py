"""The dedup clustering as tasks of bounded memory (pipeline/dedup/distributed.py) decides exactly
as the one-process clustering (`find_duplicates`): same clusters, representatives, reasons and
boilerplate lines, on real text with planted copies and on 50k generated documents."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.config import DedupConfig
from pipeline.dedup.distributed import find_duplicates_distributed, plan
from pipeline.dedup.methods import find_duplicates, signatures
from pipeline.errors import InputError
from pipeline.shards import read_column, read_shard, write_shard
from pipeline.tasks import LocalTasks

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def in_tasks(files: list[Path], cfg: DedupConfig, priority: list[str], work: Path, run=map) -> pa.Table:
    """The decisions made in tasks, gathered and sorted by id as `find_duplicates` gives them."""
    outs = [work / "decisions" / f"{f.stem}.parquet" for f in files]
    find_duplicates_distributed(plan(files, cfg, priority, work / "tasks"), outs, run)
    return pa.concat_tables(pq.read_table(o) for o in outs).sort_by("id")


@pytest.fixture(scope="module")
def sample_files(tmp_path_factory) -> list[Path]:
    """Signatures of sample_data (four sources) and of a copy of every third document under a
    new id, in their own shards: exact copies across shards and sources, next to the sample's
    planted exact, normalised and near copies."""
    folder, cfg, files = tmp_path_factory.mktemp("signatures"), DedupConfig(), []
    for i, path in enumerate(sorted(SAMPLE.rglob("part-*.parquet"))):
        table = pq.read_table(path)
        table = table.append_column("source", pa.array([path.parent.name] * table.num_rows))
        copies = table.filter(pa.array([k % 3 == 0 for k in range(table.num_rows)]))
        new_ids = pc.binary_join_element_wise("copy-", copies.column("id"), "")
        copies = copies.set_column(copies.column_names.index("id"), "id", new_ids)
        for name, part in ((f"{i}", table), (f"{i}-copies", copies)):
            files.append(folder / f"{name}.parquet")
            write_shard(signatures(part, cfg), files[-1])
    return files


def test_signature_files_read_a_column_at_a_time_decide_as_the_tables_read_whole(sample_files):
    # The dedup stage reads a small build's signature files whole, a large one's by column.
    cfg = DedupConfig()
    by_column = find_duplicates(sample_files, cfg, priority=["wiki"])
    assert by_column.equals(find_duplicates([read_shard(f) for f in sample_files], cfg, priority=["wiki"]))
    assert pc.count(by_column.column("reason")).as_py() > 3000  # copies found, not two empty tables


def test_a_column_a_signature_file_lacks_is_an_error_naming_the_file(sample_files):
    with pytest.raises(InputError, match=rf"{sample_files[0]}: no column 'minhash_v2'"):
        read_column(sample_files[0], "minhash_v2")


def test_tasks_decide_as_one_process_on_sample_text_with_copies(sample_files, tmp_path):
    # Partitions of 1,500 rows: ~9 hash ranges per band and 9 parts for ~12k documents.
    cfg = DedupConfig(containment=False, cluster_partition_rows=1_500, lines={"max_documents": 3})
    files = sample_files
    priority = ["wiki", "books"]
    local = find_duplicates(files, cfg, priority=priority)
    assert local.equals(in_tasks(files, cfg, priority, tmp_path / "tasks"))
    reasons = pc.value_counts(local.column("reason")).to_pylist()
    counts = {r["values"]: r["counts"] for r in reasons}
    assert counts["exact_duplicate"] > 3000 and counts["near_duplicate"] > 100
    assert pc.sum(pc.list_value_length(local.column("boilerplate_lines"))).as_py() > 0


def test_tasks_decide_as_one_process_with_only_one_method_on(sample_files, tmp_path):
    for cfg in (
        DedupConfig(containment=False, exact=False, cluster_partition_rows=4_000),
        DedupConfig(
            containment=False, minhash={"enabled": False}, cluster_partition_rows=4_000, lines={"enabled": False}
        ),
    ):
        local = find_duplicates(sample_files, cfg)
        assert local.equals(in_tasks(sample_files, cfg, [], tmp_path / f"tasks-{cfg.exact}"))


def test_a_rerun_resumes_from_the_tasks_that_finished(sample_files, tmp_path):
    cfg = DedupConfig(containment=False, cluster_partition_rows=4_000)
    files = sample_files
    first = in_tasks(files, cfg, [], tmp_path / "run")
    done = sorted((tmp_path / "run" / "tasks").rglob("*.done"))
    stamps = [p.stat().st_mtime_ns for p in done]
    for out in (tmp_path / "run" / "decisions").glob("*.parquet"):
        out.unlink()  # as if the build had died before deciding
    assert in_tasks(files, cfg, [], tmp_path / "run").equals(first)
    assert [p.stat().st_mtime_ns for p in done] == stamps


@pytest.mark.slow
def test_tasks_decide_as_one_process_on_50k_generated_documents(shared_data, tmp_path):
    from bench.dedup_scale import generate

    planted = generate(50_000, tmp_path / "input")
    cfg = DedupConfig(containment=False, cluster_partition_rows=12_500)
    inputs = sorted((tmp_path / "input").glob("part-*.parquet"))
    files = [tmp_path / "signatures" / p.name for p in inputs]
    with ProcessPoolExecutor(2, multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_signature_file, inputs, files, [cfg] * len(files)))
    local = find_duplicates(files, cfg)
    assert local.equals(in_tasks(files, cfg, [], tmp_path / "tasks", LocalTasks(2).map))
    removed = pc.sum(pc.is_valid(local.column("reason"))).as_py()
    assert removed >= 0.9 * sum(planted.values())


def _signature_file(path: Path, out: Path, cfg: DedupConfig) -> None:
    table = pq.read_table(path)
    write_shard(signatures(table.append_column("source", pa.nulls(table.num_rows, pa.string())), cfg), out)
