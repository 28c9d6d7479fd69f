"""Language ID (fastText lid.176 + lingua fallback) on lingua-py's test data.

Texts: lingua-py `language-testdata` (Leipzig Wortschatz sentences, word pairs, single words;
../shared/data/langid/lingua_dev.jsonl) and Tiny Shakespeare.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from pipeline.quality.langid import LINGUA_LANGUAGES, UNDETERMINED, Fallback, detect_languages

FASTTEXT_ALONE = Fallback(enabled=False)


@pytest.fixture(scope="module")
def lingua(shared_data: Path) -> list[dict]:
    """Rows in the 67 languages both models know, gold labels in fastText's codes (nb -> no)."""
    with (shared_data / "langid" / "lingua_dev.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    for row in rows:
        row["gold"] = "no" if row["lang"] == "nb" else row["lang"]
    return [row for row in rows if row["gold"] in LINGUA_LANGUAGES]


def _texts(lingua: list[dict], lang: str, kind: str) -> list[str]:
    return [row["text"] for row in lingua if row["gold"] == lang and row["kind"] == kind]


def _accuracy(rows: list[dict], fallback: Fallback | None = None) -> float:
    labels, _ = detect_languages([row["text"] for row in rows], fallback)
    return sum(row["gold"] == label for row, label in zip(rows, labels)) / len(rows)


def test_sentences_reach_the_96_percent_target_within_sampling_error(lingua: list[dict]) -> None:
    """Every third sentence (~3.3k, to stay fast): 96.1% here, 96.0% over all 10k sentences
    (bench/langid_accuracy.py); thirds of the file vary by +-0.3 points, hence 95.5%.
    fastText alone is at ~89%."""
    sentences = [row for row in lingua if row["kind"] == "sentence"][::3]
    assert len(sentences) > 3000
    assert _accuracy(sentences, FASTTEXT_ALONE) < 0.91
    assert _accuracy(sentences) >= 0.955


def test_word_pairs_reach_85_percent_where_fasttext_alone_is_near_67(lingua: list[dict]) -> None:
    pairs = [row for row in lingua if row["kind"] == "word_pair"][::3]  # every third: ~1.1k pairs
    assert _accuracy(pairs, FASTTEXT_ALONE) < 0.72
    assert _accuracy(pairs) >= 0.85


def test_single_words_that_neither_model_can_place_are_undetermined_not_guessed(lingua: list[dict]) -> None:
    words = [row for row in lingua if row["kind"] == "single_word"][::5]
    labels, scores = detect_languages([row["text"] for row in words])
    und = [score for label, score in zip(labels, scores) if label == UNDETERMINED]
    assert 0.01 < len(und) / len(words) < 0.2
    assert all(score < 0.15 for score in und)
    labelled = [(row, label) for row, label in zip(words, labels) if label != UNDETERMINED]
    assert sum(row["gold"] == label for row, label in labelled) / len(labelled) > 0.75


@pytest.mark.parametrize("lang", ["en", "de", "ru"])
def test_labels_english_german_russian_sentences_with_high_scores(lingua: list[dict], lang: str) -> None:
    sentences = _texts(lingua, lang, "sentence")
    labels, scores = detect_languages(sentences)
    assert len(sentences) > 100
    assert labels.count(lang) >= 0.98 * len(sentences)
    assert statistics.median(scores) > 0.9


def test_norwegian_bokmal_is_labelled_no_as_fasttext_does(lingua: list[dict]) -> None:
    labels, _ = detect_languages(_texts(lingua, "no", "word_pair"))
    assert "nb" not in labels
    assert labels.count("no") > len(labels) / 2


def test_multiline_text_gets_the_label_of_its_single_line_form(shared_data: Path) -> None:
    speech = (shared_data / "corpora" / "tinyshakespeare.txt").read_text(encoding="utf-8")[:600]
    assert "\n" in speech
    labels, scores = detect_languages([speech, " ".join(speech.split())])
    assert labels == ["en", "en"]
    assert scores[0] == scores[1]


def test_empty_text_is_undetermined_with_score_zero() -> None:
    assert detect_languages(["", " \n\t "]) == ([UNDETERMINED, UNDETERMINED], [0.0, 0.0])


def test_fasttext_alone_labels_every_single_word_with_lower_scores_than_sentences(lingua: list[dict]) -> None:
    """Without the fallback, short text is predicted as usual and only its score warns."""
    word_labels, word_scores = detect_languages(_texts(lingua, "en", "single_word"), FASTTEXT_ALONE)
    _, sentence_scores = detect_languages(_texts(lingua, "en", "sentence"), FASTTEXT_ALONE)
    assert UNDETERMINED not in word_labels
    assert all(0.0 <= s <= 1.0 for s in word_scores)
    assert statistics.median(word_scores) < statistics.median(sentence_scores) - 0.2


def test_mixed_language_text_gets_a_lower_score_than_either_language(lingua: list[dict]) -> None:
    """English+German sentence pairs: dominant language as label, a score the threshold can catch."""
    english, german = _texts(lingua, "en", "sentence")[:60], _texts(lingua, "de", "sentence")[:60]
    labels, scores = detect_languages([f"{e} {g}" for e, g in zip(english, german)])
    assert set(labels) <= {"en", "de"}
    median = statistics.median(scores)
    assert median < statistics.median(detect_languages(english)[1]) - 0.05
    assert median < statistics.median(detect_languages(german)[1]) - 0.05
    assert sum(score < 0.65 for score in scores) >= 6


def test_same_texts_give_same_labels_and_scores(lingua: list[dict]) -> None:
    texts = [row["text"] for row in lingua[::60]]
    assert detect_languages(texts) == detect_languages(texts)
