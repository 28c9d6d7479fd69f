"""Partial copies: documents mostly contained in a longer one (excerpts, truncated or syndicated
copies, a post quoted inside a page).

Their Jaccard with the whole is low (an excerpt of a fifth of a page has Jaccard <= 0.2), so the
near-duplicate step misses them. Containment C(Q, X) = |Q ∩ X| / |Q| of Q's shingles in X is the
measure; datasketch's `MinHashLSHEnsemble` (Zhu et al., VLDB 2016) finds, for a query Q of known
size, the indexed X with C(Q, X) above a threshold, partitioning the index by set size so each
partition gets its own LSH parameters. Its partitions and parameters are used as datasketch
computes them; the band lookups run in numpy (`_candidates`), ~10x less CPU, same candidates.

Candidates are verified with the MinHash estimate of containment from the estimated Jaccard J
and the exact set sizes: |Q ∩ X| = J (|Q| + |X|) / (1 + J). The estimate gets coarse when X is
much larger than Q: one matching hash value is worth (1 + |X|/|Q|) / num_perm of containment.
So a candidate also needs MIN_MATCHES equal hash values; at 128 permutations that keeps
containment >= 0.8 within reach for containers up to ~20x the excerpt and makes a match from
chance (unrelated texts share no hash value) impossible.

Edited partial copies (passages cut from an article and lightly revised: words replaced by
synonyms, sentences reordered) keep only 0.55-0.9 of their character 7-grams, since every
replaced word takes the ~11 shingles around it along. So a second, lower threshold
(`partial_threshold`) holds for a document that is
- a part of a longer one: the container has at least PARTIAL_MIN_RATIO times its shingles. Two
  versions of one text of about one length (a translation into a neighbouring language, such as
  the Serbian and Bosnian UDHR, with containment 0.5-0.8) are the near-duplicate step's to judge;
- long enough, PARTIAL_MIN_CHARS normalised characters: half of a UDHR article or a quote of a
  dozen words is the formulas of its genre ("Everyone has the right to ...");
- verified by PARTIAL_MIN_MATCHES equal hash values: two unrelated texts in one language share
  0.1-0.2 of their character 7-grams, which at a container ratio of 10 or more is as many hash
  values as a containment of 0.5 would give; ten keeps the estimate to containers up to ~5x the
  copy (expected matches at the threshold: num_perm / 2 / (1 + ratio)).
Independent texts on the same topic stay below 0.2 (bench/edited_copies.py; results in
bench/results/dedup_quality.md).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from datasketch import MinHashLSHEnsemble

from pipeline.config import DedupConfig
from pipeline.dedup.clusters import SCHEME, Clusters, DedupMethod

MIN_MATCHES = 5  # equal MinHash values a verified containment needs (see above)
# datasketch's defaults (16 size partitions x m=8) hold 128 LSH indexes. 4 x 2 found the same
# contained documents on sample_data and the same planted excerpts (bench/dedup_quality.py) as
# 16 x 8 and 8 x 4.
NUM_PART, M = 4, 2
# The ensemble's candidates miss excerpts well above the threshold when it is asked for the
# verification threshold itself; asking 0.1 lower and verifying at the threshold finds more of the
# planted excerpts with no false positive (bench/dedup_quality.py), as the near-duplicate LSH
# weighs misses more for the same reason.
QUERY_SLACK = 0.1
# An edited partial copy (see above): at least this long, its container this many times larger,
# verified by this many equal hash values.
PARTIAL_MIN_CHARS, PARTIAL_MIN_RATIO, PARTIAL_MIN_MATCHES = 800, 1.5, 10
VERIFY_BATCH = 1 << 17  # candidate pairs compared at once: (batch, num_perm) bools, 16 MB


def containers(
    hashvalues: np.ndarray,
    sizes: np.ndarray,
    lengths: np.ndarray,
    rank: np.ndarray,
    threshold: float,
    partial_threshold: float,
    seed: int,
    scheme: str,
) -> np.ndarray:
    """For each row, the row that contains it, or -1: (n,) int64.

    hashvalues: (n, num_perm) MinHash values; sizes: (n,) distinct shingles per row; lengths:
    (n,) normalised characters per row; rank: (n,) the representative order (0 = the longest
    text). A row's container must rank before it, so containment points from shorter to longer
    documents and never forms a cycle; of several verified containers, the one ranked first
    (longest, then lowest id) is taken. A row is contained at `threshold`, or at
    `partial_threshold` as an edited partial copy (see above). seed and scheme name the MinHash
    family the values come from; equal values are all this step compares.
    """
    n, num_perm = hashvalues.shape
    out = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return out
    sizes = sizes.astype(np.int64)
    uppers = _partition_uppers(sizes)
    q, c = _candidates(hashvalues, sizes, rank, query_threshold(threshold), uppers=uppers)
    whole = np.ones(len(q), dtype=bool)  # (n_pairs,) candidates of the main threshold
    partial = lengths >= PARTIAL_MIN_CHARS  # (n,) rows that may be edited partial copies
    if partial_threshold < threshold and partial.any():
        # Only these rows ask at the lower threshold: its candidates cost more band lookups. A
        # pair found only here is verified as a partial copy only: a candidate shares a whole
        # band of values by its making, so the few matches the main threshold asks of a large
        # container are no evidence for a pair that the main query did not find.
        q2, c2 = _candidates(hashvalues, sizes, rank, query_threshold(partial_threshold), partial, uppers)
        pairs = np.union1d(q * n + c, q2 * n + c2)
        whole = np.isin(pairs, q * n + c)
        q, c = pairs // n, pairs % n
    verified = np.zeros(len(q), dtype=bool)
    for at in range(0, len(q), VERIFY_BATCH):
        qs, cs = q[at : at + VERIFY_BATCH], c[at : at + VERIFY_BATCH]
        matches = (hashvalues[cs] == hashvalues[qs]).sum(axis=1)  # (batch,)
        jaccard = matches / num_perm
        contained = jaccard * (sizes[qs] + sizes[cs]) / (1 + jaccard) / sizes[qs]
        main = whole[at : at + VERIFY_BATCH] & (contained >= threshold) & (matches >= MIN_MATCHES)
        edited = (
            partial[qs]
            & (sizes[cs] >= PARTIAL_MIN_RATIO * sizes[qs])
            & (contained >= partial_threshold)
            & (matches >= PARTIAL_MIN_MATCHES)
        )
        verified[at : at + VERIFY_BATCH] = main | edited
    q, c = q[verified], c[verified]
    first = np.lexsort((rank[c], q))  # per query, its verified containers best-ranked first
    q, c = q[first], c[first]
    head = np.concatenate(([True], q[1:] != q[:-1]))[: len(q)]  # each query's first pair
    out[q[head]] = c[head]
    return out


def _partition_uppers(sizes: np.ndarray) -> np.ndarray:
    """Upper set size of each of the ensemble's size partitions: datasketch's
    `optimal_partitions` (NUM_PART intervals of the distinct sizes with few expected false
    positives), in numpy. datasketch's runs in pure Python, O(n^2) calls for n distinct sizes:
    6.4 of the 7.4 s the dedup clustering took on sample_data (1,400 distinct sizes), minutes at
    the ~10k of containment_max_documents. Same partitions (tests/dedup/test_containment.py)."""
    distinct, counts = np.unique(sizes, return_counts=True)
    n = len(distinct)
    if n <= NUM_PART:  # a partition per size, as optimal_partitions does
        return distinct
    nfps = _false_positives(distinct, counts)
    # datasketch's dynamic programme: cost[k][u], the fewest false positives of k + 2 partitions
    # covering sizes [0, u] (0 where none was computed, as in its matrix).
    cost = [_least_totals(nfps[0], nfps, 0)]
    for k in range(1, NUM_PART - 2):
        cost.append(_least_totals(cost[-1], nfps, k))
    u = _first_least(cost[-1], nfps, NUM_PART - 2, n - 1)
    uppers = [u, n - 1]
    # Its back-tracking reads the prefix cost of p partitions (not p - 1) before the p-th upper
    # bound, zeros included: kept, so that the partitions, and the decisions, are the library's.
    for p in range(NUM_PART - 1, 1, -1):
        u = _first_least(cost[p - 2], nfps, p - 2, u)
        uppers.insert(0, u)
    return distinct[uppers]


def _least_totals(prefix: np.ndarray, nfps: np.ndarray, low: int, columns: int = 512) -> np.ndarray:
    """For every upper index u, the least prefix[u1] + nfps[u1 + 1, u] over u1 in [low, u - 1];
    0 where that range is empty. A block of `columns` upper indices at a time, so that the
    temporary arrays stay small beside `nfps`."""
    n = len(prefix)
    least = np.zeros(n)
    u1 = np.arange(n - 1)[:, None]
    for first in range(low + 1, n, columns):
        u = np.arange(first, min(first + columns, n))
        total = prefix[:-1, None] + nfps[1:, u]  # [u1, u]
        total[(u1 < low) | (u1 >= u[None, :])] = np.inf
        least[u] = total.min(axis=0)
    return least


def _first_least(prefix: np.ndarray, nfps: np.ndarray, low: int, u: int) -> int:
    """The first u1 in [low, u - 1] with the least prefix[u1] + nfps[u1 + 1, u]."""
    return low + int(np.argmin(prefix[low:u] + nfps[low + 1 : u + 1, u]))


def _false_positives(sizes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """datasketch's `_compute_nfps_real`: for every interval [l, u] of the distinct set sizes
    (ascending), the expected false positives of indexing its sets under size s_u,
    sum over i in [l, u] of (s_u - s_i) / s_u * c_i (zero below the diagonal).

    datasketch sums each of the n^2 intervals in its own Python call: 6.7 of the 7.4 s the dedup
    clustering took on sample_data (1,300 distinct sizes). Here the numerator is a difference of
    integer prefix sums, s_u * (C[u+1] - C[l]) - (W[u+1] - W[l]) with C, W the prefix sums of c
    and s*c, exact, then divided once: the same values to the last bit or two, one row at a time."""
    sizes = sizes.astype(np.int64)
    count_sums = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
    weight_sums = np.concatenate(([0], np.cumsum(sizes * counts, dtype=np.int64)))
    out = np.zeros((len(sizes), len(sizes)))
    for low in range(len(sizes)):
        upper = sizes[low:]
        numerator = upper * (count_sums[low + 1 :] - count_sums[low]) - (weight_sums[low + 1 :] - weight_sums[low])
        out[low, low:] = numerator / upper
    return out


def _candidates(
    hashvalues: np.ndarray,
    sizes: np.ndarray,
    rank: np.ndarray,
    threshold: float,
    asks: np.ndarray | None = None,
    uppers: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (query, candidate container) that datasketch's MinHashLSHEnsemble(threshold)
    finds for every row (every row where `asks`, (n,) bool) queried against all rows, where the
    candidate ranks first: two (n_pairs,) int64 arrays, sorted by query, then candidate.
    uppers: `_partition_uppers(sizes)`, if already computed.

    The ensemble's own index and queries cost milliseconds of pure Python per row (17 s CPU of
    the 21 s containment took on sample_data's 9k documents). This takes its size partitions and
    its (bands, rows) choice per size ratio, and finds the same band collisions in numpy: per band,
    rows are grouped by that band's values, and a query meets the indexed rows of its own group.
    """
    n, num_perm = hashvalues.shape
    ratios, params = ensemble_params(threshold, num_perm)
    uppers = _partition_uppers(sizes) if uppers is None else uppers
    part = np.searchsorted(uppers, sizes)  # (n,) the partition each row is indexed in
    # The ensemble's query: in partition p, the first b bands of r rows, by the ratio upper_p / size.
    choice = np.searchsorted(ratios, uppers[None, :] / sizes[:, None], side="left")  # (n, n_part)
    bands, rows = params[np.minimum(choice, len(params) - 1)].transpose(2, 0, 1)
    askers = np.arange(n) if asks is None else np.flatnonzero(asks)  # the rows that query
    group_of = {}  # (r, band) -> (n,) group id of each row's values in that band
    found = []
    for p in range(len(uppers)):
        indexed = np.flatnonzero(part == p)
        for r in np.unique(rows[askers, p]):
            asking = askers[rows[askers, p] == r]
            for band in range(bands[asking, p].max()):
                if (r, band) not in group_of:
                    values = np.ascontiguousarray(hashvalues[:, band * r : (band + 1) * r])
                    group_of[r, band] = np.unique(values.view(f"V{values.itemsize * r}").ravel(), return_inverse=True)[
                        1
                    ]
                group = group_of[r, band]
                queries = asking[bands[asking, p] > band]
                members = indexed[np.argsort(group[indexed], kind="stable")]
                lo = np.searchsorted(group[members], group[queries], side="left")
                hi = np.searchsorted(group[members], group[queries], side="right")
                q = np.repeat(queries, hi - lo)  # (n_hits,) each query once per member of its group
                c = members[_ranges(lo, hi)]
                keep = rank[c] < rank[q]
                found.append(q[keep] * n + c[keep])
    pairs = np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)
    return pairs // n, pairs % n


@cache
def ensemble_params(threshold: float, num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's MinHashLSHEnsemble(threshold) parameters: its grid of size ratios (k,) and the
    (bands, rows) it takes at each, (k, 2). Its constructor finds them by numerical integration,
    ~80 ms; built here for them only (nothing is indexed), once per process and threshold."""
    ensemble = MinHashLSHEnsemble(threshold=threshold, num_perm=num_perm, num_part=NUM_PART, m=M)
    return ensemble.xqs, ensemble.params


def query_threshold(threshold: float) -> float:
    """What the ensemble is asked for a verification threshold (QUERY_SLACK)."""
    return max(threshold - QUERY_SLACK, 0.05)


def warm() -> None:
    """The ensemble's parameters at the default thresholds: part of the dedup stage's warm-up."""
    cfg = DedupConfig()
    for threshold in (cfg.containment_threshold, cfg.partial_copy_threshold):
        ensemble_params(query_threshold(threshold), cfg.minhash.num_perm)


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The indices of every [start, end) span, concatenated."""
    lengths = ends - starts
    return np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())


def _join(clusters: Clusters, cfg: DedupConfig) -> None:
    """A cluster whose representative lies inside a longer document joins that document's final
    cluster. A short text inside two long ones joins one of them and never merges the two. Only
    this build's representatives with shingles take part. This step holds the MinHash values of
    every representative in memory (docs/dedup.md)."""
    docs = clusters.docs
    heads = np.flatnonzero(clusters.heads & (docs.column("shingles").to_numpy() > 0) & (np.arange(docs.total) < docs.n))
    inside = containers(
        docs.hashvalues(heads),
        docs.column("shingles").to_numpy()[heads],
        docs.column("length").to_numpy()[heads],
        clusters.rank[heads],
        cfg.containment_threshold,
        cfg.partial_copy_threshold,
        cfg.minhash.seed,
        SCHEME,
    )
    contained = np.flatnonzero(inside >= 0)
    clusters.move(heads[contained], heads[inside[contained]])


# It reads the near-duplicate method's MinHash values and shingle counts.
CONTAINED = DedupMethod(reason="contained_in", enabled=lambda cfg: cfg.minhash.enabled and cfg.containment, join=_join)
