"""Global near-duplicate detection: MinHash signatures per shard, then LSH clustering.

Dedup runs in three steps, so no process holds the corpus's texts:
1. `signatures` (per shard, in parallel): id, length, exact key and MinHash of every document.
2. `find_duplicates` (once, global): clusters from ids and hashes only, one decision per id.
3. `pipeline.dedup.stage.apply_decisions` (per shard, in parallel): annotate rows and split.

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
from pipeline.dedup.exact import exact_key, normalise
from pipeline.errors import BuildError

# affine32 is datasketch 2.0's default scheme: uint32 hash values, a collision-free permutation.
SCHEME = "affine32"
DTYPE = np.dtype("<u4")  # fixed byte order, so signatures written on one machine read on any


# Shingles see words, not their decoration: punctuation (P*) becomes a space ("well-known," ->
# "well known"). With `strip_diacritics`, combining marks (Mn: accents, tonos, breathings; dropped
# after NFD as datatrove and CCNet do) and format characters (Cf: soft hyphens, zero-width joiners)
# go too, so "ἄνθρωποι" matches "άνθρωποι", and "co\u00adoperate" (soft hyphen) matches
# "cooperate".
def _translation_tables() -> tuple[dict[int, str], dict[int, str | None]]:
    punctuation: dict[int, str] = {}
    marks: dict[int, None] = {}
    for cp in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(cp))
        if category.startswith("P"):
            punctuation[cp] = " "
        elif category in ("Mn", "Cf"):
            marks[cp] = None
    return punctuation, punctuation | marks


_PUNCTUATION, _PUNCTUATION_AND_MARKS = _translation_tables()


def words(normalised: str, strip_diacritics: bool) -> list[str]:
    """The words MinHash compares: normalised text without punctuation (and diacritics)."""
    if strip_diacritics:
        return unicodedata.normalize("NFD", normalised).translate(_PUNCTUATION_AND_MARKS).split()
    return normalised.translate(_PUNCTUATION).split()


def shingles(tokens: list[str], n: int) -> list[bytes]:
    """Word n-grams as UTF-8 bytes.

    A text shorter than n words is one shingle of all its words, so short documents still get a
    signature; a text with no words has no shingles (and no signature).
    """
    if len(tokens) <= n:
        return [" ".join(tokens).encode("utf-8")] if tokens else []
    return [" ".join(tokens[i : i + n]).encode("utf-8") for i in range(len(tokens) - n + 1)]


def signature_matrix(shingle_sets: list[list[bytes]], cfg: MinHashConfig) -> np.ndarray:
    """MinHash hash values, one row per document: (n_docs, num_perm) uint32.

    Documents without shingles get an all-zero row; callers mark them as having no signature.
    """
    out = np.zeros((len(shingle_sets), cfg.num_perm), dtype=DTYPE)
    present = [i for i, s in enumerate(shingle_sets) if s]
    # MinHash.bulk builds the permutations once and batch-updates a copy per document.
    sketches = MinHash.bulk(
        (shingle_sets[i] for i in present), num_perm=cfg.num_perm, seed=cfg.seed, scheme=SCHEME
    )
    for i, sketch in zip(present, sketches):
        out[i] = sketch.hashvalues
    return out


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
        ]
    )


def signatures(table: pa.Table, cfg: DedupConfig) -> pa.Table:
    """Step 1, per shard: what `find_duplicates` needs to know of each document, and no text."""
    texts = table.column("text").to_pylist()
    normalised = [normalise(t) for t in texts]
    mh = cfg.minhash
    shingle_sets = [shingles(words(t, mh.strip_diacritics), mh.ngram) for t in normalised]
    hashvalues = signature_matrix(shingle_sets, mh)  # (n_docs, num_perm)
    minhash = [row.tobytes() if s else None for row, s in zip(hashvalues, shingle_sets)]
    return pa.table(
        {
            "id": table.column("id"),
            "length": [len(t) for t in normalised],
            "exact_key": [exact_key(t) for t in normalised],
            "minhash": minhash,
        },
        schema=signature_schema(cfg),
    )


def find_duplicates(signature_tables: Iterable[pa.Table], cfg: DedupConfig) -> pa.Table:
    """Step 2, global: one row per document with its cluster and, for a removed one, its reason.

    Columns: id, dup_cluster (the representative's id), dup_cluster_size, duplicate_of (null for
    representatives and singletons), reason (null = keep, `exact_duplicate` = same normalised
    text as the representative, `near_duplicate` = reached through MinHash edges). Sorted by id.
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
    rep = np.array([rep_of_component[c] for c in component], dtype=np.int64)  # (n,)
    size = np.bincount(component)[component].astype(np.int32)

    duplicate_of, reasons = [], []
    for i in range(n):
        if rep[i] == i:
            duplicate_of.append(None)
            reasons.append(None)
        else:
            duplicate_of.append(ids[rep[i]])
            same_text = cfg.exact and keys[i] == keys[rep[i]]
            reasons.append("exact_duplicate" if same_text else "near_duplicate")
    return pa.table(
        {
            "id": sig.column("id"),
            "dup_cluster": pa.array([ids[r] for r in rep], pa.string()),
            "dup_cluster_size": pa.array(size, pa.int32()),
            "duplicate_of": pa.array(duplicate_of, pa.string()),
            "reason": pa.array(reasons, pa.string()),
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
