"""Exact-duplicate key: equal after NFKC, casefold and whitespace collapse, different otherwise.

Texts: Debian fortunes (../shared/data/corpora/fortunes_multilingual.jsonl, GPL-2+ / public domain).
"""

import json
from pathlib import Path

import pytest

from pipeline.dedup.exact import exact_key, normalise

FORTUNES = Path(__file__).resolve().parents[3] / "shared/data/corpora/fortunes_multilingual.jsonl"


@pytest.fixture(scope="module")
def fortune() -> str:
    if not FORTUNES.exists():
        pytest.skip("needs ../shared/data")
    with FORTUNES.open(encoding="utf-8") as f:
        return json.loads(f.readline())["text"]  # a six-line German anecdote


def test_case_and_whitespace_copy_has_the_same_key(fortune):
    copy = "  " + fortune.upper().replace("\n", "\r\n").replace(" ", "  \t") + "\n\n"
    assert copy != fortune
    assert normalise(copy) == normalise(fortune)
    assert exact_key(normalise(copy)) == exact_key(normalise(fortune))


def test_nfkc_folds_compatibility_characters():
    # Full-width letters and the "fi" ligature are the same text to a reader.
    assert normalise("Ｆｉｎａｌ ﬁle") == normalise("final file") == "final file"


def test_casefold_is_stronger_than_lower():
    assert normalise("STRASSE") == normalise("Straße")


def test_one_changed_word_changes_the_key(fortune):
    edited = fortune.replace("Fahrrad", "Motorrad", 1)
    assert exact_key(normalise(edited)) != exact_key(normalise(fortune))
