"""Word n-grams as GPT-3 compared them, hashed to 64 bits.

GPT-3 (Brown et al. 2020, appendix C) and lm-eval's decontamination (its `Janitor`) lower-case
the text, delete punctuation and split on whitespace, then compare 13-grams of those words. Here
punctuation is every Unicode punctuation character (`\\p{P}`), not only ASCII's, so "«»" and
"—" go as "," does.

Each word is hashed once (xxh3, 64 bits, the same in every process), and an n-gram's hash is a
polynomial of its words' hashes modulo 2^64, computed for every position of a document at once
with numpy. With 64 bits, a false match between 10^8 benchmark n-grams and 10^10 document
n-grams is expected about 0.05 times: no verification pass is needed.
"""

from __future__ import annotations

import re

import numpy as np
import regex
import xxhash

_PUNCTUATION = regex.compile(r"\p{P}+")
_TOKEN = re.compile(r"\S+")
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplying by it is a bijection modulo 2^64


def words(text: str) -> list[str]:
    """GPT-3's normalisation: lower case, punctuation deleted, split on whitespace."""
    return _PUNCTUATION.sub("", text.lower()).split()


def word_spans(text: str) -> list[tuple[int, int]]:
    """The character span in `text` of each of `words(text)`, in order (for cutting a match out)."""
    spans = []
    for token in _TOKEN.finditer(text):
        if _PUNCTUATION.sub("", token.group().lower()).strip():
            spans.append(token.span())
    return spans


def word_hashes(tokens: list[str]) -> np.ndarray:
    return np.fromiter((xxhash.xxh3_64_intdigest(w.encode()) for w in tokens), dtype=np.uint64, count=len(tokens))


def ngram_hashes(hashes: np.ndarray, n: int) -> np.ndarray:
    """The hash of the n words starting at each position (len(hashes) - n + 1 of them)."""
    count = len(hashes) - n + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64)
    out = hashes[:count].copy()
    for k in range(1, n):
        out *= _MULTIPLIER  # wraps modulo 2^64, as intended
        out += hashes[k : k + count]
    return out


def document_ngrams(texts: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n-gram hashes of all texts, the text each came from), the texts' words hashed in one pass."""
    tokens = [words(text) for text in texts]
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    hashes = word_hashes([w for doc in tokens for w in doc])
    grams = ngram_hashes(hashes, n)
    # A position's n-gram is whole when it ends inside the text it starts in.
    doc = np.repeat(np.arange(len(texts)), lengths)[: len(grams)]
    ends = np.cumsum(lengths)
    whole = np.arange(len(grams)) + n <= ends[doc] if len(grams) else np.zeros(0, dtype=bool)
    return grams[whole], doc[whole]
