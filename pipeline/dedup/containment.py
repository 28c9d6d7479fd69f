"""Partial copies: documents mostly contained in a longer one (excerpts, truncated or syndicated
copies, a post quoted inside a page).

Their Jaccard with the whole is low (an excerpt of a fifth of a page has Jaccard <= 0.2), so the
near-duplicate step misses them. Containment C(Q, X) = |Q ∩ X| / |Q| of Q's shingles in X is the
measure; datasketch's `MinHashLSHEnsemble` (Zhu et al., VLDB 2016) finds, for a query Q of known
size, the indexed X with C(Q, X) above a threshold, partitioning the index by set size so each
partition gets its own LSH parameters.

Candidates are verified with the MinHash estimate of containment from the estimated Jaccard J
and the exact set sizes: |Q ∩ X| = J (|Q| + |X|) / (1 + J). The estimate gets coarse when X is
much larger than Q: one matching hash value is worth (1 + |X|/|Q|) / num_perm of containment.
So a candidate also needs MIN_MATCHES equal hash values; at 128 permutations that keeps
containment >= 0.8 within reach for containers up to ~20x the excerpt and makes a match from
chance (unrelated texts share no hash value) impossible.
"""

from __future__ import annotations

import numpy as np
from datasketch import LeanMinHash, MinHashLSHEnsemble

MIN_MATCHES = 5  # equal MinHash values a verified containment needs (see above)
# datasketch's defaults (16 size partitions x m=8) hold 128 LSH indexes, and its pure-Python
# inserts and queries cost milliseconds per document. 4 x 2 found the same contained documents on
# sample_data and the same planted excerpts (bench/dedup_quality.py) as 16 x 8 and 8 x 4, in
# 15 s CPU for 9k documents instead of 24 s (8 x 4; 1.5 s without containment).
NUM_PART, M = 4, 2
# The ensemble's candidates miss ~15% of excerpts at true containment >= 0.9 when it is asked for
# the verification threshold itself; asking 0.1 lower and verifying at the threshold found 174/180
# instead of 151/180 with no false positive (bench/dedup_quality.py), as the near-duplicate LSH
# weighs misses more for the same reason.
QUERY_SLACK = 0.1


def containers(
    hashvalues: np.ndarray, sizes: np.ndarray, rank: np.ndarray, threshold: float, seed: int, scheme: str
) -> np.ndarray:
    """For each row, the row that contains it, or -1: (n,) int64.

    hashvalues: (n, num_perm) MinHash values; sizes: (n,) distinct shingles per row; rank: (n,)
    the representative order (0 = the longest text). A row's container must rank before it, so
    containment points from shorter to longer documents and never forms a cycle; of several
    verified containers, the one ranked first (longest, then lowest id) is taken.
    """
    n, num_perm = hashvalues.shape
    out = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return out
    sketches = [LeanMinHash(seed=seed, hashvalues=row, scheme=scheme) for row in hashvalues]
    ensemble = MinHashLSHEnsemble(
        threshold=max(threshold - QUERY_SLACK, 0.05), num_perm=num_perm, num_part=NUM_PART, m=M
    )
    ensemble.index((i, sketch, int(size)) for i, (sketch, size) in enumerate(zip(sketches, sizes)))
    for q in range(n):
        candidates = np.array(sorted(ensemble.query(sketches[q], int(sizes[q]))), dtype=np.int64)
        candidates = candidates[rank[candidates] < rank[q]] if len(candidates) else candidates
        if not len(candidates):
            continue
        matches = (hashvalues[candidates] == hashvalues[q]).sum(axis=1)  # (n_candidates,)
        jaccard = matches / num_perm
        contained = jaccard * (sizes[q] + sizes[candidates]) / (1 + jaccard) / sizes[q]
        verified = candidates[(contained >= threshold) & (matches >= MIN_MATCHES)]
        if len(verified):
            out[q] = verified[np.argmin(rank[verified])]
    return out
