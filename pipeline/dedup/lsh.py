"""LSH on disk-sized arrays: band keys grouped into candidate pairs, verified, then clustered.

The global dedup step never holds a signature per document. Each shard's signature file carries
one 64-bit key per band (pipeline/dedup/minhash.py, `band_keys`); here one band at a time is
sorted by key, and documents sharing a key (a "run") become candidate pairs. Only the documents
in some candidate pair have their MinHash values read, to verify the pairs by estimated Jaccard.
Clusters are the connected components of the verified pairs over integer document indices.

A run of k documents yields the k - 1 "star" pairs to its first member, not all k (k - 1) / 2:
a cluster of near-identical pages then costs k verifications per band, not k². Stars can miss an
edge (B ~ C while neither is similar enough to A), so `clusters` then revisits every run whose
members ended in different components and verifies the pairs across them, until none is left.
At that fixed point every candidate pair is either verified false or inside one component, so
the components are exactly those of verifying all pairs (as datasketch's MinHashLSH query loop
did) and the decisions do not change.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
from datasketch import MinHashLSH
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


@cache
def lsh_params(threshold: float, num_perm: int, false_negative_weight: float) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false positive + false negative areas (datasketch's
    own choice, so the candidates are those of `MinHashLSH` with these weights). Cached: its
    numerical integration takes ~20 ms, asked three times by every shard's signatures."""
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(1 - false_negative_weight, false_negative_weight))
    return lsh.b, lsh.r


class Runs:
    """Documents grouped by equal band key, collected band after band.

    `add(keys, docs)` takes one band: keys (m,) uint64 and docs (m,) int64 document indices.
    It keeps the star pairs (other, first) of every run, and the members of runs of three or
    more, which stars may not fully connect.
    """

    def __init__(self, n: int):
        self.n = n
        self.pairs = np.empty(0, dtype=np.int64)  # pair codes other * n + first, sorted, distinct
        self._members: list[np.ndarray] = []  # per band: members of runs of >= 3, run by run
        self._run_lengths: list[np.ndarray] = []

    def add(self, keys: np.ndarray, docs: np.ndarray) -> None:
        if not len(keys):
            return
        order = np.lexsort((docs, keys))  # by key, then document: the first member is the lowest
        keys, docs = keys[order], docs[order]
        start = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))  # (n_runs,)
        length = np.diff(np.append(start, len(keys)))  # (n_runs,)
        run = np.repeat(np.arange(len(start)), length)  # (m,) run of each member
        first = docs[start][run]  # (m,)
        other = docs != first
        self.pairs = np.union1d(self.pairs, docs[other] * self.n + first[other])
        big = length[run] >= 3
        self._members.append(docs[big])
        self._run_lengths.append(length[length >= 3])

    def clusters(self, verify: Callable[[np.ndarray, np.ndarray], np.ndarray], edges: np.ndarray) -> np.ndarray:
        """Component label of each document: (n,) int32.

        verify(a, b) -> (len(a),) bool says which candidate pairs are similar enough; edges
        (n_edges, 2) are pairs known to be duplicates already (same normalised text).
        """
        checked = self.pairs
        similar = self.pairs[verify(self.pairs // self.n, self.pairs % self.n)]
        members = np.concatenate([np.empty(0, dtype=np.int64), *self._members])
        lengths = np.concatenate([np.empty(0, dtype=np.int64), *self._run_lengths])
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        while True:
            label = _components(self.n, edges, similar)
            if not len(lengths):
                return label
            member_label = label[members]
            mixed = np.minimum.reduceat(member_label, starts) != np.maximum.reduceat(member_label, starts)
            pairs = [
                _cross_pairs(members[s : s + k], member_label[s : s + k], self.n)
                for s, k in zip(starts[mixed], lengths[mixed])
            ]
            pairs = np.setdiff1d(np.concatenate([np.empty(0, dtype=np.int64), *pairs]), checked)
            if not len(pairs):
                return label
            checked = np.union1d(checked, pairs)
            similar = np.union1d(similar, pairs[verify(pairs // self.n, pairs % self.n)])


def _cross_pairs(docs: np.ndarray, label: np.ndarray, n: int) -> np.ndarray:
    """Codes of the pairs of one run whose members lie in different components."""
    a, b = np.triu_indices(len(docs), k=1)  # docs ascend within a run, so docs[b] > docs[a]
    across = label[a] != label[b]
    return docs[b[across]] * n + docs[a[across]]


def _components(n: int, edges: np.ndarray, pair_codes: np.ndarray) -> np.ndarray:
    rows = np.concatenate([edges[:, 0], pair_codes // n])
    cols = np.concatenate([edges[:, 1], pair_codes % n])
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]
