"""Shared fixtures: the committed sample shards, a small slice of them, the shared data folder."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip("needs ../shared/data (development data, not part of a clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ground_truth() -> dict:
    return json.loads((SAMPLE / "ground_truth.json").read_text())


@pytest.fixture(scope="session")
def sample_table() -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in sorted(SAMPLE.glob("part-*.parquet")))


@pytest.fixture(scope="session")
def sample_slice(tmp_path_factory, sample_table: pa.Table, ground_truth: dict) -> Path:
    """~700 sample documents in 3 shards: every kind of planted defect (with the originals of the
    planted duplicates) plus a seeded draw of ordinary documents, shuffled across shards."""
    rng = random.Random(7)
    wanted: set[str] = set()
    for kind in ("exact_duplicates", "normalised_duplicates"):
        for copy, original in rng.sample(sorted(ground_truth[kind].items()), 25):
            wanted |= {copy, original}
    for copy, info in rng.sample(sorted(ground_truth["near_duplicates"].items()), 50):
        wanted |= {copy, info["original"]}
    wanted |= set(rng.sample(sorted(ground_truth["pii"]), 60))
    wanted |= set(rng.sample(sorted(ground_truth["junk"]), 30))
    others = sorted(set(sample_table["id"].to_pylist()) - wanted)
    wanted |= set(rng.sample(others, 400))
    ids = sorted(wanted)
    rng.shuffle(ids)
    by_id = {row["id"]: row for row in sample_table.to_pylist()}
    out = tmp_path_factory.mktemp("sample_slice")
    for shard in range(3):
        rows = [by_id[i] for i in ids[shard::3]]
        pq.write_table(pa.Table.from_pylist(rows, schema=sample_table.schema), out / f"part-{shard:05d}.parquet")
    return out


# A build small enough for tests: a tiny tokenizer and a model trained for a few dozen steps.
TEST_CONFIG = {
    "tokenizer": {"vocab_size": 1024, "val_fraction": 0.1},
    "pretrain": {
        "n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 64, "batch_size": 8,
        "max_steps": 60, "eval_interval": 20, "eval_batches": 4, "time_budget_s": 120,
    },
}
