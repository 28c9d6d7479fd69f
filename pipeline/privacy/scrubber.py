"""Privacy stage: replace detected PII with typed placeholders (`<EMAIL_ADDRESS>`, `<PERSON>`, ...).

Every document gets presidio's pattern recognizers (email, phone, credit card, IBAN, IP, SSN:
regexes with checksums, language-independent); documents in `ner_languages` also get spaCy NER
(PERSON). Nothing is removed: the stage rewrites `text` and adds `pii_counts` (entity -> how many
spans were replaced). Detected values are never logged or stored, only their types and counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pyarrow as pa
import regex
from presidio_analyzer import RecognizerResult
from presidio_anonymizer.entities import OperatorConfig

from pipeline.config import PrivacyConfig
from pipeline.errors import InputError
from pipeline.privacy.engine import PATTERN_LANGUAGE, anonymizer, ner_analyzer, pattern_analyzer
from pipeline.privacy.name_windows import ner_in_windows
from pipeline.quality.langid import detect_languages
from pipeline.stage import ShardContext, StageResult, split_by_reason

STAGE = "privacy"
PII_COUNTS_TYPE = pa.map_(pa.string(), pa.int32())

# presidio's `replace` operator with no new_value writes `<ENTITY_TYPE>`.
_OPERATORS = {"DEFAULT": OperatorConfig("replace")}
# Documents per spaCy nlp.pipe batch: 128 took 5-12% less NER CPU time than 32 in a pipe-only
# test on bench/privacy_speed.py's documents (a gain within that benchmark's noise).
_BATCH_SIZE = 128
# spaCy refuses a text over nlp.max_length (1M characters: its NER needs memory per character),
# so a text longer than this is analysed in pieces cut at line breaks (else spaces). Shorter texts,
# nearly all of them, are analysed whole; in a long one only an entity across a cut can be missed.
PIECE_CHARS = 100_000


def _analyze_with_ner(language: str, texts: list[str], entities: list[str], mode: str) -> list[list[RecognizerResult]]:
    """presidio's analysis with spaCy NER, run with the `ner` pipe alone, in batches; in `windows`
    mode the NER reads only the windows around possible names (name_windows.py).

    presidio needs from spaCy the entities and, for context words that raise a weak pattern
    hit's score, the lemmas. en_core_web_sm's NER has its own tok2vec, so tagger, parser and
    lemmatizer (~60% of the time) only feed the lemmas: a document gets them (the full pipeline)
    only when a recognizer that uses context words has a hit in it, which is the only case the
    lemmas are read. (The parser's sentence starts also stop an entity from running across
    them; bench/privacy_speed.py measures that the detections stay the same.) Such a document
    gets the whole-document NER in windows mode too.
    """
    analyzer = ner_analyzer()
    engine, nlp = analyzer.nlp_engine, analyzer.nlp_engine.nlp[language]
    with_context = {r.id for r in analyzer.registry.recognizers if r.context}

    def analyze(text, doc) -> list[RecognizerResult]:
        artifacts = engine._doc_to_nlp_artifact(doc, language)
        return analyzer.analyze(
            text,
            language,
            entities=entities,
            nlp_artifacts=artifacts,
            score_threshold=0.0,
            return_decision_process=True,
        )

    with nlp.select_pipes(enable=["ner"]):
        windows = mode == "windows"
        docs = ner_in_windows(nlp, texts, _BATCH_SIZE) if windows else nlp.pipe(texts, batch_size=_BATCH_SIZE)
        found = [analyze(t, d) for t, d in zip(texts, docs)]
    redo = [
        i
        for i, results in enumerate(found)
        if any(r.recognition_metadata.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY) in with_context for r in results)
    ]
    for i, doc in zip(redo, nlp.pipe([texts[i] for i in redo], batch_size=_BATCH_SIZE)):
        found[i] = analyze(texts[i], doc)
    return found


def _pieces(text: str) -> list[tuple[int, str]]:
    """(offset, piece) pairs covering the text, each piece at most PIECE_CHARS long."""
    pieces, start = [], 0
    while len(text) - start > PIECE_CHARS:
        end = start + PIECE_CHARS
        cut = text.rfind("\n", start + PIECE_CHARS // 2, end)
        if cut < 0:
            cut = text.rfind(" ", start + PIECE_CHARS // 2, end)
        cut = end if cut < 0 else cut + 1
        pieces.append((start, text[start:cut]))
        start = cut
    pieces.append((start, text[start:]))
    return pieces


def _analyze_in_pieces(language: str, texts: list[str], entities: list[str], mode: str) -> list[list[RecognizerResult]]:
    """`_analyze_with_ner` over texts of any length: pieces of long ones, spans shifted back."""
    owners, offsets, pieces = [], [], []
    for i, text in enumerate(texts):
        for offset, piece in _pieces(text):
            owners.append(i)
            offsets.append(offset)
            pieces.append(piece)
    found: list[list[RecognizerResult]] = [[] for _ in texts]
    for owner, offset, results in zip(owners, offsets, _analyze_with_ner(language, pieces, entities, mode)):
        for result in results:
            result.start += offset
            result.end += offset
        found[owner].extend(results)
    return found


def _kept(text: str, results: list[RecognizerResult], cfg: PrivacyConfig, allowed) -> list[RecognizerResult]:
    """Detections at or above their entity's score threshold whose value is not allow-listed."""
    return [
        r
        for r in results
        if r.score >= cfg.entity_min_scores.get(r.entity_type, cfg.min_score)
        and not (allowed and allowed.fullmatch(text[r.start : r.end]))
    ]


def detect(texts: Sequence[str], langs: Sequence[str | None], cfg: PrivacyConfig) -> list[list[RecognizerResult]]:
    """presidio's detections (type, span, score over its threshold) per text, possibly overlapping."""
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
    allowed = regex.compile("|".join(f"(?:{rx})" for rx in cfg.allow_list)) if cfg.allow_list else None
    detections: list[list[RecognizerResult]] = [[] for _ in texts]
    if not cfg.entities:  # presidio reads an empty entity list as "all of them"
        return detections
    # One batched engine call per language group; `None` (no NER model) gets the patterns only.
    groups: dict[str | None, list[int]] = {}
    for i, lang in enumerate(langs):
        groups.setdefault(lang if lang in cfg.ner_languages else None, []).append(i)
    for lang, idx in sorted(groups.items(), key=lambda g: g[0] or ""):
        group = [texts[i] for i in idx]
        if lang is None:
            patterns = pattern_analyzer()
            entities = [e for e in cfg.entities if e in patterns.get_supported_entities(PATTERN_LANGUAGE)]
            found = [
                patterns.analyze(t, PATTERN_LANGUAGE, entities=entities, score_threshold=0.0) if entities else []
                for t in group
            ]
        else:
            found = _analyze_in_pieces(lang, group, list(cfg.entities), cfg.ner_mode)
        for i, results in zip(idx, found):
            detections[i] = _kept(texts[i], results, cfg, allowed)
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


def run_shard(table: pa.Table, ctx: ShardContext) -> StageResult:
    """Scrub one shard: `text` rewritten, `pii_counts` added, every row kept."""
    cfg: PrivacyConfig = ctx.config
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

    result = split_by_reason(out, [None] * out.num_rows, ctx.stage)
    totals = Counter({entity: 0 for entity in cfg.entities})
    for c in counts:
        totals.update(c)
    result.extra = {f"pii:{entity}": n for entity, n in sorted(totals.items())}
    result.extra["ner_documents"] = sum(lang in cfg.ner_languages for lang in langs)
    return result
