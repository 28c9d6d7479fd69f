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
from pipeline.quality.rules import QUALITY_RULES, REPETITION_RULES, DocumentView, count_words

F32, I32, BOOL = pa.float32(), pa.int32(), pa.bool_()


def columns(cfg: QualityConfig) -> list[tuple[str, pa.DataType]]:
    """Signal columns (name, type) of the enabled rule families, in output order."""
    cols: list[tuple[str, pa.DataType]] = []
    if cfg.gopher.enabled:
        cols += [
            ("quality_words", I32),
            ("quality_mean_word_length", F32),
            ("quality_hash_word_ratio", F32),
            ("quality_ellipsis_word_ratio", F32),
            ("quality_bullet_lines_ratio", F32),
            ("quality_ellipsis_lines_ratio", F32),
            ("quality_alpha_words_fraction", F32),
            ("quality_stop_words", I32),
        ]
    if cfg.repetition.enabled:
        cols += [
            ("quality_dup_line_fraction", F32),
            ("quality_dup_para_fraction", F32),
            ("quality_dup_line_char_fraction", F32),
            ("quality_dup_para_char_fraction", F32),
        ]
        cols += [
            (f"quality_top_{n}_gram_char_fraction", F32) for n in sorted(cfg.repetition.max_top_ngram_char_fraction)
        ]
        cols += [
            (f"quality_dup_{n}_gram_char_fraction", F32) for n in sorted(cfg.repetition.max_dup_ngram_char_fraction)
        ]
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


def _first(rules, doc: DocumentView, section) -> str | None:
    for rule in rules:
        if reason := rule(doc, section):
            return reason
    return None


def judge(text: str, lang: str, cfg: QualityConfig) -> Judgement:
    """All signals of the enabled rule families and the first rule the document fails."""
    doc = DocumentView(text, lang, cfg.gopher.alpha_words_tokens)
    sig: dict[str, float | int | bool | None] = {}
    reasons: list[str | None] = []
    if cfg.gopher.enabled:
        sig |= {
            "quality_words": doc.n_words,
            "quality_mean_word_length": doc.mean_word_length,
            "quality_hash_word_ratio": doc.hash_word_ratio,
            "quality_ellipsis_word_ratio": doc.ellipsis_word_ratio,
            "quality_bullet_lines_ratio": doc.bullet_lines_ratio,
            "quality_ellipsis_lines_ratio": doc.ellipsis_lines_ratio,
            "quality_alpha_words_fraction": doc.alpha_token_fraction,
            "quality_stop_words": doc.stop_words,
        }
        reasons.append(_first(QUALITY_RULES, doc, cfg.gopher))
    if cfg.repetition.enabled:
        rep = cfg.repetition
        sig |= {
            "quality_dup_line_fraction": doc.dup_line_fraction,
            "quality_dup_para_fraction": doc.dup_para_fraction,
            "quality_dup_line_char_fraction": doc.dup_line_char_fraction,
            "quality_dup_para_char_fraction": doc.dup_para_char_fraction,
        }
        sig |= {
            f"quality_top_{n}_gram_char_fraction": doc.top_ngram_char_fraction(n)
            for n in sorted(rep.max_top_ngram_char_fraction)
        }
        sig |= {
            f"quality_dup_{n}_gram_char_fraction": doc.dup_ngram_char_fraction(n)
            for n in sorted(rep.max_dup_ngram_char_fraction)
        }
        reasons.append(_first(REPETITION_RULES, doc, rep))
    kept_text = text
    if cfg.c4.enabled:
        cleaned = c4.clean(text, cfg.c4)
        sig |= {
            "quality_c4_lines_removed": cleaned.lines_removed,
            "quality_c4_chars_removed": cleaned.chars_removed,
            "quality_c4_sentences": cleaned.sentences,
            "quality_c4_lorem_ipsum": cleaned.lorem_ipsum,
            "quality_c4_curly_bracket": cleaned.curly_bracket,
        }
        reasons.append(c4.reason(cleaned, cfg.c4))
        kept_text = cleaned.text
    if cfg.fineweb.enabled:
        # FineWeb's newline/word ratio counts the words of the text it judges (C4's output).
        n_words = doc.n_words if kept_text == text else count_words(kept_text)
        fw = fineweb.signals(kept_text, n_words, cfg.fineweb)
        sig |= {
            "quality_fineweb_line_punct_ratio": fw and fw.line_punct_ratio,
            "quality_fineweb_short_line_ratio": fw and fw.short_line_ratio,
            "quality_fineweb_char_dup_ratio": fw and fw.char_dup_ratio,
            "quality_fineweb_newline_word_ratio": fw and fw.newline_word_ratio,
        }
        reasons.append(fineweb.reason(fw, cfg.fineweb))
    reason = next((r for r in reasons if r), None)
    return Judgement(reason, kept_text, sig)
