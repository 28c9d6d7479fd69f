"""The three dedup steps end to end: signatures per shard, global decisions, per-shard split.

Texts: Debian fortunes (../shared/data/corpora/fortunes_multilingual.jsonl, GPL-2+ / public
domain) and sample_data/ (see its README) with the defects planted in ground_truth.json.
"""

import json
import random
import time
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import DedupConfig, MinHashConfig
from pipeline.dedup.methods import find_duplicates, signatures
from pipeline.dedup.stage import apply_decisions
from pipeline.errors import BuildError

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"


@pytest.fixture(scope="module")
def fortunes(fortune_texts: list[str]) -> list[str]:
    """Forty distinct fortunes of at least 40 words."""
    return [t for t in fortune_texts if len(t.split()) >= 40][:40]


def with_planted_copies(fortunes: list[str]) -> pa.Table:
    """Originals f00..f39 plus a re-cased copy of f00 and a copy of f01 with one more line."""
    ids = [f"f{i:02d}" for i in range(len(fortunes))]
    texts = list(fortunes)
    ids += ["recased-f00", "extended-f01"]
    recased = fortunes[0].upper().replace("\n", "\r\n")
    extended = fortunes[1] + "\n" + fortunes[2].split("\n")[0]
    texts += [recased, extended]
    return pa.table({"id": ids, "text": texts, "source": ["fortunes"] * len(ids)})


def decide(shards: list[pa.Table], cfg: DedupConfig = DedupConfig()) -> pa.Table:
    return find_duplicates([signatures(s, cfg) for s in shards], cfg)


def by_id(decisions: pa.Table) -> dict[str, dict]:
    return {row["id"]: row for row in decisions.to_pylist()}


def test_signatures_carry_hashes_not_text(fortunes):
    cfg = DedupConfig()
    sig = signatures(with_planted_copies(fortunes), cfg)
    bands = [f"band_{b:02d}" for b in range(12)]
    assert sig.column_names == ["id", "length", "source", "exact_key", "minhash", "shingles", *bands, "line_hashes"]
    assert sig.schema.field("minhash").type == pa.binary(4 * cfg.minhash.num_perm)
    assert sig.column("length")[0].as_py() == len(" ".join(fortunes[0].split()))


def test_recased_copy_is_an_exact_duplicate_and_extended_copy_a_near_one(fortunes):
    d = by_id(decide([with_planted_copies(fortunes)]))
    # Same normalised text, so equal length: the lower id, f00, represents the pair.
    assert d["recased-f00"]["reason"] == "exact_duplicate"
    assert d["recased-f00"]["duplicate_of"] == "f00"
    # The longer text represents the cluster: the extended copy is kept, the original removed.
    assert d["extended-f01"]["reason"] is None
    assert d["f01"] == {
        "id": "f01",
        "dup_cluster": "extended-f01",
        "dup_cluster_size": 2,
        "duplicate_of": "extended-f01",
        "reason": "near_duplicate",
        "boilerplate_lines": [],
    }
    assert sum(row["reason"] is not None for row in d.values()) == 2


def test_equal_length_copies_keep_the_lowest_id(fortunes):
    table = pa.table({"id": ["zz", "mm", "aa"], "text": [fortunes[5]] * 3})
    d = by_id(decide([table]))
    assert d["aa"]["reason"] is None
    assert d["mm"]["duplicate_of"] == d["zz"]["duplicate_of"] == "aa"
    assert d["zz"]["dup_cluster_size"] == 3


def test_decisions_do_not_depend_on_row_or_shard_order(fortunes):
    table = with_planted_copies(fortunes)
    order = list(range(table.num_rows))
    random.Random(0).shuffle(order)
    shuffled = table.take(order)
    assert decide([table]).equals(decide([shuffled.slice(30), shuffled.slice(0, 30)]))


def test_switches_turn_each_part_off(fortunes):
    table = with_planted_copies(fortunes)
    exact_only = by_id(decide([table], DedupConfig(minhash=MinHashConfig(enabled=False))))
    assert exact_only["f01"]["reason"] is None and exact_only["extended-f01"]["reason"] is None
    minhash_only = by_id(decide([table], DedupConfig(exact=False)))
    # Identical shingles still meet through MinHash, now under the near-duplicate reason.
    pair = {minhash_only["f00"]["reason"], minhash_only["recased-f00"]["reason"]}
    assert pair == {None, "near_duplicate"}


def test_two_shards_conserve_documents_keep_order_and_share_a_schema(fortunes):
    table = with_planted_copies(fortunes)
    shards = [table.slice(0, 21), table.slice(21)]
    decisions = decide(shards)
    results = [apply_decisions(s, decisions) for s in shards]
    for shard, result in zip(shards, results):
        assert result.kept.num_rows + result.removed.num_rows == shard.num_rows
        kept_ids = result.kept.column("id").to_pylist()
        assert kept_ids == [i for i in shard.column("id").to_pylist() if i in set(kept_ids)]
        assert set(result.removed.column("stage").to_pylist()) <= {"dedup"}
    assert results[0].kept.schema == results[1].kept.schema
    assert results[0].removed.schema == results[1].removed.schema
    assert sum(r.removed.num_rows for r in results) == 2
    assert results[0].removed.column("duplicate_of").null_count == 0


def test_a_repeated_id_is_refused(fortunes):
    table = pa.table({"id": ["a", "a"], "text": fortunes[:2]})
    with pytest.raises(BuildError, match="'a' occurs in more than one row"):
        decide([table])


# ---------------------------------------------------------------- sample_data ground truth
@pytest.fixture(scope="module")
def sample() -> tuple[dict[str, dict], dict]:
    paths = sorted(SAMPLE.rglob("part-*.parquet"))
    if not paths or not (SAMPLE / "ground_truth.json").exists():
        pytest.skip("needs sample_data/")
    shards = [pq.read_table(p, columns=["id", "text"]) for p in paths]
    cfg = DedupConfig()
    n = sum(s.num_rows for s in shards)
    start = time.perf_counter()
    sigs = [signatures(s, cfg) for s in shards]
    mid = time.perf_counter()
    decisions = find_duplicates(sigs, cfg)
    end = time.perf_counter()
    print(f"\nsample_data: {n} docs; signatures {n / (mid - start):.0f} docs/s, find_duplicates {end - mid:.2f} s")
    return by_id(decisions), json.loads((SAMPLE / "ground_truth.json").read_text(encoding="utf-8"))


def test_sample_exact_and_normalised_copies_leave_one_document_per_text(sample):
    d, truth = sample
    groups = defaultdict(set)  # original id -> original and its copies
    for kind in ("exact_duplicates", "normalised_duplicates"):
        for copy, original in truth[kind].items():
            groups[original] |= {original, copy}
    for members in groups.values():
        assert len({d[i]["dup_cluster"] for i in members}) == 1
        assert sum(d[i]["reason"] is None for i in members) == 1


def test_sample_near_copies_are_found_and_base_documents_survive(sample):
    d, truth = sample
    near = truth["near_duplicates"]
    found = sum(d[c]["dup_cluster"] == d[t["original"]]["dup_cluster"] for c, t in near.items())
    planted = set(near) | {t["original"] for t in near.values()}
    for kind in ("exact_duplicates", "normalised_duplicates"):
        planted |= set(truth[kind]) | set(truth[kind].values())
    wrongly_removed = [i for i, row in d.items() if row["reason"] is not None and i not in planted]
    print(
        f"near-duplicate recall {found}/{len(near)} = {found / len(near):.1%}; "
        f"base documents wrongly removed: {len(wrongly_removed)} {wrongly_removed[:5]}"
    )
    assert found / len(near) >= 0.9
    assert len(wrongly_removed) <= 0.002 * len(d)
