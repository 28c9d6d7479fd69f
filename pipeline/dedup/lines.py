"""Line- and sentence-level dedup across the corpus: text found in many documents is boilerplate.

A cookie banner, a navigation bar or a site footer is the same line on every page of a site; the
page-level rules (Gopher, C4) judge one document at a time and cannot see it. Counting, over the
whole corpus, in how many documents each normalised line occurs (CCNet, Wenzek et al. 2020, does
this per shard with paragraph hashes) finds them.

A template can also glue its boilerplate to the page's own text on one line (a disclaimer
paragraph after the last sentence of a post), where no line repeats. Spans of SPAN_SENTENCES
consecutive sentences of a line are counted as well (the unit of Gopher's and C4's "three
sentences"): a span found in many documents is removed sentence by sentence, the rest of its
line stays. Sentences end at ., !, ?, … and the full stops of other scripts (。！？ ؟ ۔ । ।),
followed by closing quotes or brackets and whitespace (or directly, after a CJK full stop): a
regex, not a parser, and over-splitting ("e.g. this") is harmless, for every document splits
alike. Span hashes are keyed apart from line hashes, so the two never collide.

It runs in the three dedup steps:
1. `line_hashes` (per shard, inside `signatures`): the distinct line and span hashes of each
   document.
2. `boilerplate_lines` (global, inside `find_duplicates`): the hashes found in more than
   `max_documents` documents that survive document dedup, listed per document. Copies removed
   as duplicates do not count, or a page copied eleven times would lose every line.
3. `strip_lines` (per shard, inside `apply_decisions`): those lines and sentences leave the text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.dedup.exact import normalise

LINE_HASH = pa.list_(pa.uint64())
SPAN_SENTENCES = 3
_SPACED_ENDS = ".!?…؟۔।॥"  # end a sentence when whitespace follows (after closing quotes)
_CJK_ENDS = "。！？"  # end a sentence wherever they stand
_SENTENCE = re.compile(rf"\S.*?(?:[{_SPACED_ENDS}]+[\"'”’»)\]]*(?=\s)|[{_CJK_ENDS}]+[」』”’）)]*|$)", re.DOTALL)
# Every sentence but a line's last ends in one of these, so a line with fewer than
# SPAN_SENTENCES - 1 of them has no span: most lines of verse, dialogue, lists and headings.
_SENTENCE_END = re.compile(f"[{_SPACED_ENDS}{_CJK_ENDS}]")


def line_hash(line: str, min_chars: int = 1) -> int | None:
    """64-bit hash of a normalised line (NFKC, case, whitespace); None for a line shorter than
    min_chars after normalisation (a blank line always)."""
    norm = normalise(line)
    return _hash(norm) if len(norm) >= max(min_chars, 1) else None


def _hash(normalised: str, key: bytes = b"") -> int:
    return int.from_bytes(hashlib.blake2b(normalised.encode("utf-8"), digest_size=8, key=key).digest(), "little")


def sentences(line: str) -> list[re.Match]:
    """The sentences of one line, as matches: .group() is the text, .start() where it begins."""
    return list(_SENTENCE.finditer(line))


def _spans(line: str, min_chars: int) -> Iterator[tuple[int, int]]:
    """(hash, index of the first sentence) of each SPAN_SENTENCES-sentence span of a line."""
    if len(_SENTENCE_END.findall(line)) < SPAN_SENTENCES - 1:
        return
    # Each sentence is normalised once; joined by one space they are the span normalised.
    normalised = [normalise(m.group()) for m in sentences(line)]
    for first in range(len(normalised) - SPAN_SENTENCES + 1):
        span = " ".join(normalised[first : first + SPAN_SENTENCES])
        if len(span) >= max(min_chars, 1):
            yield _hash(span, b"span"), first


def line_hashes(text: str, min_chars: int = 1, spans: bool = True) -> list[int]:
    """The distinct hashes of a document's lines of min_chars or more, and with `spans` of its
    sentence spans, sorted: a line repeated inside the document counts once."""
    hashes = set()
    for line in text.split("\n"):
        if (h := line_hash(line, min_chars)) is not None:
            hashes.add(h)
        if spans:
            hashes.update(h for h, _ in _spans(line, min_chars))
    return sorted(hashes)


def boilerplate_lines(hashes: pa.ChunkedArray, counted: np.ndarray, max_documents: int) -> pa.Array:
    """Per document, its line hashes that occur in more than max_documents counted documents.

    hashes: list<uint64> per document; counted: (n,) bool, the documents whose lines are counted.
    Returns list<uint64> per document (empty when none), in the documents' order.
    """
    hashes = hashes.combine_chunks() if isinstance(hashes, pa.ChunkedArray) else hashes
    return listed(hashes, common_hashes(pc.list_flatten(hashes.filter(pa.array(counted))), max_documents))


def common_hashes(counted: pa.Array, max_documents: int) -> pa.Array:
    """The hashes found more than max_documents times in counted, the counted documents' line
    hashes flattened (distinct within a document, so a count is a number of documents)."""
    frequency = pc.value_counts(counted)  # struct<values, counts>
    return frequency.field("values").filter(pc.greater(frequency.field("counts"), max_documents))


def listed(hashes: pa.Array, common: pa.Array) -> pa.Array:
    """Per document of hashes (list<uint64>), its hashes in common, in the documents' order."""
    flat = pc.list_flatten(hashes)
    parents = pc.list_parent_indices(hashes).to_numpy()
    keep = pc.is_in(flat, value_set=common).to_numpy(zero_copy_only=False)
    lengths = np.bincount(parents[keep], minlength=len(hashes))
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), flat.filter(pa.array(keep)), type=LINE_HASH)


def strip_lines(text: str, boilerplate: set[int]) -> tuple[str, int]:
    """The text without its boilerplate lines and sentence spans, and how many lines and
    sentences were removed (a line counts once; a sentence of a kept line once, however many
    boilerplate spans hold it; a line that loses every sentence counts as a line)."""
    if not boilerplate:
        return text, 0
    kept, removed = [], 0
    for line in text.split("\n"):
        if line_hash(line) in boilerplate:
            removed += 1
            continue
        dropped = {first + k for h, first in _spans(line, 1) if h in boilerplate for k in range(SPAN_SENTENCES)}
        if dropped:
            found = sentences(line)
            if len(dropped) == len(found):
                removed += 1
                continue
            # A kept sentence keeps the whitespace after it, so the line reads as before.
            ends = [m.start() for m in found[1:]] + [len(line)]
            rest = "".join(line[m.start() : end] for i, (m, end) in enumerate(zip(found, ends)) if i not in dropped)
            line = line[: found[0].start()] + (rest.rstrip() if len(found) - 1 in dropped else rest)
            removed += len(dropped)
        kept.append(line)
    return "\n".join(kept), removed
