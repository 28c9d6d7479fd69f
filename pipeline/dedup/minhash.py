"""The near-duplicate method: MinHash signatures per shard, then LSH candidates, verified.

Two documents are near duplicates when the estimated Jaccard similarity of their shingle sets
reaches `dedup.minhash.threshold`; clusters are the connected components of such pairs, joined to
the exact clusters before them (pipeline/dedup/methods.py runs the methods in order).

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
import re
import sys
import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketch import MinHash

from pipeline.config import DedupConfig, MinHashConfig
from pipeline.dedup.clusters import DTYPE, SCHEME, Clusters, DedupMethod
from pipeline.dedup.lsh import Runs, lsh_params

# Shingles see words, not their decoration: punctuation (P*) separates words like whitespace
# ("well-known," -> "well known"), and so do the modifier-letter apostrophes and turned commas
# (U+02BC, U+02BB) that some orthographies type where others type "'" (Uzbek "oʻzbek", "o'zbek").
# With `strip_diacritics`, combining marks (Mn: accents, tonos, breathings; dropped after NFD as
# datatrove and CCNet do) and format characters (Cf: soft hyphens, zero-width joiners) go too, so
# "ἄνθρωποι" matches "άνθρωποι", and "co\u00adoperate" (soft hyphen) matches "cooperate". Latin
# letters whose mark Unicode does not decompose (stroke, hook, bar: ø ł đ ɓ ɗ ƙ ɨ) and the open and
# dotless letters (ɛ ɔ ı) fold to their base letter as well: they are the diacritics NFD cannot
# see, and texts typed without them are common (Lingala "mokɛ" / "moke", Hausa "ɗan" / "dan").
#
# Two kinds of shingles (MinHashConfig.shingle): word n-grams, and character n-grams of the words
# joined by one space. A word n-gram changes whenever one of its n words does, so a spelling that
# differs every few words (Romanian "sînt" / "sunt", Lingala "pe" / "mpe") leaves almost no
# shared word 5-gram; character 7-grams (the default) change only around the differing letters.
#
# Everything after Unicode normalisation runs in numpy over the text's code points, one array
# per document, never a Python loop per word or per shingle: lookup tables mark separators and
# dropped characters and fold letters; a span of code points (a word, or a character n-gram) is
# hashed as a polynomial of its code points, sum_j (c_j + 1) * P^j mod 2^64, taken from one prefix
# sum; span hashes are mixed (splitmix64's finaliser), and a word n-gram's hash is a polynomial of
# its word hashes, so word order counts. The 64-bit result is folded to the 32 bits of
# datasketch's affine32 scheme, which mixes it once more (MurmurHash3's finaliser) before its
# permutations (`signature_matrix` applies both in numpy). datasketch's default hash, SHA-1 of
# each shingle's string, one Python call per shingle, was most of the signature time.
_P = np.uint64(0x9E3779B97F4A7C15)  # odd, so invertible mod 2^64 (the golden ratio's fraction)
_P_INVERSE = np.uint64(pow(int(_P), -1, 2**64))
_SPACE = 0x20
_APOSTROPHE_LETTERS = {"\u02bb", "\u02bc"}  # MODIFIER LETTER TURNED COMMA, MODIFIER LETTER APOSTROPHE
# "LATIN SMALL LETTER OPEN E", "... O WITH STROKE", "... D WITH HOOK": group 1 is the base letter.
_FOLDED_LATIN = re.compile(
    r"LATIN SMALL LETTER (?:OPEN |DOTLESS )?([A-Z])(?: WITH (?:STROKE|HOOK|BAR|DIAGONAL STROKE))?"
)


@functools.cache
def code_point_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(separator, dropped, folded): arrays indexed by code point, (0x110000,) each; built once.

    folded maps a code point to itself or, for the letters above, to its base letter. ~0.35 s.
    """
    separator = np.zeros(sys.maxunicode + 1, dtype=bool)
    dropped = np.zeros(sys.maxunicode + 1, dtype=bool)
    folded = np.arange(sys.maxunicode + 1, dtype=np.uint32)
    for cp in range(sys.maxunicode + 1):
        char = chr(cp)
        category = unicodedata.category(char)
        separator[cp] = category.startswith("P") or char.isspace() or char in _APOSTROPHE_LETTERS
        dropped[cp] = category in ("Mn", "Cf")
        # Texts are casefolded before shingling, so only small letters need a table entry; a
        # letter with a decomposition (é) is NFD's, not this table's.
        if category == "Ll" and cp > 0x7F and unicodedata.decomposition(char) == "":
            match = _FOLDED_LATIN.fullmatch(unicodedata.name(char, ""))
            if match:
                folded[cp] = ord(match.group(1).lower())
    return separator, dropped, folded


def warm() -> None:
    """What every shard's signatures need whatever its text: the code-point tables and the LSH
    bands of the default settings. Part of the dedup stage's warm-up (pipeline/stage.py `warm`)."""
    code_point_tables()
    cfg = MinHashConfig()
    lsh_params(cfg.threshold, cfg.num_perm, cfg.false_negative_weight)


def _word_spans(normalised: str, strip_diacritics: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Code points of the text and [start, end) of each word: (n_cp,), (n_words,), (n_words,)."""
    separator, dropped, folded = code_point_tables()
    if strip_diacritics:
        normalised = unicodedata.normalize("NFD", normalised)
    cp = np.frombuffer(normalised.encode("utf-32-le"), dtype="<u4")
    if strip_diacritics:
        cp = folded[cp[~dropped[cp]]]
    inside = np.concatenate(([False], ~separator[cp], [False]))  # (n_cp + 2,)
    edges = np.flatnonzero(inside[1:] != inside[:-1])  # word starts and ends, alternating
    return cp, edges[0::2], edges[1::2]


def words(normalised: str, strip_diacritics: bool) -> list[str]:
    """The words MinHash compares: normalised text without punctuation (and diacritics)."""
    cp, starts, ends = _word_spans(normalised, strip_diacritics)
    return [cp[s:e].tobytes().decode("utf-32-le") for s, e in zip(starts, ends)]


def shingle_hashes(normalised: str, n: int, strip_diacritics: bool, shingle: str = "word") -> np.ndarray:
    """Distinct 32-bit hashes of the text's word (or character) n-grams: (n_distinct,) uint32, sorted.

    A text shorter than n words (characters) is one shingle of all of them, so short documents
    still get a signature; a text with no words has no shingles (and no signature).
    """
    cp, starts, ends = _word_spans(normalised, strip_diacritics)
    if len(starts) == 0:
        return np.empty(0, dtype=np.uint32)
    if shingle == "char":
        # The words joined by one space: each word, then the first separator after it (as a space).
        keep = np.zeros(len(cp), dtype=bool)
        keep[_ranges(starts, ends)] = True
        keep[ends[:-1]] = True
        cp = np.where(keep, cp, _SPACE)[keep]  # (n_chars,)
        n = min(n, len(cp))
        starts = np.arange(len(cp) - n + 1)
        return _fold32(_span_hashes(cp, starts, starts + n))
    with np.errstate(over="ignore"):  # uint64 products wrap mod 2^64 on purpose
        word = _span_hashes(cp, starts, ends)  # (n_words,)
        n = min(n, len(word))
        windows = len(word) - n + 1
        h = np.zeros(windows, dtype=np.uint64)  # (windows,): Horner over each window's n words
        for k in range(n):
            h = h * _P + word[k : k + windows]
    return _fold32(h)


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The indices of every [start, end) span, concatenated."""
    lengths = ends - starts
    return np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())


def _span_hashes(cp: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mixed polynomial hash of each code-point span cp[start:end]: (n_spans,) uint64."""
    with np.errstate(over="ignore"):  # uint64 products wrap mod 2^64 on purpose
        prefix = np.zeros(len(cp) + 1, dtype=np.uint64)  # (n_cp + 1,)
        np.cumsum((cp.astype(np.uint64) + np.uint64(1)) * _powers(_P, len(cp)), out=prefix[1:])
        return _mix64((prefix[ends] - prefix[starts]) * _powers(_P_INVERSE, len(cp))[starts])


def _fold32(h: np.ndarray) -> np.ndarray:
    """Distinct 64-bit hashes folded to 32 bits: (n_distinct,) uint32, sorted."""
    # Sorting and dropping repeats: np.unique (numpy 2.4, hash-table path) took many times longer
    # on a page's thousands of values, a large share of the signature time with character shingles.
    folded = np.sort(((h >> np.uint64(32)) ^ h).astype(np.uint32))
    return folded[np.concatenate(([True], folded[1:] != folded[:-1]))]


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

    The values datasketch's `MinHash(num_perm, seed, scheme="affine32").update_batch` gives for the
    shingles as their own hashes (tests/dedup/test_minhash.py checks it), computed in numpy:
    datasketch converts each shingle with a Python call first (a 7-9k character page has ~1.2k
    word 5-grams and 5-7k character 7-grams), half the signature time with character shingles.
    Documents without shingles get an all-zero row; callers mark them as having no signature.
    """
    a, b = _permutations(cfg.num_perm, cfg.seed)  # (num_perm,) uint32 each
    out = np.zeros((len(shingle_sets), cfg.num_perm), dtype=DTYPE)
    # Shingles are permuted PERMUTE_BATCH at a time into one buffer: the whole (n_shingles,
    # num_perm) product at once falls out of cache, and a fresh 1 MB array per slice is paged in
    # anew each time (glibc returns it to the system on free); both were several times slower.
    permuted = np.empty((PERMUTE_BATCH, cfg.num_perm), dtype=np.uint32)
    for row, shingles in zip(out, shingle_sets):
        if len(shingles) == 0:
            continue
        mixed = _fmix32(shingles)[:, None]  # (n_shingles, 1)
        row[:] = np.iinfo(np.uint32).max
        for start in range(0, len(mixed), PERMUTE_BATCH):
            part = mixed[start : start + PERMUTE_BATCH]
            batch = permuted[: len(part)]  # (len(part), num_perm)
            np.multiply(part, a, out=batch)
            batch += b  # uint32 wraps: a * h + b mod 2^32
            np.minimum(row, batch.min(axis=0), out=row)
    return out


PERMUTE_BATCH = 1024  # (1024, 128) uint32: 512 KB


@functools.cache
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutations h -> a * h + b mod 2^32 for this seed: (num_perm,) uint32 x 2."""
    a, b = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations
    return a.astype(np.uint32), b.astype(np.uint32)


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser, affine32's one mix of each input hash before permuting it."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def band_columns(cfg: MinHashConfig) -> list[str]:
    """Names of a signature table's LSH band key columns, one per band."""
    bands, _ = lsh_params(cfg.threshold, cfg.num_perm, cfg.false_negative_weight)
    return [f"band_{band:02d}" for band in range(bands)]


def band_keys(hashvalues: np.ndarray, cfg: MinHashConfig) -> np.ndarray:
    """One 64-bit key per LSH band of r MinHash values: (n_docs, bands) uint64.

    Equal bands give equal keys. Unequal ones share a key with odds 2^-64, which only adds a
    candidate pair to verify.
    """
    bands, rows = lsh_params(cfg.threshold, cfg.num_perm, cfg.false_negative_weight)
    keys = np.zeros((len(hashvalues), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):  # uint64 products wrap mod 2^64 on purpose
        for k in range(rows):  # the k-th value of every band: columns k, r + k, 2r + k, ...
            values = hashvalues[:, k : bands * rows : rows].astype(np.uint64)  # (n_docs, bands)
            keys = _mix64(keys * _P + values + np.uint64(1))
    return keys


def _columns(normalised: list[str], cfg: DedupConfig) -> dict[str, object]:
    """MinHash values, shingle counts and LSH band keys of each text (null without shingles)."""
    mh = cfg.minhash
    shingle_sets = [shingle_hashes(t, mh.ngram, mh.strip_diacritics, mh.shingle) for t in normalised]
    hashvalues = signature_matrix(shingle_sets, mh)  # (n_docs, num_perm)
    unsigned = np.array([len(s) == 0 for s in shingle_sets], dtype=bool)
    keys = band_keys(hashvalues, mh)  # (n_docs, bands)
    return {
        "minhash": [row.tobytes() if len(s) else None for row, s in zip(hashvalues, shingle_sets)],
        "shingles": [len(s) for s in shingle_sets],
        **{name: pa.array(keys[:, b], mask=unsigned) for b, name in enumerate(band_columns(mh))},
    }


def _fields(cfg: DedupConfig) -> list[tuple[str, pa.DataType]]:
    return [
        # num_perm little-endian uint32 MinHash values; null for a text without words.
        ("minhash", pa.binary(cfg.minhash.num_perm * DTYPE.itemsize)),
        ("shingles", pa.int32()),  # distinct shingles: the set size containment needs
        # One key per LSH band (`band_keys`); null for a text without words. The global step
        # reads one band column at a time.
        *[(name, pa.uint64()) for name in band_columns(cfg.minhash)],
    ]


def _join(clusters: Clusters, cfg: DedupConfig) -> None:
    """Clusters whose representatives' estimated Jaccard reaches the threshold merge: LSH band
    keys give candidate pairs among the representatives (pipeline/dedup/lsh.py), each verified
    by its MinHash values; the current clusters join the graph as edges to their representative."""
    docs = clusters.docs
    signed = docs.column("shingles").to_numpy() > 0
    heads = np.flatnonzero(clusters.heads & signed)
    runs = Runs(docs.total)
    for name in band_columns(cfg.minhash):
        runs.add(pc.fill_null(docs.column(name), 0).to_numpy()[heads], heads)
    members = np.flatnonzero(~clusters.heads)
    component = runs.clusters(
        lambda a, b: docs.similar(a, b, cfg.minhash.threshold), np.stack([members, clusters.rep[members]], axis=1)
    )
    clusters.regroup(component)


NEAR = DedupMethod(
    reason="near_duplicate", enabled=lambda cfg: cfg.minhash.enabled, join=_join, fields=_fields, columns=_columns
)
