"""An n-gram index on disk: sorted 64-bit hashes, each with a label (the benchmark it came from).

Memory-bounded both ways. Building: hashes are appended to partition files by hash range as they
stream in, then each partition is sorted alone, so the build holds 1/partitions of the index at
once (16 partitions: a folder of a million benchmark items, ~10^8 n-grams, 800 MB on disk, sorts
in ~60 MB pieces). Reading: the shard jobs memory-map the sorted arrays and binary-search them
(`np.searchsorted`), so a worker's resident memory is the pages its lookups touch, shared with
the other workers through the page cache, not a copy of the index each.

A partition is the hash's position in [0, 2^64) scaled to [0, partitions): partitions hold
consecutive ranges, so writing them one after the other leaves the whole array sorted.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from pipeline.shards import atomic_path

KEYS, LABELS = "keys.npy", "labels.npy"


class IndexWriter:
    """Collects (hash, label) pairs into `folder`; `finish` writes the sorted index there."""

    def __init__(self, folder: Path, partitions: int) -> None:
        self.folder, self.partitions = folder, partitions
        self.scratch = folder / "_partitions"
        shutil.rmtree(self.scratch, ignore_errors=True)  # a killed build's pieces
        self.scratch.mkdir(parents=True)

    def _part(self, hashes: np.ndarray) -> np.ndarray:
        return ((hashes >> np.uint64(32)) * np.uint64(self.partitions)) >> np.uint64(32)

    def add(self, hashes: np.ndarray, labels: np.ndarray) -> None:
        parts = self._part(hashes)
        for p in np.unique(parts).tolist():
            mine = parts == p
            with open(self.scratch / f"{p:05d}.keys", "ab") as f:
                f.write(hashes[mine].astype("<u8").tobytes())
            with open(self.scratch / f"{p:05d}.labels", "ab") as f:
                f.write(labels[mine].astype("<u2").tobytes())

    def finish(self) -> int:
        """Sort and deduplicate each partition, write keys.npy and labels.npy; the pair count."""
        pieces = []
        for p in range(self.partitions):
            path = self.scratch / f"{p:05d}.keys"
            if not path.exists():
                continue
            keys = np.fromfile(path, dtype="<u8")
            labels = np.fromfile(self.scratch / f"{p:05d}.labels", dtype="<u2")
            order = np.lexsort((labels, keys))
            keys, labels = keys[order], labels[order]
            new = np.ones(len(keys), dtype=bool)
            new[1:] = (keys[1:] != keys[:-1]) | (labels[1:] != labels[:-1])
            np.save(self.scratch / f"{p:05d}.sorted-keys.npy", keys[new])
            np.save(self.scratch / f"{p:05d}.sorted-labels.npy", labels[new])
            pieces.append(p)
        total = sum(np.load(self.scratch / f"{p:05d}.sorted-keys.npy", mmap_mode="r").shape[0] for p in pieces)
        for name, dtype in ((KEYS, "<u8"), (LABELS, "<u2")):
            with atomic_path(self.folder / name) as tmp:
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(total,))
                at = 0
                for p in pieces:
                    piece = np.load(self.scratch / f"{p:05d}.sorted-{name.split('.')[0]}.npy")
                    out[at : at + len(piece)] = piece
                    at += len(piece)
                out.flush()
                del out
        shutil.rmtree(self.scratch)
        return total


class NgramIndex:
    """The sorted index, memory-mapped."""

    def __init__(self, folder: Path) -> None:
        self.keys = np.load(folder / KEYS, mmap_mode="r")
        self.labels = np.load(folder / LABELS, mmap_mode="r")

    def __len__(self) -> int:
        return len(self.keys)

    def contains(self, queries: np.ndarray) -> np.ndarray:
        """Whether each query hash is in the index."""
        if not len(self.keys) or not len(queries):
            return np.zeros(len(queries), dtype=bool)
        at = np.minimum(np.searchsorted(self.keys, queries), len(self.keys) - 1)
        return np.asarray(self.keys[at] == queries)

    def labels_of(self, query: np.uint64) -> list[int]:
        """The labels of one hash (several when benchmarks share the n-gram)."""
        start = np.searchsorted(self.keys, query, side="left")
        end = np.searchsorted(self.keys, query, side="right")
        return sorted(set(self.labels[start:end].tolist()))
