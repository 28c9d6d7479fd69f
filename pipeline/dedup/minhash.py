"""Global near-duplicate detection: MinHash signatures per shard, then LSH clustering.

Dedup runs in three steps, so no process holds the corpus's texts:
1. `signatures` (per shard, in parallel): id, length, exact key and MinHash of every document.
2. `find_duplicates` (once, global): clusters from ids and hashes only, one decision per id.
3. `pipeline.dedup.stage.apply_decisions` (per shard, in parallel): annotate rows and split.

The same three steps carry partial copies (pipeline/dedup/containment.py: a near-duplicate
cluster inside a longer document joins that document's cluster) and boilerplate lines
(pipeline/dedup/lines.py: counted here over the documents that survive, removed in step 3).

A cluster is a connected component of "same normalised text" (exact) and "estimated Jaccard of
shingles >= threshold" (near) edges. Its representative, the one document kept, is
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
import re
import sys
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketch import MinHash

from pipeline.config import DedupConfig, MinHashConfig
from pipeline.dedup.containment import containers
from pipeline.dedup.exact import KEY_BYTES, exact_key, normalise
from pipeline.dedup.lines import LINE_HASH, boilerplate_lines, line_hashes
from pipeline.dedup.lsh import Runs, lsh_params
from pipeline.errors import BuildError
from pipeline.shards import read_shard

# affine32 is datasketch 2.0's default scheme: uint32 hash values, a collision-free permutation.
SCHEME = "affine32"
DTYPE = np.dtype("<u4")  # fixed byte order, so signatures written on one machine read on any


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
def _code_point_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(separator, dropped, folded): arrays indexed by code point, (0x110000,) each; built once.

    folded maps a code point to itself or, for the letters above, to its base letter.
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


def _word_spans(normalised: str, strip_diacritics: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Code points of the text and [start, end) of each word: (n_cp,), (n_words,), (n_words,)."""
    separator, dropped, folded = _code_point_tables()
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
    # Sorting and dropping repeats: np.unique (numpy 2.4, hash-table path) takes ~15x longer on a
    # page's 7k values, which made it a fifth of the signature time with character shingles.
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
    # num_perm) product at once took 8x longer (out of cache), and a fresh 1 MB array per slice
    # was paged in anew each time (glibc returns it to the system on free), 4x.
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
            # One key per LSH band (`band_keys`); null for a text without words. The global step
            # reads one band column at a time.
            *[(name, pa.uint64()) for name in band_columns(cfg.minhash)],
        ]
    )


def signatures(table: pa.Table, cfg: DedupConfig) -> pa.Table:
    """Step 1, per shard: what `find_duplicates` needs to know of each document, and no text."""
    texts = table.column("text").to_pylist()
    normalised = [normalise(t) for t in texts]
    mh = cfg.minhash
    shingle_sets = [shingle_hashes(t, mh.ngram, mh.strip_diacritics, mh.shingle) for t in normalised]
    hashvalues = signature_matrix(shingle_sets, mh)  # (n_docs, num_perm)
    minhash = [row.tobytes() if len(s) else None for row, s in zip(hashvalues, shingle_sets)]
    unsigned = np.array([len(s) == 0 for s in shingle_sets], dtype=bool)
    keys = band_keys(hashvalues, mh)  # (n_docs, bands)
    return pa.table(
        {
            "id": table.column("id"),
            "length": [len(t) for t in normalised],
            "exact_key": [exact_key(t) for t in normalised],
            "minhash": minhash,
            "shingles": [len(s) for s in shingle_sets],
            "line_hashes": (
                [line_hashes(t, cfg.lines.min_line_chars, cfg.lines.sentence_spans) for t in texts]
                if cfg.lines.enabled
                else [[]] * len(texts)
            ),
            **{name: pa.array(keys[:, b], mask=unsigned) for b, name in enumerate(band_columns(mh))},
        },
        schema=signature_schema(cfg),
    )


REASONS = ("exact_duplicate", "near_duplicate", "contained_in", "duplicate_of_earlier_build")
EXACT, NEAR, CONTAINED, EARLIER = range(len(REASONS))


def find_duplicates(sources: Iterable[pa.Table | Path], cfg: DedupConfig, earlier: Iterable[Path] = ()) -> pa.Table:
    """Step 2, global: one row per document with its cluster and, for a removed one, its reason.

    sources: each shard's signatures, as a table or as its Parquet file; a column is read from
    them when it is needed (pipeline/dedup/lsh.py says what stays in memory). earlier: the
    signature files of the documents earlier builds kept (pipeline/dedup/index.py).

    Columns: id, dup_cluster (the representative's id), dup_cluster_size, duplicate_of (null for
    representatives and singletons), reason (null = keep, `exact_duplicate` = same normalised
    text as the representative, `near_duplicate` = reached through MinHash edges,
    `contained_in` = the document's near-duplicate cluster lies inside a longer document,
    `duplicate_of_earlier_build` = the cluster holds a document an earlier build kept, which then
    represents it and counts in its size), boilerplate_lines (line hashes a kept document loses,
    see pipeline/dedup/lines.py). Sorted by id.
    """
    docs = _Signatures(list(sources), list(earlier), cfg)
    n, total = docs.n, docs.total
    everyone = np.arange(total)
    signed = docs.column("shingles").to_numpy() > 0

    # Documents sharing a normalised text form one exact group; its first member stands for it.
    group_of = everyone
    if cfg.exact:
        keys = _fixed_width(docs.column("exact_key").cast(pa.binary(KEY_BYTES)), KEY_BYTES)
        _, first, inverse = np.unique(keys.view(f"V{KEY_BYTES}").ravel(), return_index=True, return_inverse=True)
        group_of = first[inverse]
    members = np.flatnonzero(group_of != everyone)
    runs = Runs(total)
    if cfg.minhash.enabled:
        heads = np.flatnonzero((group_of == everyone) & signed)
        for name in band_columns(cfg.minhash):
            runs.add(pc.fill_null(docs.column(name), 0).to_numpy()[heads], heads)
    component = runs.clusters(
        lambda a, b: docs.similar(a, b, cfg.minhash.threshold), np.stack([members, group_of[members]], axis=1)
    )

    # Representative: a document an earlier build kept (it stays kept), then the longest text,
    # then the lowest index, which for this build's documents is the lowest id.
    new = everyone < n
    order = np.lexsort((everyone, -docs.column("length").to_numpy(), new))
    _, first = np.unique(component[order], return_index=True)
    near_rep = order[first][component]  # (total,); component labels are 0 .. n_components - 1
    rep = near_rep
    if cfg.minhash.enabled and cfg.containment:
        rep = _join_containers(docs, near_rep, order, signed & new, cfg)
    size = np.bincount(rep, minlength=total)[rep[:n]].astype(np.int32)

    rep, own = rep[:n], everyone[:n]
    removed = rep != own
    code = np.where(removed, NEAR, -1)
    if cfg.exact:
        code[removed & (group_of[:n] == group_of[rep])] = EXACT
    code[rep != near_rep[:n]] = CONTAINED
    code[rep >= n] = EARLIER
    if cfg.lines.enabled:
        boilerplate = boilerplate_lines(docs.column("line_hashes", earlier=False), ~removed, cfg.lines.max_documents)
    else:
        boilerplate = pa.array([[]] * n, LINE_HASH)
    ids = docs.column("id")
    return pa.table(
        {
            "id": ids.slice(0, n),
            "dup_cluster": ids.take(rep),
            "dup_cluster_size": pa.array(size, pa.int32()),
            "duplicate_of": ids.take(pa.array(rep, mask=~removed)),
            "reason": pa.array(REASONS, pa.string()).take(pa.array(code, mask=code < 0)),
            "boilerplate_lines": boilerplate,
        }
    )


def _join_containers(
    docs: _Signatures, near_rep: np.ndarray, order: np.ndarray, eligible: np.ndarray, cfg: DedupConfig
) -> np.ndarray:
    """Each document's representative once clusters inside a longer document joined it: (total,).

    A cluster whose representative lies inside a longer document joins that document's final
    cluster. Containers rank strictly before (are longer than) what they contain, so walking
    representatives longest first resolves every chain in one pass. A short text inside two long
    ones joins one of them and never merges the two. Only `eligible` representatives take part.
    This step holds the MinHash values of every representative in memory (see README "Dedup").
    """
    total = len(near_rep)
    rank = np.empty(total, dtype=np.int64)
    rank[order] = np.arange(total)
    heads = np.flatnonzero((near_rep == np.arange(total)) & eligible)
    sizes = docs.column("shingles").to_numpy()[heads]
    lengths = docs.column("length").to_numpy()[heads]
    inside = containers(
        docs.hashvalues(heads),
        sizes,
        lengths,
        rank[heads],
        cfg.containment_threshold,
        cfg.partial_copy_threshold,
        cfg.minhash.seed,
        SCHEME,
    )
    final = np.arange(total)
    contained = np.flatnonzero(inside >= 0)
    for h in contained[np.argsort(rank[heads[contained]], kind="stable")]:
        final[heads[h]] = final[heads[inside[h]]]
    return final[near_rep]


class _Signatures:
    """Signature columns of this build's documents, sorted by id, then of earlier builds' kept
    documents: read one column at a time, from the tables or their Parquet files.

    Document index i < n is this build's i-th id in sorted order (sorting first makes every later
    step independent of the order shards arrive in); n <= i < total are earlier documents, in the
    order of `earlier`.
    """

    def __init__(self, sources: list[pa.Table | Path], earlier: list[Path], cfg: DedupConfig):
        self.sources = sources + earlier
        self.new_sources = len(sources)
        self.schema = signature_schema(cfg)
        self.num_perm = cfg.minhash.num_perm
        ids = [_read(source, "id") for source in self.sources]
        self.offsets = np.cumsum([0, *(len(column) for column in ids)])  # (n_sources + 1,)
        self.n, self.total = int(self.offsets[self.new_sources]), int(self.offsets[-1])
        by_id = pc.sort_indices(self._concat(ids[: self.new_sources], "id")).to_numpy().astype(np.int64)
        self.position = np.concatenate([by_id, np.arange(self.n, self.total)])  # index -> source row
        self.ids = self._concat(ids, "id").take(self.position)
        repeated = pc.equal(self.ids.slice(1, max(self.n - 1, 0)), self.ids.slice(0, max(self.n - 1, 0)))
        if pc.any(repeated).as_py():
            duplicated = self.ids[pc.index(repeated, True).as_py()].as_py()
            raise BuildError(f"dedup: id {duplicated!r} occurs in more than one row; ids must be unique in a build.")

    def column(self, name: str, earlier: bool = True) -> pa.Array:
        """One column for every document in index order (this build's documents only when not
        `earlier`)."""
        if name == "id":
            return self.ids if earlier else self.ids.slice(0, self.n)
        sources = self.sources if earlier else self.sources[: self.new_sources]
        column = self._concat([_read(source, name) for source in sources], name)
        return column.take(self.position if earlier else self.position[: self.n])

    def hashvalues(self, indices: np.ndarray) -> np.ndarray:
        """MinHash values of the given documents: (len(indices), num_perm) uint32."""
        out = np.zeros((len(indices), self.num_perm), dtype=DTYPE)
        positions = self.position[indices]
        by_position = np.argsort(positions, kind="stable")
        bounds = np.searchsorted(positions[by_position], self.offsets)  # (n_sources + 1,)
        for source, offset, start, end in zip(self.sources, self.offsets, bounds[:-1], bounds[1:]):
            if start < end:
                pick = by_position[start:end]
                blobs = _read(source, "minhash").combine_chunks().take(positions[pick] - offset)
                out[pick] = _fixed_width(blobs, self.num_perm * DTYPE.itemsize).view(DTYPE)
        return out

    def similar(self, a: np.ndarray, b: np.ndarray, threshold: float) -> np.ndarray:
        """Whether the estimated Jaccard of each pair (a[k], b[k]) reaches threshold: (len(a),) bool.

        Reads the MinHash values of the documents in these pairs only.
        """
        wanted = np.union1d(a, b)
        values = self.hashvalues(wanted)  # (len(wanted), num_perm)
        a, b = np.searchsorted(wanted, a), np.searchsorted(wanted, b)
        out = np.empty(len(a), dtype=bool)
        for start in range(0, len(a), VERIFY_BATCH):
            batch = slice(start, start + VERIFY_BATCH)
            matches = np.count_nonzero(values[a[batch]] == values[b[batch]], axis=1)
            out[batch] = matches / self.num_perm >= threshold  # as datasketch's MinHash.jaccard
        return out

    def _concat(self, columns: list[pa.ChunkedArray], name: str) -> pa.Array:
        chunks = [chunk for column in columns for chunk in column.chunks]
        return pa.chunked_array(chunks, self.schema.field(name).type).combine_chunks()


VERIFY_BATCH = 8192  # pairs compared at once: (8192, num_perm) uint32 twice, 8 MB at 128


def _read(source: pa.Table | Path, name: str) -> pa.ChunkedArray:
    return source.column(name) if isinstance(source, pa.Table) else read_shard(source, [name]).column(0)


def _fixed_width(values: pa.Array, width: int) -> np.ndarray:
    """The bytes of a fixed-size binary array, one row per value: (len(values), width) uint8."""
    if len(values) == 0:
        return np.empty((0, width), dtype=np.uint8)
    data = np.frombuffer(values.buffers()[1], dtype=np.uint8)
    return data[values.offset * width : (values.offset + len(values)) * width].reshape(len(values), width)
