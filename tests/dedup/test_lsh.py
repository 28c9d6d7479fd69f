"""The global step's LSH: band keys grouped per band give datasketch MinHashLSH's clusters.

Texts: Debian fortunes (../shared/data/corpora/fortunes_multilingual.jsonl, GPL-2+ / public
domain), with copies that lose a planted share of their words.
"""

import random

import numpy as np
import pyarrow as pa
import pytest
from datasketch import LeanMinHash, MinHashLSH
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pipeline.config import DedupConfig, MinHashConfig
from pipeline.dedup.lsh import Runs
from pipeline.dedup.methods import find_duplicates, signatures
from pipeline.dedup.minhash import SCHEME, band_columns


@pytest.fixture(scope="module")
def edited_fortunes(fortune_texts: list[str]) -> pa.Table:
    """300 fortunes of 40+ words and 150 copies missing 2-40% of their words (Jaccard ~0.2-0.9)."""
    rng = random.Random(3)
    originals = [t for t in fortune_texts if len(t.split()) >= 40][:300]
    ids, texts = [f"f{i:03d}" for i in range(len(originals))], list(originals)
    for i in range(150):
        words = originals[i].split()
        share = rng.uniform(0.02, 0.4)
        kept = [w for w in words if rng.random() >= share]
        ids.append(f"f{i:03d}-edited")
        texts.append(" ".join(kept))
    return pa.table({"id": ids, "text": texts})


def datasketch_clusters(sig: pa.Table, cfg: MinHashConfig) -> np.ndarray:
    """The reference: MinHashLSH queried row by row, every candidate verified, then components."""
    values = np.frombuffer(b"".join(sig.column("minhash").to_pylist()), dtype="<u4").reshape(-1, cfg.num_perm)
    sketches = [LeanMinHash(seed=cfg.seed, hashvalues=row, scheme=SCHEME) for row in values]
    lsh = MinHashLSH(
        threshold=cfg.threshold,
        num_perm=cfg.num_perm,
        weights=(1 - cfg.false_negative_weight, cfg.false_negative_weight),
    )
    rows, cols = [], []
    for i, sketch in enumerate(sketches):
        for j in lsh.query(sketch):
            if sketch.jaccard(sketches[j]) >= cfg.threshold:
                rows.append(i)
                cols.append(j)
        lsh.insert(i, sketch)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(sketches),) * 2)
    return connected_components(graph, directed=False)[1]


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("threshold", [0.5, 0.8])
def test_band_keys_grouped_per_band_give_the_clusters_of_datasketch_lsh(edited_fortunes, threshold):
    cfg = DedupConfig(
        exact=False, containment=False, lines={"enabled": False}, minhash=MinHashConfig(threshold=threshold)
    )
    sig = signatures(edited_fortunes, cfg).sort_by("id")
    decisions = find_duplicates([sig], cfg)
    ours = pa.array(decisions.column("dup_cluster")).dictionary_encode().indices.to_numpy()
    reference = datasketch_clusters(sig, cfg.minhash)
    print(f"threshold {threshold}: {len(set(ours.tolist()))} clusters of {len(ours)} documents")
    assert len(set(reference.tolist())) < len(reference)  # the planted copies do merge
    assert same_partition(ours, reference)


def test_band_keys_are_stored_one_column_per_band_and_null_without_words():
    cfg = DedupConfig()
    sig = signatures(pa.table({"id": ["a", "b"], "text": ["All human beings are born free.", " ,;! "]}), cfg)
    columns = band_columns(cfg.minhash)
    assert len(columns) == 12  # 12 bands x 10 rows at threshold 0.8 (see pipeline/dedup/minhash.py)
    assert all(sig.column(c).to_pylist()[1] is None for c in columns)
    assert len({sig.column(c)[0].as_py() for c in columns}) == 12


def test_a_run_whose_star_misses_an_edge_is_revisited():
    # Three documents share a band key; 1 ~ 0 and 2 ~ 1, but 2 is not similar enough to 0, so
    # the star pairs to 0 alone would leave 2 out.
    similar = {(1, 0), (2, 1)}
    runs = Runs(3)
    runs.add(np.array([7, 7, 7], dtype=np.uint64), np.array([0, 1, 2]))
    verify = lambda a, b: np.array([(x, y) in similar for x, y in zip(a, b)], dtype=bool)  # noqa: E731
    assert runs.clusters(verify, np.empty((0, 2), dtype=np.int64)).tolist() == [0, 0, 0]
