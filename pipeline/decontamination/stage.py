"""The decontamination stage: no evaluation benchmark text, and no validation text, in training.

After dedup (fewer documents to check, and a copy of a benchmark passage is checked once) and
before privacy (whose placeholders would change the n-grams a passage shares with its benchmark).
A stage of its own: it needs a build-wide index the quality stage has no use for, and a source
can switch it on or off with its own section.

1. `build_index`, once per build: the word n-grams (ngrams.py: GPT-3's normalisation) of every
   item of every benchmark in `decontamination.benchmarks`, and of every validation document (the
   tokenizer's seeded split by id, tokenizer.val_fraction) of the stage's input, as two indexes
   on disk (index.py), with `_index/index.json` describing them (items per benchmark, items too
   short to hold one n-gram, which therefore cannot be checked).
2. `run_shard`, per shard: a document sharing an n-gram with a benchmark item is removed as
   `contaminated`, or with `action: cut` loses each matching span and `cut_window` characters
   around it (lm-eval's Janitor, after GPT-3), kept when what is left is long enough. A training
   document sharing an n-gram with a validation document is counted (`validation: report`) or
   removed as `validation_overlap` (`validation: remove`); validation documents themselves are
   not checked against their own index.

Columns on every row: `contamination_ngrams` (benchmark n-grams matched), `contaminated_by`
(the benchmarks, comma-separated, or null), `validation_overlap_ngrams` (null for validation
documents and with `validation: off`). Extras: `contaminated:<benchmark>` documents per
benchmark, `contamination_cut`, `validation_docs`, `validation_overlap_docs`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import DecontaminationConfig
from pipeline.decontamination import benchmarks, ngrams
from pipeline.decontamination.index import IndexWriter, NgramIndex
from pipeline.shards import combined_fingerprint, fingerprint, write_json
from pipeline.stage import BuildContext, ShardContext, StageResult, split_by_reason
from pipeline.tokenizer.encode import is_val

BATCH = 10_000  # items or documents hashed at a time


def build_index(ctx: BuildContext) -> dict:
    """Build step: the benchmark and validation n-gram indexes (see the module docstring)."""
    cfg: DecontaminationConfig = ctx.config
    folder = ctx.folder / "_index"
    meta_path = folder / "index.json"
    files = benchmarks.benchmark_files(cfg.benchmarks) if cfg.benchmarks else {}
    val_fraction = ctx.build_config.tokenizer.val_fraction
    parts = [f"{name}:{fingerprint(path)}" for name, path in files.items()] + [ctx.config_hash]
    if cfg.validation != "off":
        parts += [f"{name}:{fingerprint(path)}" for name, path in ctx.shards] + [f"val_fraction:{val_fraction}"]
    outputs = [meta_path] + [folder / kind / "keys.npy" for kind in ("benchmarks", "validation")]

    def step() -> dict:
        writer = IndexWriter(folder / "benchmarks", cfg.index_partitions)
        found = []
        for label, (name, path) in enumerate(files.items()):
            items = short = 0
            batch: list[str] = []
            for text in [*benchmarks.item_texts(path, cfg.text_fields), None]:
                if text is not None:
                    batch.append(text)
                    items += 1
                    short += len(ngrams.words(text)) < cfg.ngram
                if batch and (text is None or len(batch) == BATCH):
                    grams, _ = ngrams.document_ngrams(batch, cfg.ngram)
                    writer.add(grams, np.full(len(grams), label, dtype=np.uint16))
                    batch = []
            found.append({"name": name, "file": str(path), "items": items, "short_items": short})
        benchmark_ngrams = writer.finish()
        validation = IndexWriter(folder / "validation", cfg.index_partitions)
        val_docs = 0
        if cfg.validation != "off":
            for _, path in ctx.shards:
                for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH, columns=["id", "text"]):
                    ids, texts = batch.column("id").to_pylist(), batch.column("text").to_pylist()
                    val = [t for i, t in zip(ids, texts) if is_val(i, ctx.seed, val_fraction)]
                    val_docs += len(val)
                    grams, _ = ngrams.document_ngrams(val, cfg.ngram)
                    validation.add(grams, np.zeros(len(grams), dtype=np.uint16))
        validation_ngrams = validation.finish()
        meta = {
            "ngram": cfg.ngram,
            "benchmarks": found,
            "benchmark_ngrams": benchmark_ngrams,
            "val_fraction": val_fraction,
            "validation_docs": val_docs,
            "validation_ngrams": validation_ngrams,
        }
        write_json(meta, meta_path)
        items = sum(b["items"] for b in found)
        return meta | {
            "artifact": ctx.artifact(meta_path),
            "note": f"{len(found)} benchmarks, {items:,} items; {val_docs:,} validation docs",
        }

    return ctx.once("decontamination_index", combined_fingerprint(parts), outputs, step)


def _load(meta_path: Path) -> tuple[dict, NgramIndex, NgramIndex]:
    meta = json.loads(meta_path.read_text())
    return meta, NgramIndex(meta_path.parent / "benchmarks"), NgramIndex(meta_path.parent / "validation")


def cut(text: str, n: int, index: NgramIndex, cfg: DecontaminationConfig) -> str | None:
    """The text with every span matching a benchmark n-gram cut out, `cut_window` characters
    around it; pieces shorter than `min_piece_chars` go too. None when the document should go
    whole: more than `max_spans` spans, or less than `min_chars_left` left."""
    spans = ngrams.word_spans(text)
    grams = ngrams.ngram_hashes(ngrams.word_hashes(ngrams.words(text)), n)
    starts = np.flatnonzero(index.contains(grams)).tolist()
    merged: list[list[int]] = []
    for i in starts:
        start, end = spans[i][0] - cfg.cut_window, spans[i + n - 1][1] + cfg.cut_window
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    if len(merged) > cfg.max_spans:
        return None
    pieces, at = [], 0
    for start, end in merged + [[len(text), len(text)]]:
        piece = text[at : max(start, at)].strip()
        if len(piece) >= cfg.min_piece_chars:
            pieces.append(piece)
        at = max(at, end)
    left = "\n".join(pieces)
    return left if len(left) >= cfg.min_chars_left else None


def run_shard(table: pa.Table, ctx: ShardContext) -> StageResult:
    """Check every document against the benchmarks and (training documents) the validation set."""
    cfg: DecontaminationConfig = ctx.config
    meta, bench, validation = _load(ctx.artifacts["decontamination_index"])
    n = meta["ngram"]
    names = [b["name"] for b in meta["benchmarks"]]
    texts = table.column("text").to_pylist()
    ids = table.column("id").to_pylist()
    grams, doc = ngrams.document_ngrams(texts, n)
    hit = bench.contains(grams)
    bench_hits = np.bincount(doc[hit], minlength=len(texts))
    by: list[set[str]] = [set() for _ in texts]
    labels = {gram: bench.labels_of(np.uint64(gram)) for gram in np.unique(grams[hit]).tolist()}
    for gram, d in zip(grams[hit].tolist(), doc[hit].tolist()):
        by[d].update(names[label] for label in labels[gram])
    checks_validation = cfg.validation != "off"
    is_training = np.array([not is_val(i, ctx.seed, meta["val_fraction"]) for i in ids], dtype=bool)
    val_hits = np.zeros(len(texts), dtype=np.int64)
    if checks_validation and len(validation):
        val_hit = validation.contains(grams) & is_training[doc]
        val_hits = np.bincount(doc[val_hit], minlength=len(texts))

    counts: Counter[str] = Counter()
    reasons: list[str | None] = [None] * len(texts)
    for d, text in enumerate(texts):
        if bench_hits[d]:
            counts.update(f"contaminated:{name}" for name in by[d])
            if cfg.action == "cut" and (left := cut(text, n, bench, cfg)) is not None:
                texts[d] = left
                counts["contamination_cut"] += 1
            else:
                reasons[d] = "contaminated"
        if val_hits[d]:
            counts["validation_overlap_docs"] += 1
            if cfg.validation == "remove" and reasons[d] is None:
                reasons[d] = "validation_overlap"
    if checks_validation:
        counts["validation_docs"] += int((~is_training).sum())
    columns = {
        "contamination_ngrams": (bench_hits.tolist(), pa.int32()),
        "contaminated_by": ([",".join(sorted(b)) or None for b in by], pa.string()),
        "validation_overlap_ngrams": (
            [int(v) if t and checks_validation else None for v, t in zip(val_hits, is_training)],
            pa.int32(),
        ),
    }
    if counts["contamination_cut"]:
        table = table.set_column(
            table.column_names.index("text"), "text", pa.array(texts, table.schema.field("text").type)
        )
    for name, (values, type_) in columns.items():
        index = table.schema.get_field_index(name)
        array = pa.array(values, type_)
        table = table.set_column(index, name, array) if index >= 0 else table.append_column(name, array)
    result = split_by_reason(table, reasons, ctx.stage or "decontamination")
    result.extra = dict(sorted((k, v) for k, v in counts.items() if v))
    return result


# ----------------------------------------------------------------------------- report


def report(build_dir: Path, manifest: dict[str, Any], config: dict[str, Any]) -> dict[str, Any] | None:
    """Per benchmark: items, items too short to check, documents that share an n-gram with it;
    the documents removed or cut; the validation check."""
    entry = manifest.get("stages", {}).get("decontamination")
    if entry is None or "docs_in" not in entry:
        return None
    extra = entry.get("extra", {})
    index = entry.get("build_steps", {}).get("decontamination_index", {})
    return {
        "ngram": index.get("ngram"),
        "benchmarks": [
            {**b, "documents": extra.get(f"contaminated:{b['name']}", 0)} for b in index.get("benchmarks", [])
        ],
        "removed": entry.get("reasons", {}).get("contaminated", 0),
        "cut": extra.get("contamination_cut", 0),
        "validation": config.get("decontamination", {}).get("validation", "report"),
        "validation_docs": extra.get("validation_docs", 0),
        "training_docs": entry["docs_in"] - extra.get("validation_docs", 0),
        "validation_overlap_docs": extra.get("validation_overlap_docs", 0),
        "validation_overlap_removed": entry.get("reasons", {}).get("validation_overlap", 0),
    }
