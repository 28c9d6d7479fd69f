"""Per-document numbers read from a build's shards: lengths, quality signals, duplicate clusters,
PII per language, one example id per removal reason.

Only numbers and ids leave this module: text is read solely to measure its length in Arrow, so
no document text (and no PII) can reach the report through it. Every histogram uses fixed or
data-independent bins where it can, so two builds' histograms line up in a comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Lengths span 1 to 10^6 characters: log-spaced bins, ten per decade.
LENGTH_EDGES = np.logspace(0, 6, 61)
SIGNAL_BINS = 30


@dataclass(frozen=True)
class Signal:
    """A quality signal worth a picture, with the config keys of its thresholds. The thresholds
    are read from the build's config, so the lines drawn are the ones that applied."""

    column: str
    label: str
    limits: tuple[tuple[str, str], ...]  # (dotted config key, "min" | "max")
    log_x: bool = False


SIGNALS = (
    Signal("lang_score", "language ID score", (("quality.min_lang_score", "min"),)),
    Signal(
        "quality_words",
        "words per document",
        (("quality.gopher.min_words", "min"), ("quality.gopher.max_words", "max")),
        log_x=True,
    ),
    Signal(
        "quality_mean_word_length",
        "mean word length (chars)",
        (("quality.gopher.min_mean_word_length", "min"), ("quality.gopher.max_mean_word_length", "max")),
    ),
    Signal(
        "quality_alpha_words_fraction",
        "share of words with a letter",
        (("quality.gopher.min_alpha_words_ratio", "min"),),
    ),
    Signal(
        "quality_stop_words",
        "stop words (distinct; languages with a list)",
        (("quality.gopher.min_stop_words", "min"),),
    ),
    Signal("quality_hash_word_ratio", "'#' per word", (("quality.gopher.max_symbol_word_ratio", "max"),)),
    Signal("quality_bullet_lines_ratio", "share of bullet lines", (("quality.gopher.max_bullet_lines_ratio", "max"),)),
    Signal(
        "quality_dup_line_fraction", "share of repeated lines", (("quality.repetition.max_dup_line_fraction", "max"),)
    ),
    Signal(
        "quality_dup_line_char_fraction",
        "chars in repeated lines",
        (("quality.repetition.max_dup_line_char_fraction", "max"),),
    ),
    Signal(
        "quality_top_2_gram_char_fraction",
        "top 2-gram char share",
        (("quality.repetition.max_top_ngram_char_fraction.2", "max"),),
    ),
    Signal(
        "quality_dup_5_gram_char_fraction",
        "repeated 5-gram char share",
        (("quality.repetition.max_dup_ngram_char_fraction.5", "max"),),
    ),
    Signal("keyword_share", "blocklisted word share", (("quality.keywords.max_share", "max"),)),
)


def stage_files(build_dir: Path, stage: str, removed: bool = False) -> list[Path]:
    folder = build_dir / stage / "removed" if removed else build_dir / stage
    return sorted(folder.glob("part-*.parquet"))


def read_columns(paths: list[Path], wanted: list[str]) -> pa.Table | None:
    """The wanted columns that exist, from every shard; None when there is no shard."""
    tables = []
    for path in paths:
        names = set(pq.read_schema(path).names)
        tables.append(pq.read_table(path, columns=[c for c in wanted if c in names]))
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="default")


def _summary(values: np.ndarray) -> dict[str, Any]:
    if values.size == 0:
        return {"documents": 0}
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return {
        "documents": int(values.size),
        "mean": float(values.mean()),
        "p10": float(p10),
        "median": float(p50),
        "p90": float(p90),
        "max": float(values.max()),
    }


def _log_histogram(values: np.ndarray) -> dict[str, list]:
    counts, _ = np.histogram(np.clip(values, 1, LENGTH_EDGES[-1]), bins=LENGTH_EDGES)
    return {"edges": [round(float(e), 3) for e in LENGTH_EDGES], "counts": counts.tolist()}


def lengths(paths: list[Path]) -> dict[str, Any] | None:
    """Characters and whitespace-separated words per document, as a summary and a histogram."""
    table = read_columns(paths, ["text"])
    if table is None or "text" not in table.column_names:
        return None
    text = table.column("text")
    chars = pc.utf8_length(text).to_numpy(zero_copy_only=False).astype(np.float64)
    words = pc.list_value_length(pc.utf8_split_whitespace(text)).to_numpy(zero_copy_only=False).astype(np.float64)
    return {
        unit: {**_summary(values), "histogram": _log_histogram(values)}
        for unit, values in (("chars", chars), ("words", words))
    }


def length_distributions(build_dir: Path, ran: list[str]) -> dict[str, Any] | None:
    """Before filtering (everything the first filter stage read: its kept + removed rows, as
    conservation guarantees) and after (the last filter stage's kept rows)."""
    if not ran:
        return None
    before = lengths(stage_files(build_dir, ran[0]) + stage_files(build_dir, ran[0], removed=True))
    after = lengths(stage_files(build_dir, ran[-1]))
    if before is None or after is None:
        return None
    return {"before": before, "after": after, "before_stage": f"{ran[0]} input", "after_stage": f"{ran[-1]} output"}


def _config_value(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def quality_signals(build_dir: Path, config: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Each main quality signal over every document that reached the rules (kept and removed),
    with the thresholds that applied and how many documents lie beyond them."""
    paths = stage_files(build_dir, "quality") + stage_files(build_dir, "quality", removed=True)
    table = read_columns(paths, [signal.column for signal in SIGNALS])
    if table is None:
        return None
    signals = []
    for signal in SIGNALS:
        if signal.column not in table.column_names:
            continue
        values = table.column(signal.column).drop_null().to_numpy(zero_copy_only=False).astype(np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        thresholds = [
            {"kind": kind, "value": value, "key": key}
            for key, kind in signal.limits
            if (value := _config_value(config, key)) is not None
        ]
        beyond = sum(
            int((values < t["value"]).sum() if t["kind"] == "min" else (values > t["value"]).sum()) for t in thresholds
        )
        if signal.log_x:
            edges = LENGTH_EDGES
            counts, _ = np.histogram(np.clip(values, 1, edges[-1]), bins=edges)
        else:
            counts, edges = np.histogram(values, bins=SIGNAL_BINS)
        signals.append(
            {
                "signal": signal.column,
                "label": signal.label,
                "log_x": signal.log_x,
                "thresholds": thresholds,
                "beyond_threshold": beyond,
                **_summary(values),
                "histogram": {"edges": [round(float(e), 6) for e in edges], "counts": counts.tolist()},
            }
        )
    return signals or None


def duplicate_clusters(decisions: Path | None) -> dict[str, Any] | None:
    """Clusters by size (from dedup's build-wide decisions file), and their count."""
    if decisions is None or not decisions.exists():
        return None
    path = decisions
    table = pq.read_table(path, columns=["dup_cluster", "dup_cluster_size"])
    sizes = table.group_by("dup_cluster").aggregate([("dup_cluster_size", "max")]).column("dup_cluster_size_max")
    by_size = {int(row["values"]): int(row["counts"]) for row in pc.value_counts(sizes).to_pylist()}
    multi = {size: n for size, n in sorted(by_size.items()) if size > 1}
    return {
        "clusters_by_size": {str(size): n for size, n in multi.items()},
        "clusters": sum(multi.values()),
        "documents_in_clusters": sum(s * n for s, n in multi.items()),
        "largest_cluster": max(multi, default=0),
    }


def pii_by_language(build_dir: Path) -> dict[str, dict[str, int]] | None:
    """Replaced PII spans per language and entity type, from the privacy output's pii_counts."""
    table = read_columns(stage_files(build_dir, "privacy"), ["lang", "pii_counts"])
    if table is None or "pii_counts" not in table.column_names:
        return None
    counts = table.column("pii_counts").combine_chunks()  # map<entity, count> per document
    langs = table.column("lang") if "lang" in table.column_names else pa.nulls(table.num_rows, pa.string())
    offsets = counts.offsets.to_numpy()
    start, end = offsets[0], offsets[-1]  # MapArray.keys/items ignore the array's own slice
    parents = np.repeat(np.arange(len(counts)), np.diff(offsets))
    flat = pa.table(
        {
            "lang": pc.fill_null(pc.take(langs, pa.array(parents)), "und"),
            "entity": counts.keys[start:end],
            "count": counts.items[start:end],
        }
    )
    summed = (
        flat.group_by(["lang", "entity"])
        .aggregate([("count", "sum")])
        .sort_by([("lang", "ascending"), ("entity", "ascending")])
    )
    result: dict[str, dict[str, int]] = {}
    for row in summed.to_pylist():
        if row["count_sum"]:
            result.setdefault(row["lang"], {})[row["entity"]] = int(row["count_sum"])
    return result


def reason_examples(build_dir: Path, stage: str) -> dict[str, str]:
    """For each removal reason of a stage, one removed document's id (the smallest: deterministic)."""
    table = read_columns(stage_files(build_dir, stage, removed=True), ["id", "reason"])
    if table is None or table.num_rows == 0 or "reason" not in table.column_names:
        return {}
    firsts = table.group_by("reason").aggregate([("id", "min")])
    return dict(sorted(zip(firsts.column("reason").to_pylist(), firsts.column("id_min").to_pylist())))
