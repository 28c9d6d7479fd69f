"""The clustering that dedup's methods build, pass by pass, and what a method is.

A dedup method (`DedupMethod`) is one way two documents are found to be copies: exact
(pipeline/dedup/exact.py), near (MinHash-LSH, minhash.py), contained (containment.py). Each
declares the signature columns it needs, computed per shard from the normalised texts (no text
leaves the shard), and one pass over the build's `Clusters`, run in `METHODS` order
(pipeline/dedup/minhash.py): `regroup` joins clusters (same text, similar text), `move` puts a
whole cluster into another document's (a part inside a longer whole).

Each document's representative, the one document its cluster keeps, is the first in the
representative order: a document an earlier build kept (it stays kept), then a document of the
source ranked first (dedup.source_priority, else the order of the build's sources), then the
longest text, then the lowest index (the lowest id among this build's documents, so the choice
does not depend on shard order). A removed document's reason is that of the method whose pass last changed its
representative; a document whose representative an earlier build kept is removed as
`duplicate_of_earlier_build` whatever the method.

A new method is a module with its `DedupMethod` (its reason ending in `_duplicate`, so the dedup
stage's declared reasons cover it) and its place in `METHODS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import DedupConfig
from pipeline.errors import BuildError
from pipeline.shards import read_column

# affine32 is datasketch 2.0's default scheme: uint32 hash values, a collision-free permutation.
SCHEME = "affine32"
DTYPE = np.dtype("<u4")  # fixed byte order, so signatures written on one machine read on any
VERIFY_BATCH = 8192  # pairs compared at once: (8192, num_perm) uint32 twice, 8 MB at 128


def no_fields(cfg: DedupConfig) -> list[tuple[str, pa.DataType]]:
    return []


def no_columns(normalised: list[str], cfg: DedupConfig) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class DedupMethod:
    reason: str  # of the documents its pass moves into another's cluster
    enabled: Callable[[DedupConfig], bool]
    join: Callable[[Clusters, DedupConfig], None]  # its pass; calls clusters.regroup or .move
    # Its signature columns: their (name, type), and their values from the normalised texts of a shard.
    fields: Callable[[DedupConfig], list[tuple[str, pa.DataType]]] = no_fields
    columns: Callable[[list[str], DedupConfig], dict[str, Any]] = no_columns


class Signatures:
    """Signature columns of this build's documents, sorted by id, then of earlier builds' kept
    documents: read one column at a time, from the tables or their Parquet files.

    Document index i < n is this build's i-th id in sorted order (sorting first makes every later
    step independent of the order shards arrive in); n <= i < total are earlier documents, in the
    order of `earlier`.
    """

    def __init__(self, sources: list[pa.Table | Path], earlier: list[Path], schema: pa.Schema, num_perm: int):
        self.sources = sources + earlier
        self.new_sources = len(sources)
        self.schema = schema
        self.num_perm = num_perm
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
                out[pick] = fixed_width(blobs, self.num_perm * DTYPE.itemsize).view(DTYPE)
        return out

    def similar(self, a: np.ndarray, b: np.ndarray, threshold: float) -> np.ndarray:
        """Whether the estimated Jaccard of each pair (a[k], b[k]) reaches threshold: (len(a),) bool.

        Reads the MinHash values of the documents in these pairs only.
        """
        wanted = np.union1d(a, b)
        values = self.hashvalues(wanted)  # (len(wanted), num_perm)
        return similar_pairs(values, np.searchsorted(wanted, a), np.searchsorted(wanted, b), threshold)

    def _concat(self, columns: list[pa.ChunkedArray], name: str) -> pa.Array:
        chunks = [chunk for column in columns for chunk in column.chunks]
        return pa.chunked_array(chunks, self.schema.field(name).type).combine_chunks()


class Clusters:
    """Every document's cluster as the methods' passes leave it: its representative, and the
    method (by index) whose pass last moved it to another document's cluster."""

    def __init__(self, docs: Signatures, priority: Sequence[str] = ()):
        self.docs = docs
        everyone = np.arange(docs.total)
        new = everyone < docs.n
        # A source not in `priority` (and an earlier build's document) ranks after those in it.
        ranked = pc.index_in(docs.column("source"), value_set=pa.array(list(priority), pa.string()))
        source_rank = pc.fill_null(ranked, len(priority)).to_numpy()
        # The representative order (see the module docstring): rank 0 represents first.
        self.order = np.lexsort((everyone, -docs.column("length").to_numpy(), source_rank, new))
        self.rank = np.empty(docs.total, dtype=np.int64)
        self.rank[self.order] = everyone
        self.rep = everyone  # (total,) each document's representative
        self.moved_by = np.full(docs.total, -1)  # (total,) index of the method that last moved it
        self.method = -1  # the method whose pass runs now (set by find_duplicates)

    @property
    def heads(self) -> np.ndarray:
        """(total,) bool: the documents that represent their cluster."""
        return self.rep == np.arange(self.docs.total)

    def regroup(self, component: np.ndarray) -> None:
        """New clusters: component (total,) labels each document's cluster, a union of the
        current ones (a method's symmetric links: equal or similar texts)."""
        _, first = np.unique(component[self.order], return_index=True)
        self._set(self.order[first][np.unique(component, return_inverse=True)[1]])

    def move(self, heads: np.ndarray, into: np.ndarray) -> None:
        """Directional joins: the cluster of heads[k] joins the final cluster of document
        into[k], which ranks before it (a longer text), so walking the moves in rank order
        resolves every chain in one pass."""
        final = np.arange(self.docs.total)
        for k in np.argsort(self.rank[heads], kind="stable"):
            final[heads[k]] = final[into[k]]
        self._set(final[self.rep])

    def _set(self, rep: np.ndarray) -> None:
        self.moved_by = np.where(rep != self.rep, self.method, self.moved_by)
        self.rep = rep


def similar_pairs(values: np.ndarray, a: np.ndarray, b: np.ndarray, threshold: float) -> np.ndarray:
    """Whether rows a[k] and b[k] of values (n, num_perm) have an estimated Jaccard of at least
    threshold: (len(a),) bool."""
    out = np.empty(len(a), dtype=bool)
    for start in range(0, len(a), VERIFY_BATCH):
        batch = slice(start, start + VERIFY_BATCH)
        matches = np.count_nonzero(values[a[batch]] == values[b[batch]], axis=1)
        out[batch] = matches / values.shape[1] >= threshold  # as datasketch's MinHash.jaccard
    return out


def _read(source: pa.Table | Path, name: str) -> pa.ChunkedArray:
    return source.column(name) if isinstance(source, pa.Table) else read_column(source, name)


def fixed_width(values: pa.Array, width: int) -> np.ndarray:
    """The bytes of a fixed-size binary array, one row per value: (len(values), width) uint8."""
    if len(values) == 0:
        return np.empty((0, width), dtype=np.uint8)
    data = np.frombuffer(values.buffers()[1], dtype=np.uint8)
    return data[values.offset * width : (values.offset + len(values)) * width].reshape(len(values), width)
