"""presidio engine set-up: offline, one build per process, no ORGANIZATION noise, patterns alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipeline.privacy.engine import PATTERN_LANGUAGE, ner_analyzer, pattern_analyzer


def _synth_rows(shared_data, label: str) -> list[dict]:
    rows = [json.loads(line) for line in (shared_data / "pii/presidio_synth_dev.jsonl").open()]
    return [r for r in rows if any(s["label"] == label for s in r["spans"])]


def test_importing_the_stage_keeps_tldextract_off_the_network():
    # A fresh interpreter without the variable: the package must set it before presidio imports
    # tldextract, whose module-level extractor reads it once.
    env = {k: v for k, v in os.environ.items() if k != "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"}
    code = (
        "import pipeline.privacy.scrubber, tldextract.tldextract as t;"
        "print(list(t.TLD_EXTRACTOR.suffix_list_urls))"
    )
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
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
