"""Global near-duplicate detection: MinHash signatures per shard, then LSH clustering.

Dedup runs in three steps, so no process holds the corpus's texts:
1. `signatures` (per shard, in parallel): id, length, exact key and MinHash of every document.
2. `find_duplicates` (once, global): clusters from ids and hashes only, one decision per id.
3. `pipeline.dedup.stage.apply_decisions` (per shard, in parallel): annotate rows and split.

The same three steps carry partial copies (pipeline/dedup/containment.py: a near-duplicate
cluster inside a longer document joins that document's cluster) and boilerplate lines
(pipeline/dedup/lines.py: counted here over the documents that survive, removed in step 3).

A cluster is a connected component of "same normalised text" (exact) and "estimated Jaccard of
word n-gram shingles >= threshold" (near) edges. Its representative, the one document kept, is
the longest normalised text, ties broken by the lowest id, so the choice does not depend on
shard order.

Broder (1997): the share of equal MinHash values between two documents estimates the Jaccard
similarity of their shingle sets. LSH (Leskovec et al., Mining of Massive Datasets, ch. 3) cuts
each signature into b bands of r rows; two documents become candidates when any band matches,
with probability 1 - (1 - s^r)^b at similarity s. datasketch's `MinHashLSH(threshold, num_perm,
weights)` picks the b and r that minimise the weighted sum of the false-positive area (below the
threshold) and the false-negative area (above it) under that curve. At threshold 0.8 and 128
permutations, equal weights give 9 bands x 13 rows, which finds only 40% of pairs at s = 0.8 and
69% at 0.85; weighing misses 0.8 gives 12 x 10: 74% and 93%. Every candidate pair is then verified
by its estimated Jaccard, so the extra candidates cost only time.
"""

from __future__ import annotations

import functools
import sys
import unicodedata
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketch import LeanMinHash, MinHash, MinHashLSH
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pipeline.config import DedupConfig, MinHashConfig
from pipeline.dedup.containment import containers
from pipeline.dedup.exact import exact_key, normalise
from pipeline.dedup.lines import LINE_HASH, boilerplate_lines, line_hashes
from pipeline.errors import BuildError

# affine32 is datasketch 2.0's default scheme: uint32 hash values, a collision-free permutation.
SCHEME = "affine32"
DTYPE = np.dtype("<u4")  # fixed byte order, so signatures written on one machine read on any


# Shingles see words, not their decoration: punctuation (P*) separates words like whitespace
# ("well-known," -> "well known"). With `strip_diacritics`, combining marks (Mn: accents, tonos,
# breathings; dropped after NFD as datatrove and CCNet do) and format characters (Cf: soft
# hyphens, zero-width joiners) go too, so "ἄνθρωποι" matches "άνθρωποι", and "co\u00adoperate"
# (soft hyphen) matches "cooperate".
#
# Everything after Unicode normalisation runs in numpy over the text's code points, one array
# per document, never a Python loop per word or per shingle: two lookup tables mark separators
# and dropped characters; each word is hashed as a polynomial of its code points,
# sum_j (c_j + 1) * P^j mod 2^64, taken from one prefix sum; word hashes are mixed (splitmix64's
# finaliser), and an n-gram's hash is a polynomial of its word hashes, so word order counts. The
# 64-bit result is folded to the 32 bits of datasketch's affine32 scheme, which mixes it once more
# (MurmurHash3's finaliser) before its permutations. datasketch's default hash, SHA-1 of each
# shingle's string, one Python call per shingle, was most of the signature time.
_P = np.uint64(0x9E3779B97F4A7C15)  # odd, so invertible mod 2^64 (the golden ratio's fraction)
_P_INVERSE = np.uint64(pow(int(_P), -1, 2**64))


@functools.cache
def _code_point_tables() -> tuple[np.ndarray, np.ndarray]:
    """(separator, dropped): bool arrays indexed by code point, (0x110000,) each; built once."""
    separator = np.zeros(sys.maxunicode + 1, dtype=bool)
    dropped = np.zeros(sys.maxunicode + 1, dtype=bool)
    for cp in range(sys.maxunicode + 1):
        char = chr(cp)
        category = unicodedata.category(char)
        separator[cp] = category.startswith("P") or char.isspace()
        dropped[cp] = category in ("Mn", "Cf")
    return separator, dropped


def _word_spans(normalised: str, strip_diacritics: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Code points of the text and [start, end) of each word: (n_cp,), (n_words,), (n_words,)."""
    separator, dropped = _code_point_tables()
    if strip_diacritics:
        normalised = unicodedata.normalize("NFD", normalised)
    cp = np.frombuffer(normalised.encode("utf-32-le"), dtype="<u4")
    if strip_diacritics:
        cp = cp[~dropped[cp]]
    inside = np.concatenate(([False], ~separator[cp], [False]))  # (n_cp + 2,)
    edges = np.flatnonzero(inside[1:] != inside[:-1])  # word starts and ends, alternating
    return cp, edges[0::2], edges[1::2]


def words(normalised: str, strip_diacritics: bool) -> list[str]:
    """The words MinHash compares: normalised text without punctuation (and diacritics)."""
    cp, starts, ends = _word_spans(normalised, strip_diacritics)
    return [cp[s:e].tobytes().decode("utf-32-le") for s, e in zip(starts, ends)]


def shingle_hashes(normalised: str, n: int, strip_diacritics: bool) -> np.ndarray:
    """Distinct 32-bit hashes of the text's word n-grams: (n_distinct,) uint32, sorted.

    A text shorter than n words is one shingle of all its words, so short documents still get a
    signature; a text with no words has no shingles (and no signature).
    """
    cp, starts, ends = _word_spans(normalised, strip_diacritics)
    if len(starts) == 0:
        return np.empty(0, dtype=np.uint32)
    with np.errstate(over="ignore"):  # uint64 products wrap mod 2^64 on purpose
        powers = _powers(_P, len(cp))  # (n_cp,) P^j
        prefix = np.zeros(len(cp) + 1, dtype=np.uint64)  # (n_cp + 1,)
        np.cumsum((cp.astype(np.uint64) + np.uint64(1)) * powers, out=prefix[1:])
        word = (prefix[ends] - prefix[starts]) * _powers(_P_INVERSE, len(cp))[starts]  # (n_words,)
        word = _mix64(word)
        n = min(n, len(word))
        windows = len(word) - n + 1
        h = np.zeros(windows, dtype=np.uint64)  # (windows,): Horner over each window's n words
        for k in range(n):
            h = h * _P + word[k : k + windows]
    return np.unique(((h >> np.uint64(32)) ^ h).astype(np.uint32))


def _powers(base: np.uint64, n: int) -> np.ndarray:
    """base^0 .. base^(n-1) mod 2^64: (n,) uint64, a view of a per-process table grown by doubling."""
    table = _POWER_TABLES.get(int(base))
    if table is None or len(table) < n:
        table = np.full(max(n, 2 * len(table) if table is not None else 1 << 14), base, dtype=np.uint64)
        table[0] = 1
        with np.errstate(over="ignore"):
            np.multiply.accumulate(table, out=table)
        _POWER_TABLES[int(base)] = table
    return table[:n]


_POWER_TABLES: dict[int, np.ndarray] = {}


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit reaches every output bit."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def signature_matrix(shingle_sets: list[np.ndarray], cfg: MinHashConfig) -> np.ndarray:
    """MinHash hash values, one row per document: (n_docs, num_perm) uint32.

    Documents without shingles get an all-zero row; callers mark them as having no signature.
    """
    out = np.zeros((len(shingle_sets), cfg.num_perm), dtype=DTYPE)
    present = [i for i, s in enumerate(shingle_sets) if len(s)]
    # MinHash.bulk builds the permutations once and batch-updates a copy per document; the
    # shingles are already 32-bit hashes, so its hash function passes them through.
    sketches = MinHash.bulk(
        (shingle_sets[i].tolist() for i in present),
        num_perm=cfg.num_perm, seed=cfg.seed, scheme=SCHEME, hashfunc=_already_hashed,
    )
    for i, sketch in zip(present, sketches):
        out[i] = sketch.hashvalues
    return out


def _already_hashed(value: int) -> int:
    return value


def similar_pairs(hashvalues: np.ndarray, cfg: MinHashConfig) -> Iterator[tuple[int, int]]:
    """Pairs (i, j), i > j, whose estimated Jaccard is at least the threshold.

    Each row is queried against the rows before it, then inserted, so every pair comes up once
    and in a fixed order.
    """
    weights = (1 - cfg.false_negative_weight, cfg.false_negative_weight)
    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm, weights=weights)
    for i, row in enumerate(hashvalues):
        sketch = _sketch(row, cfg)
        for j in sorted(lsh.query(sketch)):
            if sketch.jaccard(_sketch(hashvalues[j], cfg)) >= cfg.threshold:
                yield i, j
        lsh.insert(i, sketch, check_duplication=False)


def _sketch(row: np.ndarray, cfg: MinHashConfig) -> LeanMinHash:
    # Built when needed rather than kept: the index holds only band hashes, not a sketch per row.
    return LeanMinHash(seed=cfg.seed, hashvalues=row, scheme=SCHEME)


def signature_schema(cfg: DedupConfig) -> pa.Schema:
    return pa.schema(
        [
            ("id", pa.string()),
            # Characters of the normalised text: padding whitespace is not content, so the copies
            # of one exact group tie and the lowest id represents them.
            ("length", pa.int64()),
            ("exact_key", pa.binary()),
            # num_perm little-endian uint32 MinHash values; null for a text without words.
            ("minhash", pa.binary(cfg.minhash.num_perm * DTYPE.itemsize)),
            ("shingles", pa.int32()),  # distinct shingles: the set size containment needs
            ("line_hashes", LINE_HASH),  # distinct normalised lines (empty with lines off)
        ]
    )


def signatures(table: pa.Table, cfg: DedupConfig) -> pa.Table:
    """Step 1, per shard: what `find_duplicates` needs to know of each document, and no text."""
    texts = table.column("text").to_pylist()
    normalised = [normalise(t) for t in texts]
    mh = cfg.minhash
    shingle_sets = [shingle_hashes(t, mh.ngram, mh.strip_diacritics) for t in normalised]
    hashvalues = signature_matrix(shingle_sets, mh)  # (n_docs, num_perm)
    minhash = [row.tobytes() if len(s) else None for row, s in zip(hashvalues, shingle_sets)]
    return pa.table(
        {
            "id": table.column("id"),
            "length": [len(t) for t in normalised],
            "exact_key": [exact_key(t) for t in normalised],
            "minhash": minhash,
            "shingles": [len(s) for s in shingle_sets],
            "line_hashes": (
                [line_hashes(t, cfg.lines.min_line_chars) for t in texts] if cfg.lines.enabled else [[]] * len(texts)
            ),
        },
        schema=signature_schema(cfg),
    )


def find_duplicates(signature_tables: Iterable[pa.Table], cfg: DedupConfig) -> pa.Table:
    """Step 2, global: one row per document with its cluster and, for a removed one, its reason.

    Columns: id, dup_cluster (the representative's id), dup_cluster_size, duplicate_of (null for
    representatives and singletons), reason (null = keep, `exact_duplicate` = same normalised
    text as the representative, `near_duplicate` = reached through MinHash edges,
    `contained_in` = the document's near-duplicate cluster lies inside a longer document),
    boilerplate_lines (line hashes a kept document loses, see pipeline/dedup/lines.py). Sorted
    by id.
    """
    schema = signature_schema(cfg)
    # The empty table gives the schema when there are no shards (or all of them are empty).
    sig = pa.concat_tables([schema.empty_table(), *(t.select(schema.names) for t in signature_tables)])
    # Sorting by id first makes every later step independent of the order shards arrive in.
    sig = sig.sort_by("id")
    ids = sig.column("id").to_pylist()
    n = len(ids)
    duplicated = [a for a, b in zip(ids, ids[1:]) if a == b]
    if duplicated:
        raise BuildError(
            f"dedup: id {duplicated[0]!r} occurs in more than one row; "
            "ids must be unique in a build."
        )

    keys = sig.column("exact_key").to_pylist()
    # Documents sharing a normalised text form one exact group; its first member stands for it.
    group_of = _exact_groups(keys) if cfg.exact else np.arange(n)
    members = np.flatnonzero(group_of != np.arange(n))
    edges = [np.stack([members, group_of[members]], axis=1)]  # (n_edges, 2) pairs of rows
    if cfg.minhash.enabled:
        signed = pc.is_valid(sig.column("minhash")).to_numpy(zero_copy_only=False)
        heads = np.flatnonzero((group_of == np.arange(n)) & signed)
        pairs = list(similar_pairs(_hashvalues(sig, heads, cfg), cfg.minhash))
        edges.append(heads[np.array(pairs, dtype=np.int64).reshape(-1, 2)])

    rows, cols = np.concatenate(edges).T
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, component = connected_components(graph, directed=False)  # (n,) component label per doc

    # Representative: longest text, then lowest id. Rows are sorted by id, so the first row of a
    # component in (-length, row) order is the one.
    lengths = sig.column("length").to_numpy()
    order = np.lexsort((np.arange(n), -lengths))
    rep_of_component = {}
    for i in order:
        rep_of_component.setdefault(component[i], i)
    near_rep = np.array([rep_of_component[c] for c in component], dtype=np.int64)  # (n,)
    rep = near_rep.copy()
    if cfg.minhash.enabled and cfg.containment:
        # A cluster whose representative lies inside a longer document joins that document's
        # final cluster. Containers rank strictly before (are longer than) what they contain, so
        # walking representatives longest first resolves every chain in one pass. A short text
        # inside two long ones joins one of them and never merges the two.
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        heads = np.flatnonzero((near_rep == np.arange(n)) & signed)
        sizes = sig.column("shingles").to_numpy()[heads]
        inside = containers(_hashvalues(sig, heads, cfg), sizes, rank[heads],
                            cfg.containment_threshold, cfg.minhash.seed, SCHEME)
        final = dict(zip(heads.tolist(), heads.tolist()))
        for h in np.argsort(rank[heads], kind="stable"):
            if inside[h] >= 0:
                final[heads[h]] = final[near_rep[heads[inside[h]]]]
        rep = np.array([final.get(r, r) for r in near_rep], dtype=np.int64)
    size = np.bincount(rep, minlength=n)[rep].astype(np.int32)

    duplicate_of, reasons = [], []
    for i in range(n):
        if rep[i] == i:
            duplicate_of.append(None)
            reasons.append(None)
        elif rep[i] != near_rep[i]:
            duplicate_of.append(ids[rep[i]])
            reasons.append("contained_in")
        else:
            duplicate_of.append(ids[rep[i]])
            same_text = cfg.exact and keys[i] == keys[rep[i]]
            reasons.append("exact_duplicate" if same_text else "near_duplicate")
    kept = rep == np.arange(n)
    if cfg.lines.enabled:
        boilerplate = boilerplate_lines(sig.column("line_hashes"), kept, cfg.lines.max_documents)
    else:
        boilerplate = pa.array([[]] * n, LINE_HASH)
    return pa.table(
        {
            "id": sig.column("id"),
            "dup_cluster": pa.array([ids[r] for r in rep], pa.string()),
            "dup_cluster_size": pa.array(size, pa.int32()),
            "duplicate_of": pa.array(duplicate_of, pa.string()),
            "reason": pa.array(reasons, pa.string()),
            "boilerplate_lines": boilerplate,
        }
    )


def _exact_groups(keys: list[bytes]) -> np.ndarray:
    """For each row, the index of the first row with the same key: (n,) int64."""
    first: dict[bytes, int] = {}
    return np.array([first.setdefault(k, i) for i, k in enumerate(keys)], dtype=np.int64)


def _hashvalues(sig: pa.Table, rows: np.ndarray, cfg: DedupConfig) -> np.ndarray:
    """MinHash values of the given rows: (len(rows), num_perm) uint32."""
    blobs = sig.column("minhash").take(rows).to_pylist()
    return np.frombuffer(b"".join(blobs), dtype=DTYPE).reshape(len(rows), cfg.minhash.num_perm)
