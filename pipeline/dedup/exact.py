"""Exact de-duplication: documents equal after normalisation share one key and one cluster.

Normalising first catches the cheap copies a byte hash misses: a re-cased heading, CRLF line
ends, doubled spaces, or a compatibility character (full-width letters, ligatures) in place of
its plain form.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np
import pyarrow as pa

from pipeline.config import DedupConfig
from pipeline.dedup.clusters import Clusters, DedupMethod, fixed_width

# Malayalam chillus (vowel-less final consonants) have two encodings: the atomic letters of
# Unicode 5.1 (U+0D54-56, U+0D7A-7F) and the older consonant + virama + zero-width joiner. NFKC
# leaves both as they are (the atomic ones have no decomposition), so one text typed in each
# shares almost no words. The atomic form is the one Unicode recommends; the old one maps to it.
_CHILLU = {"ണ": "ൺ", "ന": "ൻ", "ര": "ർ", "ല": "ൽ", "ള": "ൾ", "ക": "ൿ", "മ": "ൔ", "യ": "ൕ", "ഴ": "ൖ"}
_CHILLU_SEQUENCE = re.compile("([" + "".join(_CHILLU) + "])\u0d4d\u200d")
# NTA: chillu N + (virama +) RRA are other spellings of the conjunct NA + virama + RRA (Unicode
# core spec, Malayalam); the conjunct is the recommended one.
_CHILLU_NTA = re.compile("\u0d7b\u0d4d?\u0d31")
_NTA = "\u0d28\u0d4d\u0d31"
KEY_BYTES = 16  # blake2b-128: a collision among a billion documents has odds ~1e-20


def normalise(text: str) -> str:
    """Unicode NFKC, one spelling of Malayalam chillus, casefold, runs of whitespace collapsed
    to one space, stripped."""
    if not unicodedata.is_normalized("NFKC", text):  # checking is much faster than normalising
        text = unicodedata.normalize("NFKC", text)
    if "\u200d" in text:  # the cheap test skips the regex for nearly every document
        text = _CHILLU_SEQUENCE.sub(lambda m: _CHILLU[m.group(1)], text)
    if "\u0d7b" in text:
        text = _CHILLU_NTA.sub(_NTA, text)
    text = text.casefold()
    return " ".join(text.split())  # str.split() splits on the characters that \s matches


def exact_key(normalised: str) -> bytes:
    """Hash of an already normalised text: equal keys mean equal normalised texts."""
    return hashlib.blake2b(normalised.encode("utf-8"), digest_size=KEY_BYTES).digest()


def _columns(normalised: list[str], cfg: DedupConfig) -> dict[str, list[bytes]]:
    return {"exact_key": [exact_key(text) for text in normalised]}


def _join(clusters: Clusters, cfg: DedupConfig) -> None:
    """Documents with one key form one cluster."""
    keys = fixed_width(clusters.docs.column("exact_key").cast(pa.binary(KEY_BYTES)), KEY_BYTES)
    clusters.regroup(np.unique(keys.view(f"V{KEY_BYTES}").ravel(), return_inverse=True)[1])


EXACT = DedupMethod(
    reason="exact_duplicate",
    enabled=lambda cfg: cfg.exact,
    join=_join,
    fields=lambda cfg: [("exact_key", pa.binary())],
    columns=_columns,
)
