"""Line-level dedup across the corpus: lines found in many documents are boilerplate.

A cookie banner, a navigation bar or a site footer is the same line on every page of a site; the
page-level rules (Gopher, C4) judge one document at a time and cannot see it. Counting, over the
whole corpus, in how many documents each normalised line occurs (CCNet, Wenzek et al. 2020, does
this per shard with paragraph hashes) finds them. It runs in the three dedup steps:
1. `line_hashes` (per shard, inside `signatures`): the distinct line hashes of each document.
2. `boilerplate_lines` (global, inside `find_duplicates`): the hashes found in more than
   `max_documents` documents that survive document dedup, listed per document. Copies removed
   as duplicates do not count, or a page copied eleven times would lose every line.
3. `strip_lines` (per shard, inside `apply_decisions`): those lines leave the text.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.dedup.exact import normalise

LINE_HASH = pa.list_(pa.uint64())


def line_hash(line: str, min_chars: int = 1) -> int | None:
    """64-bit hash of a normalised line (NFKC, case, whitespace); None for a line shorter than
    min_chars after normalisation (a blank line always)."""
    norm = normalise(line)
    if len(norm) < max(min_chars, 1):
        return None
    return int.from_bytes(hashlib.blake2b(norm.encode("utf-8"), digest_size=8).digest(), "little")


def line_hashes(text: str, min_chars: int = 1) -> list[int]:
    """The distinct hashes of a document's lines of min_chars or more, sorted: a line repeated
    inside the document counts once."""
    return sorted({h for line in text.split("\n") if (h := line_hash(line, min_chars)) is not None})


def boilerplate_lines(hashes: pa.ChunkedArray, counted: np.ndarray, max_documents: int) -> pa.Array:
    """Per document, its line hashes that occur in more than max_documents counted documents.

    hashes: list<uint64> per document; counted: (n,) bool, the documents whose lines are counted.
    Returns list<uint64> per document (empty when none), in the documents' order.
    """
    hashes = hashes.combine_chunks() if isinstance(hashes, pa.ChunkedArray) else hashes
    counted_lists = hashes.filter(pa.array(counted))
    frequency = pc.value_counts(pc.list_flatten(counted_lists))  # struct<values, counts>
    common = frequency.field("values").filter(pc.greater(frequency.field("counts"), max_documents))
    flat = pc.list_flatten(hashes)
    parents = pc.list_parent_indices(hashes).to_numpy()
    keep = pc.is_in(flat, value_set=common).to_numpy(zero_copy_only=False)
    lengths = np.bincount(parents[keep], minlength=len(hashes))
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), flat.filter(pa.array(keep)), type=LINE_HASH)


def strip_lines(text: str, boilerplate: set[int]) -> tuple[str, int]:
    """The text without its boilerplate lines, and how many lines were removed."""
    if not boilerplate:
        return text, 0
    lines = text.split("\n")
    kept = [line for line in lines if line_hash(line) not in boilerplate]
    return "\n".join(kept), len(lines) - len(kept)
