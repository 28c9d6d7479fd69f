"""presidio engine set-up: offline, one build per process, no ORGANIZATION noise, patterns alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

from pipeline.config import PrivacyConfig
from pipeline.privacy.engine import PATTERN_LANGUAGE, BisectingContextEnhancer, ner_analyzer, pattern_analyzer
from pipeline.privacy.scrubber import scrub_texts


def _synth_rows(shared_data, label: str) -> list[dict]:
    rows = [json.loads(line) for line in (shared_data / "pii/presidio_synth_dev.jsonl").open()]
    return [r for r in rows if any(s["label"] == label for s in r["spans"])]


def test_importing_the_stage_keeps_tldextract_off_the_network():
    # A fresh interpreter without the variable: the package must set it before presidio imports
    # tldextract, whose module-level extractor reads it once.
    env = {k: v for k, v in os.environ.items() if k != "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"}
    code = "import pipeline.privacy.scrubber, tldextract.tldextract as t;print(list(t.TLD_EXTRACTOR.suffix_list_urls))"
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_analyzers_are_built_once_per_process():
    assert ner_analyzer() is ner_analyzer()
    assert pattern_analyzer() is pattern_analyzer()


def test_ner_analyzer_reports_no_organization_on_sentences_naming_companies(shared_data):
    # presidio's default ner_model_configuration ignores spaCy's ORG label (many false positives).
    rows = _synth_rows(shared_data, "ORGANIZATION")[:40]
    analyze = ner_analyzer().analyze
    found = {r.entity_type for row in rows for r in analyze(row["text"], language="en")}
    assert "ORGANIZATION" not in found
    assert "PERSON" in found or "LOCATION" in found  # NER itself is running


def test_pattern_analyzer_finds_emails_but_runs_no_ner(shared_data):
    assert "PERSON" not in pattern_analyzer().get_supported_entities()
    rows = _synth_rows(shared_data, "EMAIL_ADDRESS")
    for row in rows:
        types = {r.entity_type for r in pattern_analyzer().analyze(row["text"], language=PATTERN_LANGUAGE)}
        assert "EMAIL_ADDRESS" in types, row["id"]
        assert "PERSON" not in types, row["id"]


def test_card_numbers_outside_presidios_regex_are_found_if_luhn_valid():
    # Mastercard's 2-series test number and a 19-digit Visa-prefixed number with a valid check
    # digit; then each with its last digit changed so the Luhn checksum fails.
    valid = ["2223003122003222", "4222222222222222224"]
    invalid = ["2223003122003223", "4222222222222222225"]

    def cards(number: str) -> list[str]:
        results = pattern_analyzer().analyze(
            f"card: {number}", language=PATTERN_LANGUAGE, entities=["CREDIT_CARD"], score_threshold=0.4
        )
        return [r.entity_type for r in results]

    assert [cards(n) for n in valid] == [["CREDIT_CARD"], ["CREDIT_CARD"]]
    assert [cards(n) for n in invalid] == [[], []]


def _detected(text: str) -> list[tuple[str, str]]:
    """(entity, covered text) of every detection the pattern engine keeps at min_score 0.4."""
    results = pattern_analyzer().analyze(text, language=PATTERN_LANGUAGE, score_threshold=0.4)
    return sorted((r.entity_type, text[r.start : r.end]) for r in results)


def test_jcb_15_digit_card_is_scrubbed():
    # Issue 18's held-out number (prefix 2131) and one of the 1800 range, both Luhn-valid.
    for number in ("213176828496175", "180031415926531"):
        assert _detected(f"Charge it to {number} please.") == [("CREDIT_CARD", number)]


def test_cards_of_other_issuer_ranges_and_groupings_are_found():
    # Mir (2200), Amex in its printed 4-6-5 grouping (presidio's own Amex test number).
    for number in ("2200 0123 4567 8907", "3714 496353 98431"):
        assert _detected(f"card: {number}") == [("CREDIT_CARD", number)]


# presidio-analyzer's own credit-card test cases (microsoft/presidio,
# presidio-analyzer/tests/test_credit_card_recognizer.py, MIT): its negatives fail the Luhn check.
PRESIDIO_CARD_NEGATIVES = [
    "4012-8888-8888-1882",
    "my credit card number is 4012-8888-8888-1882",
    "36168002586008",
    "my credit card number is 36168002586008",
]
PRESIDIO_CARD_POSITIVES = [
    "4012888888881881",
    "4012-8888-8888-1881",
    "4012 8888 8888 1881",
    "122000000000003",
    "371449635398431",
    "5555555555554444",
    "5019717010103742",
    "30569309025904",
    "6011000400000000",
    "3528000700000000",
    "6759649826438453",
    "4111111111111111",
    "4917300800000000",
    "4484070000000000",
]


def test_presidios_own_card_negatives_are_left_alone():
    # Not as a card, and not as a phone number after "number is" either.
    assert [_detected(text) for text in PRESIDIO_CARD_NEGATIVES] == [[], [], [], []]


def test_presidios_own_card_positives_are_found():
    assert [_detected(n) for n in PRESIDIO_CARD_POSITIVES] == [[("CREDIT_CARD", n)] for n in PRESIDIO_CARD_POSITIVES]


def test_iban_followed_by_a_word_is_found_without_the_word():
    # A case-insensitive match took "fail" for a fifth group and the checksum then failed.
    assert _detected("Transfer to BE68 5390 0754 7034 failed") == [("IBAN_CODE", "BE68 5390 0754 7034")]


def test_iban_lookalike_with_lower_case_letters_is_not_an_iban():
    # Valid only once upper-cased; presidio scored it 0.5, above min_score.
    assert _detected("Reference LV80 bANK 0000 4351 9500 1 attached.") == []


def test_email_address_on_an_ip_is_one_email(sample_table):
    # An IRC join line in a real German fortune of sample_data/ (Debian fortunes-de): the user
    # name went through as `user@<IP_ADDRESS>`.
    text = sample_table.filter(pa.compute.equal(sample_table["id"], "fortune-de-g0022"))["text"][0].as_py()
    (scrubbed,), (counts,) = scrub_texts([text], ["de"], PrivacyConfig())
    assert counts == {"EMAIL_ADDRESS": 2}
    assert scrubbed.count("[~<EMAIL_ADDRESS>]") == 2


# Common Crawl pages of sample_data/ in which a context word raises a result's score (a phone
# number's "call", a date's "born"), the longest one first (66,000 characters: hundreds of results).
CONTEXT_PAGES = ("cc-000013", "cc-000026", "cc-000005", "cc-000003", "cc-000001", "cc-000000", "cc-000007")


def _web_pages(sample_table) -> str:
    rows = dict(zip(sample_table["id"].to_pylist(), sample_table["text"].to_pylist()))
    return "\n\n".join(rows[i] for i in CONTEXT_PAGES)


def test_the_bisecting_context_enhancer_finds_presidios_token_at_every_character(sample_table):
    text = _web_pages(sample_table)[:3000]
    artifacts = ner_analyzer().nlp_engine.process_text(text, "en")
    tokens, starts = artifacts.tokens, artifacts.tokens_indices
    ours = BisectingContextEnhancer()

    def index(find, start):
        try:
            return find("word", start, tokens, starts)
        except ValueError:
            return None

    expected = [index(LemmaContextAwareEnhancer._find_index_of_match_token, start) for start in range(len(text) + 2)]
    assert [index(ours._find_index_of_match_token, start) for start in range(len(text) + 2)] == expected
    assert expected[-1] is None and len(set(expected)) > 500  # past the end, and every token met


def test_analysis_with_the_bisecting_enhancer_equals_presidios(sample_table):
    text = _web_pages(sample_table)
    analyzer = ner_analyzer()
    assert isinstance(analyzer.context_aware_enhancer, BisectingContextEnhancer)
    presidios = AnalyzerEngine(nlp_engine=analyzer.nlp_engine, registry=analyzer.registry, supported_languages=["en"])
    results = analyzer.analyze(text, "en", return_decision_process=True)
    assert len(results) > 500
    assert sum(bool(r.analysis_explanation.supportive_context_word) for r in results) >= 5
    assert [(r.entity_type, r.start, r.end, r.score) for r in results] == [
        (r.entity_type, r.start, r.end, r.score) for r in presidios.analyze(text, "en")
    ]
