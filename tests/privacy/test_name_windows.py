"""Name windows (`privacy.ner_mode: windows`): which tokens can be part of a name, and what spaCy's
NER finds when it reads only the windows around them.

Texts: Tiny Shakespeare speeches, Common Crawl paragraphs (dolma's test documents) and WNUT-17
posts (../shared/data); no detected value is printed.
"""

from __future__ import annotations

import json

import pytest

from pipeline.privacy.engine import ner_analyzer
from pipeline.privacy.name_windows import AFTER, BEFORE, WHOLE_UNDER, name_tokens, ner_in_windows, windows


@pytest.fixture(scope="module")
def nlp():
    return ner_analyzer().nlp_engine.nlp["en"]


def _words(nlp, text: str) -> list[str]:
    doc = nlp.make_doc(text)
    return [doc[i].text for i in name_tokens(doc, nlp.Defaults.stop_words)]


def test_capitalised_words_can_be_names_but_not_I_or_a_stop_word_opening_a_sentence(nlp) -> None:
    # Coriolanus, act 1: "The" and "It" open sentences, "I" is the speaker himself.
    text = "The people say Caius Marcius is proud. It is so, I think; and Menenius knows it."
    assert _words(nlp, text) == ["Caius", "Marcius", "Menenius"]


def test_a_word_opening_a_line_that_is_no_stop_word_can_be_a_name(nlp) -> None:
    # "First" is a stop word, "Speak" and "Citizens" are not: the rule cannot tell them from names.
    assert _words(nlp, "First Citizen:\nSpeak, speak.\n\nCitizens:\nWe are resolved.") == [
        "Citizen",
        "Speak",
        "Citizens",
    ]


def test_every_word_of_a_sentence_written_without_capitals_can_be_a_name(shared_data, nlp) -> None:
    rows = [json.loads(line) for line in (shared_data / "pii/wnut17_dev.jsonl").open()]
    text = next(r["text"] for r in rows if r["text"].startswith("wow emma"))
    assert _words(nlp, text) == [t.text for t in nlp.make_doc(text) if not t.is_space]


def test_windows_reach_past_each_possible_name_and_short_documents_are_read_whole(shared_data, nlp) -> None:
    paragraphs = [
        p
        for line in (shared_data / "corpora/cc_docs.jsonl").open()
        for p in json.loads(line)["text"].split("\n")
        if len(p) > 600
    ]
    doc = nlp.make_doc(paragraphs[0])
    assert len(doc) >= WHOLE_UNDER
    spans = windows(doc, nlp.Defaults.stop_words)
    for i in name_tokens(doc, nlp.Defaults.stop_words):
        assert any(a <= max(i - BEFORE, 0) and min(i + AFTER + 1, len(doc)) <= b for a, b in spans)
    assert sum(b - a for a, b in spans) < len(doc)  # some of the paragraph is not read
    short = nlp.make_doc("thank you fake kevin smith")
    assert windows(short, nlp.Defaults.stop_words) == [(0, len(short))]


def _persons(docs) -> set[tuple[int, int, int]]:
    return {(n, e.start_char, e.end_char) for n, doc in enumerate(docs) for e in doc.ents if e.label_ == "PERSON"}


def test_windows_find_nearly_every_person_the_whole_document_finds(shared_data, nlp) -> None:
    """In prose (Common Crawl) and verse (Shakespeare, every line capitalised): >= 97% of the
    whole-document NER's PERSON entities at the same offsets, and few others."""
    text = (shared_data / "corpora/tinyshakespeare.txt").read_text()[:1003854]
    texts = [s for s in text.split("\n\n") if len(s) > 400][:150]
    texts += [json.loads(line)["text"][:3000] for line in (shared_data / "corpora/cc_docs.jsonl").open()]
    with nlp.select_pipes(enable=["ner"]):
        whole = _persons(nlp.pipe(texts))
        windowed = _persons(ner_in_windows(nlp, texts, 64))
    assert len(whole) > 300
    assert len(whole & windowed) >= 0.97 * len(whole)
    assert len(whole & windowed) >= 0.97 * len(windowed)
