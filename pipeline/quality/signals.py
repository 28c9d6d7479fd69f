"""Every heuristic signal of one document, and the first rule it fails (RedPajama-v2 style).

`judge` runs the rule families in a fixed order over one document: Gopher quality, Gopher
repetition (on the text as it came in), then C4 line cleaning and page rules, then FineWeb
(on the text C4 left). Every enabled family computes all of its signals, whatever the
decision, so a user can re-threshold from the columns without recomputing; the reason is the
first rule failed in that order. `columns(cfg)` lists the signal columns and their types.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from pipeline.config import QualityConfig
from pipeline.quality import c4, fineweb
from pipeline.quality.rules import F32, FAMILIES, I32, DocumentView, Signal, count_words, rules_reason

BOOL = pa.bool_()


def columns(cfg: QualityConfig) -> list[tuple[str, pa.DataType]]:
    """Signal columns (name, type) of the enabled rule families, in output order."""
    cols = [(signal.column, signal.type) for signal in _rule_signals(cfg)]
    if cfg.c4.enabled:
        cols += [
            ("quality_c4_lines_removed", I32),
            ("quality_c4_chars_removed", I32),
            ("quality_c4_sentences", I32),
            ("quality_c4_lorem_ipsum", BOOL),
            ("quality_c4_curly_bracket", BOOL),
        ]
    if cfg.fineweb.enabled:
        cols += [
            ("quality_fineweb_line_punct_ratio", F32),
            ("quality_fineweb_short_line_ratio", F32),
            ("quality_fineweb_char_dup_ratio", F32),
            ("quality_fineweb_newline_word_ratio", F32),
        ]
    return cols


@dataclass(slots=True)
class Judgement:
    reason: str | None  # first rule failed, None = keep
    text: str  # the text to keep (C4-cleaned when C4 is on)
    signals: dict[str, float | int | bool | None]


def _rule_signals(cfg: QualityConfig) -> list[Signal]:
    """The signals of every rule of the enabled rule families, in output order."""
    signals = []
    for section_name, rules in FAMILIES:
        section = getattr(cfg, section_name)
        if section.enabled:
            signals += [signal for check in rules for signal in check.signals(section)]
    return signals


def judge(text: str, lang: str, cfg: QualityConfig) -> Judgement:
    """All signals of the enabled rule families and the first rule the document fails.

    The rule families read the text as it came in, or with `rules_on_cleaned_text` the text C4's
    line cleaning left (then C4's page rules come first, as its cleaning did)."""
    cleaned = c4.clean(text, cfg.c4) if cfg.c4.enabled else None
    judged = cleaned.text if cleaned is not None and cfg.rules_on_cleaned_text else text
    doc = DocumentView(judged, lang, cfg.gopher.alpha_words_tokens)
    sig: dict[str, float | int | bool | None] = {signal.column: signal(doc) for signal in _rule_signals(cfg)}
    kept_text = text
    if cleaned is not None:
        sig |= {
            "quality_c4_lines_removed": cleaned.lines_removed,
            "quality_c4_chars_removed": cleaned.chars_removed,
            "quality_c4_sentences": cleaned.sentences,
            "quality_c4_lorem_ipsum": cleaned.lorem_ipsum,
            "quality_c4_curly_bracket": cleaned.curly_bracket,
        }
        kept_text = cleaned.text
    fw = None
    if cfg.fineweb.enabled:
        # FineWeb's newline/word ratio counts the words of the text it judges (C4's output).
        n_words = doc.n_words if kept_text == doc.text else count_words(kept_text)
        fw = fineweb.signals(kept_text, n_words, cfg.fineweb)
        sig |= {
            "quality_fineweb_line_punct_ratio": fw and fw.line_punct_ratio,
            "quality_fineweb_short_line_ratio": fw and fw.short_line_ratio,
            "quality_fineweb_char_dup_ratio": fw and fw.char_dup_ratio,
            "quality_fineweb_newline_word_ratio": fw and fw.newline_word_ratio,
        }
    return Judgement(first_failure(doc, cleaned, fw, cfg), kept_text, sig)


def first_failure(
    doc: DocumentView, cleaned: c4.C4Result | None, fw: fineweb.FineWebSignals | None, cfg: QualityConfig
) -> str | None:
    """The first rule failed, in the stage's order: the Gopher and code families, then C4's page
    rules (before them with `rules_on_cleaned_text`), then FineWeb's. `doc` may be a recorded
    row (redecide.py): the rules read it through their signals."""
    reasons: list[str | None] = [rules_reason(doc, cfg)]
    if cleaned is not None:
        page = c4.reason(cleaned, cfg.c4)
        reasons = [page, *reasons] if cfg.rules_on_cleaned_text else [*reasons, page]
    if cfg.fineweb.enabled:
        reasons.append(fineweb.reason(fw, cfg.fineweb))
    return next((r for r in reasons if r), None)
