"""Exact de-duplication key: documents equal after normalisation share one key.

Normalising first catches the cheap copies a byte hash misses: a re-cased heading, CRLF line
ends, doubled spaces, or a compatibility character (full-width letters, ligatures) in place of
its plain form.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")
KEY_BYTES = 16  # blake2b-128: a collision among a billion documents has odds ~1e-20


def normalise(text: str) -> str:
    """Unicode NFKC, casefold, runs of whitespace collapsed to one space, stripped."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _WHITESPACE.sub(" ", text).strip()


def exact_key(normalised: str) -> bytes:
    """Hash of an already normalised text: equal keys mean equal normalised texts."""
    return hashlib.blake2b(normalised.encode("utf-8"), digest_size=KEY_BYTES).digest()
