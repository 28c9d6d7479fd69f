"""A text longer than spaCy accepts (nlp.max_length) is analysed in pieces, and the spans found
in the pieces land at the right places of the whole text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import PrivacyConfig
from pipeline.privacy import scrubber

STRUCTURED = {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IP_ADDRESS", "IBAN_CODE", "US_SSN"}


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab \n"), max_size=400), st.integers(8, 60))
def test_pieces_cover_the_text_in_order_and_respect_the_size(text, piece_chars):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scrubber, "PIECE_CHARS", piece_chars)
        pieces = scrubber._pieces(text)
    assert "".join(piece for _, piece in pieces) == text
    assert all(text[offset : offset + len(piece)] == piece for offset, piece in pieces)
    assert all(len(piece) <= piece_chars for _, piece in pieces)


def test_long_text_in_pieces_finds_the_structured_pii_at_the_same_spans(monkeypatch, ground_truth, sample_table):
    """Real English paragraphs with PII (sample_data's planted ones), ~20k characters, analysed
    whole and in ~2k-character pieces: the structured spans are the same."""
    planted = set(ground_truth["pii"])
    pii_docs = [t for i, t in zip(sample_table["id"].to_pylist(), sample_table["text"].to_pylist()) if i in planted]
    text = "\n".join(pii_docs)[:20_000]
    cfg = PrivacyConfig()
    whole = scrubber.detect([text], ["en"], cfg)[0]
    monkeypatch.setattr(scrubber, "PIECE_CHARS", 2_000)
    assert len(scrubber._pieces(text)) >= 10
    pieced = scrubber.detect([text], ["en"], cfg)[0]

    def spans(found):
        return sorted((r.entity_type, r.start, r.end) for r in found if r.entity_type in STRUCTURED)

    assert spans(whole), "the planted PII must be found at all"
    # Only an entity cut in two by a piece boundary may differ.
    assert len(set(spans(whole)) ^ set(spans(pieced))) <= 2
