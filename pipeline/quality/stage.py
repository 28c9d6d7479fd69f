"""The quality stage over one shard: language ID, then the Gopher rules; first failure wins.

Order of checks (the reason names the first one a document fails):
    empty_text -> lang_not_kept -> lang_low_score -> gopher quality rules -> gopher repetition rules
Every row, kept or removed, gets `lang`, `lang_score` and the `quality_*` signal columns, so a
report can show why the thresholds sit where they do.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from pipeline.config import QualityConfig
from pipeline.quality.langid import detect_languages
from pipeline.quality.rules import DocumentView, gopher_reason
from pipeline.stage import StageResult, split_by_reason

# Signal columns: (name, type, how to read it off a DocumentView).
SIGNALS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("quality_words", pa.int32(), "n_words"),
    ("quality_mean_word_length", pa.float32(), "mean_word_length"),
    ("quality_alpha_words_fraction", pa.float32(), "alpha_token_fraction"),
    ("quality_stop_words", pa.int32(), "stop_words"),
    ("quality_dup_line_fraction", pa.float32(), "dup_line_fraction"),
)


def _decide(doc: DocumentView, score: float, cfg: QualityConfig) -> str | None:
    if not doc.text.strip():
        return "empty_text"
    if doc.lang not in cfg.languages:
        return "lang_not_kept"
    if score < cfg.min_lang_score:
        return "lang_low_score"
    return gopher_reason(doc, cfg)


def _set_column(table: pa.Table, name: str, values: list, type_: pa.DataType) -> pa.Table:
    """Append a column, or replace ours from an earlier run (other columns are left alone)."""
    array = pa.array(values, type=type_)
    index = table.schema.get_field_index(name)
    if index >= 0:
        return table.set_column(index, name, array)
    return table.append_column(name, array)


def run_shard(table: pa.Table, cfg: QualityConfig) -> StageResult:
    """Keep/remove every row of one shard; removed rows carry `stage` and `reason`."""
    texts: list[str] = table.column("text").to_pylist()
    langs, scores = detect_languages(texts)
    docs = [DocumentView(text, lang) for text, lang in zip(texts, langs)]
    reasons = [_decide(doc, score, cfg) for doc, score in zip(docs, scores)]

    table = _set_column(table, "lang", langs, pa.string())
    table = _set_column(table, "lang_score", scores, pa.float32())
    for name, type_, attr in SIGNALS:
        table = _set_column(table, name, [getattr(doc, attr) for doc in docs], type_)

    result = split_by_reason(table, reasons, "quality")
    lang_in = Counter(langs)
    lang_out = Counter(lang for lang, reason in zip(langs, reasons) if reason is None)
    result.extra = {f"lang_in:{code}": n for code, n in sorted(lang_in.items())}
    result.extra |= {f"lang_out:{code}": n for code, n in sorted(lang_out.items())}
    return result
