"""The quality stage over one shard: language ID, then the heuristic rules; first failure wins.

Order of checks (the reason names the first one a document fails):
    empty_text -> doc_too_long -> lang_not_kept -> lang_low_score -> url_blocklist -> keyword_share -> gopher
    quality rules -> gopher repetition rules -> C4 line cleaning and page rules -> FineWeb rules
    (on the C4-cleaned text) -> perplexity_tail (only with perplexity.drop_tail)
Language ID (langid.py) may answer `und` (undetermined): it is never kept (lang_not_kept) and is
counted like any language in the `lang_in:`/`lang_out:` extras. `keyword_share` (keywords.py) is
a column for every row whose language has a blocklist (null otherwise), `url_blocklisted` one
when a URL blocklist is configured and the shard has a `url` column.
Every row, kept or removed, gets `lang`, `lang_score` and the `quality_*` signal columns of every
enabled rule family (see signals.py), so thresholds can be re-set without recomputing; rows
removed before the rules (empty text, language) have nulls there, and so in `perplexity` and
`perplexity_bucket` (perplexity.py; scored on the C4-cleaned text, null for a language without
reference text). Kept rows carry the C4-cleaned text; removed rows keep the text as it came in.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa

from pipeline.config import QualityConfig
from pipeline.quality import keywords, perplexity, signals
from pipeline.quality.langid import UNDETERMINED, Fallback, detect_languages
from pipeline.stage import BuildContext, ShardContext, StageResult, split_by_reason

# What `before_rules` may answer: a row removed for one of these never reached the rules, so its
# signal columns are null.
BEFORE_RULES = ("empty_text", "doc_too_long", "lang_not_kept", "lang_low_score", "url_blocklist", "keyword_share")


def before_rules(
    text: str, lang: str, score: float, blocked: bool, share: float | None, cfg: QualityConfig
) -> str | None:
    """Checks before the heuristic rules (which then run only on the documents that pass)."""
    if not text.strip():
        return "empty_text"
    if len(text) > cfg.max_chars:
        return "doc_too_long"
    if cfg.filter_languages and (lang == UNDETERMINED or lang not in cfg.languages):
        return "lang_not_kept"
    if cfg.filter_languages and score < cfg.min_lang_score_per_language.get(lang, cfg.min_lang_score):
        return "lang_low_score"
    if blocked:
        return "url_blocklist"
    if share is not None and share > cfg.keywords.max_share:
        return "keyword_share"
    return None


def _set_column(table: pa.Table, name: str, values: list, type_: pa.DataType) -> pa.Table:
    """Append a column, or replace ours from an earlier run (other columns are left alone)."""
    array = pa.array(values, type=type_)
    index = table.schema.get_field_index(name)
    if index >= 0:
        return table.set_column(index, name, array)
    return table.append_column(name, array)


def train_reference_lm(ctx: BuildContext) -> dict:
    """Build step: the perplexity model, trained once per build from the reference files."""
    pcfg = ctx.config.perplexity
    out = ctx.folder / "_reference_lm" / "reference_lm.npz"

    def train() -> dict:
        reference = perplexity.train_reference(pcfg)
        reference.save(out)
        return {"artifact": ctx.artifact(out), "languages": sorted(reference.models), "cutoffs": reference.cutoffs}

    return ctx.once("reference_lm", perplexity.reference_fingerprint(pcfg), [out], train)


def run_shard(table: pa.Table, ctx: ShardContext) -> StageResult:
    """Keep/remove every row of one shard; removed rows carry `stage` and `reason`.

    `ctx.artifacts["reference_lm"]`: the perplexity model the build trained once
    (train_reference_lm); without it the model is trained in this process from the reference files."""
    cfg: QualityConfig = ctx.config
    reference_lm: Path | None = ctx.artifacts.get("reference_lm")
    texts: list[str] = table.column("text").to_pylist()
    # An over-long document is removed unread; its language is that of its beginning.
    keep = None
    # Without filter_languages nothing is removed for its language, so lingua's answer always counts.
    if cfg.lingua.skip_when_removed_anyway and cfg.filter_languages:
        keep = {lang: cfg.min_lang_score_per_language.get(lang, cfg.min_lang_score) for lang in cfg.languages}
    langs, scores = detect_languages([text[: cfg.max_chars] for text in texts], Fallback.from_config(cfg.lingua, keep))
    kw = cfg.keywords
    lists = keywords.load_blocklists(kw.blocklist_dir) if kw.enabled else {}
    shares = [keywords.keyword_share(text[: cfg.max_chars], lists, lang) for text, lang in zip(texts, langs)]
    check_urls = kw.enabled and bool(kw.url_blocklist) and "url" in table.column_names
    domains = keywords.load_domains(kw.url_blocklist) if check_urls else frozenset()
    urls = table.column("url").to_pylist() if check_urls else [None] * len(texts)
    blocked = [keywords.url_blocked(url, domains) for url in urls]
    reasons = [before_rules(*row, cfg) for row in zip(texts, langs, scores, blocked, shares)]
    judged = [None if reason else signals.judge(text, lang, cfg) for text, lang, reason in zip(texts, langs, reasons)]
    reasons = [reason or (j and j.reason) for reason, j in zip(reasons, judged)]
    ppl_cfg = cfg.perplexity
    if ppl_cfg.enabled:
        rows = [i for i, j in enumerate(judged) if j]
        scored = perplexity.reference_model(ppl_cfg, reference_lm).score(
            [judged[i].text for i in rows], [langs[i] for i in rows]
        )
        ppl, buckets = [None] * len(texts), [None] * len(texts)
        for i, value, bucket in zip(rows, *scored):
            ppl[i], buckets[i] = value, bucket
            if ppl_cfg.drop_tail and bucket == "tail" and reasons[i] is None:
                reasons[i] = "perplexity_tail"

    # C4 line cleaning: kept rows get the cleaned text, removed rows keep what came in.
    out_texts = [j.text if j and not j.reason else text for text, j in zip(texts, judged)]
    if out_texts != texts:
        table = _set_column(table, "text", out_texts, table.schema.field("text").type)
    table = _set_column(table, "lang", langs, pa.string())
    table = _set_column(table, "lang_score", scores, pa.float32())
    if kw.enabled:
        table = _set_column(table, "keyword_share", shares, pa.float32())
    if check_urls:
        table = _set_column(table, "url_blocklisted", blocked, pa.bool_())
    for name, type_ in signals.columns(cfg):
        table = _set_column(table, name, [j and j.signals[name] for j in judged], type_)
    if ppl_cfg.enabled:
        table = _set_column(table, "perplexity", ppl, pa.float32())
        table = _set_column(table, "perplexity_bucket", buckets, pa.string())

    result = split_by_reason(table, reasons, ctx.stage or "quality")
    lang_in = Counter(langs)
    lang_out = Counter(lang for lang, reason in zip(langs, reasons) if reason is None)
    result.extra = {f"lang_in:{code}": n for code, n in sorted(lang_in.items())}
    result.extra |= {f"lang_out:{code}": n for code, n in sorted(lang_out.items())}
    return result
