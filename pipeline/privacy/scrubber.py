"""Privacy stage: replace detected PII with typed placeholders (`<EMAIL_ADDRESS>`, `<PERSON>`, ...).

Every document gets presidio's pattern recognizers (email, phone, credit card, IBAN, IP, SSN:
regexes with checksums, language-independent); documents in `ner_languages` also get spaCy NER
(PERSON). Nothing is removed: the stage rewrites `text` and adds `pii_counts` (entity -> how many
spans were replaced). Detected values are never logged or stored, only their types and counts.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import pyarrow as pa
from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine, RecognizerResult
from presidio_anonymizer.entities import OperatorConfig

from pipeline.config import PrivacyConfig
from pipeline.errors import InputError
from pipeline.privacy.engine import PATTERN_LANGUAGE, anonymizer, ner_analyzer, pattern_analyzer
from pipeline.quality.langid import detect_languages
from pipeline.stage import StageResult, split_by_reason

STAGE = "privacy"
PII_COUNTS_TYPE = pa.map_(pa.string(), pa.int32())

# presidio's `replace` operator with no new_value writes `<ENTITY_TYPE>`.
_OPERATORS = {"DEFAULT": OperatorConfig("replace")}
# Documents per spaCy nlp.pipe batch. Measured gain over one-by-one is small (<~15%): the
# model's per-token work dominates, and parallelism comes from shards in separate processes.
_BATCH_SIZE = 32


def _analyze(
    analyzer: AnalyzerEngine, language: str, texts: list[str], cfg: PrivacyConfig
) -> list[list[RecognizerResult]]:
    """Detections per text; batched so spaCy processes many documents per call."""
    entities = [e for e in cfg.entities if e in analyzer.get_supported_entities(language)]
    if not texts or not entities:
        return [[] for _ in texts]
    return BatchAnalyzerEngine(analyzer).analyze_iterator(
        texts,
        language=language,
        batch_size=_BATCH_SIZE,
        entities=entities,
        score_threshold=cfg.min_score,
    )


def detect(
    texts: Sequence[str], langs: Sequence[str | None], cfg: PrivacyConfig
) -> list[list[RecognizerResult]]:
    """presidio's detections (type, span, score >= min_score) per text, possibly overlapping."""
    if len(texts) != len(langs):
        raise ValueError(f"{STAGE}: {len(langs)} languages for {len(texts)} texts")
    known = ner_analyzer().get_supported_entities()
    unknown = sorted(set(cfg.entities) - set(known))
    if unknown:
        # A typo here would silently leave that PII in the corpus.
        raise InputError(
            f"privacy.entities: presidio has no recognizer for {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))}). Fix the config."
        )
    detections: list[list[RecognizerResult]] = [[] for _ in texts]
    # One batched engine call per language group; `None` (no NER model) gets the patterns only.
    groups: dict[str | None, list[int]] = {}
    for i, lang in enumerate(langs):
        groups.setdefault(lang if lang in cfg.ner_languages else None, []).append(i)
    for lang, idx in sorted(groups.items(), key=lambda g: g[0] or ""):
        if lang is None:
            analyzer, language = pattern_analyzer(), PATTERN_LANGUAGE
        else:
            analyzer, language = ner_analyzer(), lang
        found = _analyze(analyzer, language, [texts[i] for i in idx], cfg)
        for i, results in zip(idx, found):
            detections[i] = results
    return detections


def scrub_texts(
    texts: Sequence[str], langs: Sequence[str | None], cfg: PrivacyConfig
) -> tuple[list[str], list[dict[str, int]]]:
    """Scrubbed texts and, per text, how many spans of each entity type were replaced.

    Overlapping detections (a phone number inside a card number, ...) are resolved by presidio's
    anonymizer; the counts are of the spans it actually replaced.
    """
    scrubbed: list[str] = []
    counts: list[dict[str, int]] = []
    for text, results in zip(texts, detect(texts, langs, cfg)):
        result = anonymizer().anonymize(text=text, analyzer_results=results, operators=_OPERATORS)
        scrubbed.append(result.text)
        counts.append(dict(sorted(Counter(item.entity_type for item in result.items).items())))
    return scrubbed, counts


def run_shard(table: pa.Table, cfg: PrivacyConfig) -> StageResult:
    """Scrub one shard: `text` rewritten, `pii_counts` added, every row kept."""
    texts = table.column("text").to_pylist()
    if "lang" in table.column_names:
        langs = table.column("lang").to_pylist()
    else:
        langs, _ = detect_languages(texts)
    scrubbed, counts = scrub_texts(texts, langs, cfg)

    text_index = table.column_names.index("text")
    out = table.set_column(text_index, "text", pa.array(scrubbed, pa.string()))
    pii_counts = pa.array([list(c.items()) for c in counts], PII_COUNTS_TYPE)
    if "pii_counts" in out.column_names:  # a re-scrub of already scrubbed shards
        out = out.set_column(out.column_names.index("pii_counts"), "pii_counts", pii_counts)
    else:
        out = out.append_column("pii_counts", pii_counts)

    result = split_by_reason(out, [None] * out.num_rows, STAGE)
    totals = Counter({entity: 0 for entity in cfg.entities})
    for c in counts:
        totals.update(c)
    result.extra = {f"pii:{entity}": n for entity, n in sorted(totals.items())}
    result.extra["ner_documents"] = sum(lang in cfg.ner_languages for lang in langs)
    return result
