"""Partial copies: an excerpt of a page is removed as `contained_in` the page.

Texts: Common Crawl documents (../shared/data/corpora/cc_docs.jsonl, allenai/dolma tests,
Apache-2.0) and Debian fortunes (../shared/data/corpora/fortunes_multilingual.jsonl, GPL-2+ /
public domain).
"""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pipeline.config import DedupConfig
from pipeline.dedup.minhash import find_duplicates, signatures

DATA = Path(__file__).resolve().parents[3] / "shared/data/corpora"


@pytest.fixture(scope="module")
def pages() -> list[str]:
    """The Common Crawl pages of 400-1,500 words, longest first."""
    if not (DATA / "cc_docs.jsonl").exists():
        pytest.skip("needs ../shared/data")
    texts = [json.loads(line)["text"] for line in (DATA / "cc_docs.jsonl").open(encoding="utf-8")]
    return sorted((t for t in texts if 400 <= len(t.split()) <= 1500), key=len, reverse=True)


@pytest.fixture(scope="module")
def fortunes() -> list[str]:
    with (DATA / "fortunes_multilingual.jsonl").open(encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    return [t for t in texts if len(t.split()) >= 60][:3]


def decide(ids: list[str], texts: list[str], cfg: DedupConfig = DedupConfig()) -> dict[str, dict]:
    table = pa.table({"id": ids, "text": texts})
    return {row["id"]: row for row in find_duplicates([signatures(table, cfg)], cfg).to_pylist()}


def excerpt(text: str, start: float, share: float) -> str:
    words = text.split()
    at = int(len(words) * start)
    return " ".join(words[at : at + int(len(words) * share)])


def test_excerpt_of_a_page_is_removed_as_contained_in_it(pages):
    ids = [f"page{i}" for i in range(len(pages))] + ["excerpt"]
    d = decide(ids, pages + [excerpt(pages[0], 0.3, 0.3)])  # Jaccard with the page ~0.3
    assert d["excerpt"]["reason"] == "contained_in"
    assert d["excerpt"]["duplicate_of"] == d["excerpt"]["dup_cluster"] == "page0"
    assert d["page0"]["reason"] is None and d["page0"]["dup_cluster_size"] == 2
    assert sum(row["reason"] is not None for row in d.values()) == 1


def test_containment_switched_off_keeps_the_excerpt(pages):
    ids = ["page0", "excerpt"]
    d = decide(ids, [pages[0], excerpt(pages[0], 0.3, 0.3)], DedupConfig(containment=False))
    assert d["excerpt"]["reason"] is None


def test_excerpt_diluted_below_the_threshold_is_kept(pages, fortunes):
    # Most of the excerpt's words come from elsewhere: containment 0.42 (character 7-grams) < 0.85.
    diluted = excerpt(pages[0], 0.2, 0.12) + " " + " ".join(fortunes[:3])
    d = decide(["page0", "diluted"], [pages[0], diluted])
    assert d["diluted"]["reason"] is None


def test_a_text_inside_two_pages_does_not_merge_the_pages(pages, fortunes):
    quote = "\n\n".join(fortunes)  # ~250 words inside two pages of ~400-450 words
    page_a, page_b = pages[-1] + "\n" + quote, pages[-2] + "\n" + quote
    d = decide(["a", "b", "quote"], [page_a, page_b, quote])
    assert d["quote"]["reason"] == "contained_in"
    assert d["a"]["reason"] is None and d["b"]["reason"] is None
    assert d["a"]["dup_cluster"] != d["b"]["dup_cluster"]


def test_near_duplicate_cluster_of_an_excerpt_joins_the_page(pages):
    part = excerpt(pages[0], 0.5, 0.4)
    copy = part.upper()  # an exact (normalised) copy of the excerpt
    d = decide(["page0", "part", "part-copy"], [pages[0], part, copy])
    assert {d["part"]["reason"], d["part-copy"]["reason"]} == {"contained_in"}
    assert d["part"]["dup_cluster"] == d["part-copy"]["dup_cluster"] == "page0"
    assert d["page0"]["dup_cluster_size"] == 3


def test_numpy_band_matching_finds_what_the_datasketch_ensemble_finds(pages, fortunes):
    # Pages, excerpts of them at several shares and fortunes: every query's candidates, ranked
    # before it, must be the ensemble's own (index + query), pair for pair.
    from datasketch import LeanMinHash, MinHashLSHEnsemble

    from pipeline.dedup.containment import M, NUM_PART, _candidates
    from pipeline.dedup.minhash import SCHEME

    cfg = DedupConfig()
    texts = pages + fortunes + [excerpt(p, s, share) for p in pages for s, share in ((0.1, 0.3), (0.4, 0.6), (0.0, 0.9))]
    sig = signatures(pa.table({"id": [f"{i:03d}" for i in range(len(texts))], "text": texts}), cfg)
    hv = np.frombuffer(b"".join(sig.column("minhash").to_pylist()), dtype="<u4").reshape(len(texts), -1)
    sizes = sig.column("shingles").to_numpy().astype(np.int64)
    rank = np.argsort(np.argsort(-sig.column("length").to_numpy(), kind="stable"))
    q, c = _candidates(hv, sizes, rank, 0.7)

    ensemble = MinHashLSHEnsemble(threshold=0.7, num_perm=hv.shape[1], num_part=NUM_PART, m=M)
    sketches = [LeanMinHash(seed=cfg.minhash.seed, hashvalues=row, scheme=SCHEME) for row in hv]
    ensemble.index([(i, s, int(n)) for i, (s, n) in enumerate(zip(sketches, sizes))])
    expected = sorted((i, j) for i in range(len(texts)) for j in ensemble.query(sketches[i], int(sizes[i]))
                      if rank[j] < rank[i])
    assert expected, "the excerpts give the ensemble candidates to find"
    assert list(zip(q.tolist(), c.tolist())) == expected
