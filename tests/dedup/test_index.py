"""Set-level dedup across builds: a build dedups against the index of earlier builds, then grows it.

Runs the dedup stage's first two steps as the flow does (a signature job per shard, then the
clustering build step), without Prefect. Texts: Debian fortunes (../shared/data/corpora/fortunes_multilingual.jsonl).
"""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import steps
from pipeline.config import BuildConfig
from pipeline.errors import InputError
from pipeline.jobs import run_job
from pipeline.shards import InputShard
from pipeline.sources import build_sources
from pipeline.stages import registry


@pytest.fixture(scope="module")
def fortunes(fortune_texts: list[str]) -> list[str]:
    return [t for t in fortune_texts if len(t.split()) >= 40][:60]


def write_shards(folder: Path, ids: list[str], texts: list[str], shards: int = 2) -> list[tuple[str, Path]]:
    folder.mkdir(parents=True)
    sources = []
    for s in range(shards):
        path = folder / f"part-{s:05d}.parquet"
        pq.write_table(pa.table({"id": ids[s::shards], "text": texts[s::shards]}), path)
        sources.append((path.stem, path))
    return sources


def decide(build_dir: Path, sources: list[tuple[str, Path]], cfg: BuildConfig) -> tuple[dict[str, dict], dict]:
    stage = registry.get("dedup")
    signatures, clusters = stage.steps[:2]
    inputs = [InputShard(name, path, path, pq.read_metadata(path).num_rows) for name, path in sources]
    ctx = steps.build_context(build_dir, stage, inputs, cfg, build_sources(cfg, str(sources[0][1].parent)))
    ctx.records[signatures.name] = [run_job(job) for job in steps.shard_jobs(stage, signatures, ctx)]
    record = clusters.run(ctx)
    return {row["id"]: row for row in pq.read_table(build_dir / record["artifact"]).to_pylist()}, record


@pytest.fixture()
def two_builds(tmp_path, fortunes):
    """Build A: fortunes 0-29. Build B: fortunes 30-59, plus a re-cased copy of A's a05, a copy of
    A's a07 with one more line and a verbatim copy of A's a10 (B's ids may repeat A's)."""
    cfg = BuildConfig.model_validate({"dedup": {"index": str(tmp_path / "index")}})
    a_ids = [f"a{i:02d}" for i in range(30)]
    a = decide(tmp_path / "A", write_shards(tmp_path / "A-in", a_ids, fortunes[:30]), cfg)
    b_ids = [f"a{i:02d}" for i in range(30)] + ["recased", "extended", "verbatim"]
    b_texts = fortunes[30:60] + [fortunes[5].upper(), fortunes[7] + "\n" + fortunes[40].split("\n")[0], fortunes[10]]
    b = decide(tmp_path / "B", write_shards(tmp_path / "B-in", b_ids, b_texts), cfg)
    return tmp_path, cfg, a, b


def test_second_build_keeps_only_documents_new_to_the_index(two_builds, fortunes):
    _, _, (a, _), (b, record) = two_builds
    assert all(row["reason"] is None for row in a.values())
    removed = {i: (row["reason"], row["duplicate_of"]) for i, row in b.items() if row["reason"]}
    assert removed == {
        "recased": ("duplicate_of_earlier_build", "a05"),
        "extended": ("duplicate_of_earlier_build", "a07"),  # longer, yet the published one stays
        "verbatim": ("duplicate_of_earlier_build", "a10"),
    }
    # The earlier document represents the cluster and counts in its size.
    assert b["extended"]["dup_cluster"] == "a07" and b["extended"]["dup_cluster_size"] == 2
    assert record["earlier_files"] == 2


def test_index_grows_by_one_part_per_build_and_keeps_the_old_one(two_builds):
    tmp_path, _, (_, a_record), (_, b_record) = two_builds
    parts = sorted(p for p in (tmp_path / "index").iterdir())
    assert [p.name[:6] for p in parts] == ["000001", "000002"]
    assert Path(a_record["index_part"]) == parts[0] and Path(b_record["index_part"]) == parts[1]
    rows = [sum(pq.read_metadata(f).num_rows for f in p.glob("part-*.parquet")) for p in parts]
    assert rows == [30, 30]  # A's 30 documents, B's 30 new ones


def test_rerun_of_the_first_build_reads_only_parts_before_its_own(two_builds, fortunes):
    tmp_path, cfg, (a, _), _ = two_builds
    first_part = sorted((tmp_path / "index").iterdir())[0]
    before = {f.name: f.read_bytes() for f in first_part.iterdir()}
    (tmp_path / "A" / "dedup" / "_done" / "dedup_clusters.json").unlink()  # force the build step again
    again, record = decide(tmp_path / "A", [(p.stem, p) for p in sorted((tmp_path / "A-in").glob("*.parquet"))], cfg)
    assert again == a and record["earlier_files"] == 0
    assert {f.name: f.read_bytes() for f in first_part.iterdir()} == before
    assert len(list((tmp_path / "index").iterdir())) == 2


def test_index_made_with_other_minhash_settings_is_refused(two_builds, fortunes):
    tmp_path, cfg, _, _ = two_builds
    other = BuildConfig.model_validate({"dedup": {"index": cfg.dedup.index, "minhash": {"num_perm": 64}}})
    with pytest.raises(InputError, match=r"dedup.minhash.num_perm=128.*new dedup.index folder"):
        decide(tmp_path / "C", write_shards(tmp_path / "C-in", ["c"], fortunes[:1], shards=1), other)
