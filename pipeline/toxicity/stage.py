"""The toxicity stage: an offensive-language model's score on every line, beyond the keyword list.

The keyword filter (quality.keywords) counts listed words; it cannot tell an insult from a
medical page, and a list misses what is offensive without a listed word. The model here is
alt-profanity-check's (MIT; a linear SVM over TF-IDF word features, calibrated, trained on about
200k human-labelled tweets and Wikipedia talk comments), which ships inside its registry package,
so nothing is downloaded; it is English, so it scores the documents whose `lang` (the quality
stage's) is in `toxicity.languages`, and every document when no stage labelled languages. The
other languages keep the keyword filter, and each row says which scored it:

- `toxicity_scorer`: `model`, `keywords` (the quality stage's keyword list covered its
  language: `keyword_share` is set) or `none`;
- `toxicity_line_scores`: the model's probability of each non-empty line (null when not scored);
- `toxic_line_share`: the share of those lines above `line_threshold`.

A document is scored line by line, not whole, because the share of offensive lines is what
tells a page of abuse from a long text with one rude line (a play, a forum thread); above
`max_flagged_share` it is removed as `toxic`. The extras count documents per scorer and language
(`scored_by:<scorer>:<lang>`) for the report.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.config import ToxicityConfig
from pipeline.stage import ShardContext, StageResult, split_by_reason

BATCH_LINES = 20_000  # lines per model call: the TF-IDF matrix of a batch stays a few MB
NO_LANG = "und"


def line_scores(lines: list[str]) -> np.ndarray:
    """The model's offensive-language probability of each line."""
    from profanity_check import predict_prob  # loads the model (~2 s) in the worker that needs it

    if not lines:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([predict_prob(lines[i : i + BATCH_LINES]) for i in range(0, len(lines), BATCH_LINES)]).astype(
        np.float32
    )


def _set(table: pa.Table, name: str, values: Any, type_: pa.DataType) -> pa.Table:
    array = pa.array(values, type=type_)
    index = table.schema.get_field_index(name)
    return table.set_column(index, name, array) if index >= 0 else table.append_column(name, array)


def run_shard(table: pa.Table, ctx: ShardContext) -> StageResult:
    """Score the lines of every document in a scored language; remove the toxic ones."""
    cfg: ToxicityConfig = ctx.config
    texts = table.column("text").to_pylist()
    langs = table.column("lang").to_pylist() if "lang" in table.column_names else [None] * len(texts)
    listed = (
        [share is not None for share in table.column("keyword_share").to_pylist()]
        if "keyword_share" in table.column_names
        else [False] * len(texts)
    )
    scored = [lang is None or lang in cfg.languages for lang in langs]
    lines = [[line for line in text.splitlines() if line.strip()] if s else [] for text, s in zip(texts, scored)]
    flat = line_scores([line for doc in lines for line in doc])
    ends = np.cumsum([len(doc) for doc in lines])
    per_doc = np.split(flat, ends[:-1]) if len(lines) else []
    scores, shares, scorers, reasons = [], [], [], []
    counts: Counter[str] = Counter()
    for s, values, lang, has_list in zip(scored, per_doc, langs, listed):
        scorer = "model" if s else "keywords" if has_list else "none"
        counts[f"scored_by:{scorer}:{lang or NO_LANG}"] += 1
        scorers.append(scorer)
        if not s:
            scores.append(None)
            shares.append(None)
            reasons.append(None)
            continue
        share = float((values > cfg.line_threshold).mean()) if values.size else 0.0
        counts["flagged_lines"] += int((values > cfg.line_threshold).sum())
        scores.append(values.tolist())
        shares.append(share)
        reasons.append("toxic" if share > cfg.max_flagged_share else None)
    table = _set(table, "toxicity_scorer", scorers, pa.string())
    table = _set(table, "toxicity_line_scores", scores, pa.list_(pa.float32()))
    table = _set(table, "toxic_line_share", shares, pa.float32())
    result = split_by_reason(table, reasons, ctx.stage or "toxicity")
    result.extra = dict(sorted(counts.items()))
    return result


# ----------------------------------------------------------------------------- report


def report(build_dir: Path, manifest: dict[str, Any], config: dict[str, Any]) -> dict[str, Any] | None:
    """Per language: documents scored by the model (and removed as toxic), left to the keyword
    filter, or scored by neither."""
    entry = manifest.get("stages", {}).get("toxicity")
    if entry is None or "docs_in" not in entry:
        return None
    by_language: dict[str, dict[str, int]] = {}
    for key, n in entry.get("extra", {}).items():
        if key.startswith("scored_by:"):
            _, scorer, lang = key.split(":", 2)
            by_language.setdefault(lang, {"model": 0, "keywords": 0, "none": 0})[scorer] += n
    section = ToxicityConfig.model_validate(config.get("toxicity", {}))
    return {
        "languages": sorted(
            ({"lang": lang, **counts} for lang, counts in by_language.items()),
            key=lambda row: (-sum(row[k] for k in ("model", "keywords", "none")), row["lang"]),
        ),
        "toxic": entry.get("reasons", {}).get("toxic", 0),
        "flagged_lines": entry.get("extra", {}).get("flagged_lines", 0),
        "line_threshold": section.line_threshold,
        "max_flagged_share": section.max_flagged_share,
        "model_languages": section.languages,
    }
