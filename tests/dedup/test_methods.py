"""Dedup methods: a new way of finding copies is one `DedupMethod` and its place in METHODS.

The method here links documents that open with the same 100 characters (a lead paragraph
syndicated under different endings), written as a contributor would write its module: its
signature column, computed per shard from the normalised texts, and its pass over the clusters.
Texts: Tiny Shakespeare (../shared/data/corpora/tinyshakespeare.txt, public domain).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pipeline.config import DedupConfig
from pipeline.dedup import methods
from pipeline.dedup.clusters import Clusters, DedupMethod
from pipeline.dedup.methods import find_duplicates, signatures

LEAD_CHARS = 100


def _lead_keys(normalised: list[str], cfg: DedupConfig) -> dict[str, list[bytes]]:
    return {"lead_key": [hashlib.blake2b(text[:LEAD_CHARS].encode(), digest_size=8).digest() for text in normalised]}


def _join_same_lead(clusters: Clusters, cfg: DedupConfig) -> None:
    keys = clusters.docs.column("lead_key").to_numpy(zero_copy_only=False)
    lead = np.unique(keys, return_inverse=True)[1]
    # The current clusters stay whole: a cluster takes the label of its representative's lead.
    clusters.regroup(lead[clusters.rep])


SAME_LEAD = DedupMethod(
    reason="lead_duplicate",
    enabled=lambda cfg: True,
    join=_join_same_lead,
    fields=lambda cfg: [("lead_key", pa.binary())],
    columns=_lead_keys,
)


@pytest.fixture(scope="module")
def speeches(shared_data: Path) -> list[str]:
    """Eleven long speeches of Tiny Shakespeare: ten documents, and one to end the copy with."""
    text = (shared_data / "corpora" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    long = [block for block in text.split("\n\n") if len(block.split()) >= 80]
    return long[:11]


def documents(speeches: list[str]) -> pa.Table:
    """The first ten speeches, and a copy that keeps only the opening of speech 0 and goes on
    with the eleventh: no near duplicate or part of either, but the same lead."""
    syndicated = speeches[0][: 2 * LEAD_CHARS] + " " + speeches[10]
    return pa.table({"id": [f"s{i}" for i in range(10)] + ["syndicated"], "text": [*speeches[:10], syndicated]})


def test_a_new_method_adds_its_column_and_its_reason(monkeypatch, speeches: list[str]) -> None:
    monkeypatch.setattr(methods, "METHODS", (*methods.METHODS, SAME_LEAD))
    monkeypatch.setattr(methods, "REASONS", (*(m.reason for m in methods.METHODS), methods.EARLIER))
    cfg = DedupConfig()
    sig = signatures(documents(speeches), cfg)
    assert "lead_key" in sig.column_names
    decisions = {row["id"]: row for row in find_duplicates([sig], cfg).to_pylist()}
    assert decisions["syndicated"]["reason"] == "lead_duplicate" or decisions["s0"]["reason"] == "lead_duplicate"
    assert {decisions["syndicated"]["dup_cluster"], decisions["s0"]["dup_cluster"]} == {decisions["s0"]["dup_cluster"]}
    assert sum(row["reason"] is not None for row in decisions.values()) == 1


def test_without_the_method_the_copy_with_another_ending_stays(speeches: list[str]) -> None:
    cfg = DedupConfig()
    decisions = find_duplicates([signatures(documents(speeches), cfg)], cfg)
    assert decisions.column("reason").null_count == decisions.num_rows
