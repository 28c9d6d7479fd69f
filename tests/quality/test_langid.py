"""fastText lid.176 on lingua-py's test sentences (Leipzig Wortschatz text, via ../shared/data)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from pipeline.quality.langid import UNDETERMINED, detect_languages


@pytest.fixture(scope="module")
def lingua(shared_data: Path) -> list[dict]:
    with (shared_data / "langid" / "lingua_dev.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _texts(lingua: list[dict], lang: str, kind: str) -> list[str]:
    return [row["text"] for row in lingua if row["lang"] == lang and row["kind"] == kind]


@pytest.mark.parametrize("lang", ["en", "de", "ru"])
def test_labels_every_lingua_sentence_of_english_german_russian(lingua: list[dict], lang: str) -> None:
    sentences = _texts(lingua, lang, "sentence")
    labels, scores = detect_languages(sentences)
    assert len(sentences) > 100
    assert labels == [lang] * len(sentences)
    assert statistics.median(scores) > 0.9


def test_multiline_text_gets_the_label_of_its_single_line_form(shared_data: Path) -> None:
    speech = (shared_data / "corpora" / "tinyshakespeare.txt").read_text(encoding="utf-8")[:600]
    assert "\n" in speech
    labels, scores = detect_languages([speech, " ".join(speech.split())])
    assert labels == ["en", "en"]
    assert scores[0] == scores[1]


def test_empty_text_is_undetermined_with_score_zero() -> None:
    assert detect_languages(["", " \n\t "]) == ([UNDETERMINED, UNDETERMINED], [0.0, 0.0])


def test_single_words_are_labelled_but_score_lower_than_sentences(lingua: list[dict]) -> None:
    """Short text is predicted as usual; the score threshold is what guards against it."""
    words = _texts(lingua, "en", "single_word")
    word_labels, word_scores = detect_languages(words)
    _, sentence_scores = detect_languages(_texts(lingua, "en", "sentence"))
    assert UNDETERMINED not in word_labels
    assert all(0.0 <= s <= 1.0 for s in word_scores)
    assert statistics.median(word_scores) < statistics.median(sentence_scores) - 0.2


def test_same_texts_give_same_labels_and_scores(lingua: list[dict]) -> None:
    texts = [row["text"] for row in lingua[:300]]
    assert detect_languages(texts) == detect_languages(texts)
