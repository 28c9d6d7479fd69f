"""Dedup's methods in order, and the two steps that run them over a build.

Dedup runs in three steps, so no process holds the corpus's texts:
1. `signatures` (per shard, in parallel): id, length, every method's columns and the line hashes
   of every document.
2. `find_duplicates` (once, build-wide): each method's pass over the clusters (clusters.py), from
   ids and hashes only; one decision per id.
3. `pipeline.dedup.stage.apply_decisions` (per shard, in parallel): annotate rows and split.

Boilerplate lines ride along (pipeline/dedup/lines.py): counted in step 2 over the documents that
survive, removed in step 3.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.config import DedupConfig
from pipeline.dedup.clusters import Clusters, Signatures
from pipeline.dedup.containment import CONTAINED
from pipeline.dedup.exact import EXACT, normalise
from pipeline.dedup.lines import LINE_HASH, boilerplate_lines, line_hashes
from pipeline.dedup.minhash import NEAR

# The passes, in order: same text, similar text, a part of a longer text.
METHODS = (EXACT, NEAR, CONTAINED)
EARLIER = "duplicate_of_earlier_build"
REASONS = (*(method.reason for method in METHODS), EARLIER)


def signature_schema(cfg: DedupConfig) -> pa.Schema:
    return pa.schema(
        [
            ("id", pa.string()),
            # Characters of the normalised text: padding whitespace is not content, so the copies
            # of one exact group tie and the lowest id represents them.
            ("length", pa.int64()),
            ("source", pa.string()),  # the build source, for dedup.source_priority
            *(field for method in METHODS for field in method.fields(cfg)),
            ("line_hashes", LINE_HASH),  # distinct normalised lines (empty with lines off)
        ]
    )


def signatures(table: pa.Table, cfg: DedupConfig) -> pa.Table:
    """Step 1, per shard: what `find_duplicates` needs to know of each document, and no text."""
    texts = table.column("text").to_pylist()
    normalised = [normalise(t) for t in texts]
    lines = cfg.lines
    source = table.column("source") if "source" in table.column_names else pa.nulls(table.num_rows, pa.string())
    columns = {"id": table.column("id"), "length": [len(t) for t in normalised], "source": source}
    for method in METHODS:
        columns |= method.columns(normalised, cfg)
    columns["line_hashes"] = (
        [line_hashes(t, lines.min_line_chars, lines.sentence_spans) for t in texts]
        if lines.enabled
        else [[]] * len(texts)
    )
    return pa.table(columns, schema=signature_schema(cfg))


def find_duplicates(
    sources: Iterable[pa.Table | Path], cfg: DedupConfig, earlier: Iterable[Path] = (), priority: Sequence[str] = ()
) -> pa.Table:
    """Step 2, build-wide: one row per document with its cluster and, for a removed one, its reason.

    sources: each shard's signatures, as a table or as its Parquet file; a column is read from
    them when it is needed (pipeline/dedup/lsh.py says what stays in memory). earlier: the
    signature files of the documents earlier builds kept (pipeline/dedup/index.py). priority: the
    build sources in the order their copies are kept (clusters.py).

    Columns: id, dup_cluster (the representative's id), dup_cluster_size, duplicate_of (null for
    representatives and singletons), reason (null = keep, else the method that last moved the
    document: `exact_duplicate` = same normalised text as the representative, `near_duplicate` =
    reached through MinHash edges, `contained_in` = its cluster lies inside a longer document;
    `duplicate_of_earlier_build` = the cluster holds a document an earlier build kept, which then
    represents it and counts in its size), boilerplate_lines (line hashes a kept document loses,
    see pipeline/dedup/lines.py). Sorted by id.
    """
    docs = Signatures(list(sources), list(earlier), signature_schema(cfg), cfg.minhash.num_perm)
    clusters = Clusters(docs, priority)
    for index, method in enumerate(METHODS):
        if method.enabled(cfg):
            clusters.method = index
            method.join(clusters, cfg)
    n, total = docs.n, docs.total
    size = np.bincount(clusters.rep, minlength=total)[clusters.rep[:n]].astype(np.int32)
    rep = clusters.rep[:n]
    removed = rep != np.arange(n)
    code = np.where(removed, clusters.moved_by[:n], -1)
    code[rep >= n] = REASONS.index(EARLIER)
    if cfg.lines.enabled:
        boilerplate = boilerplate_lines(docs.column("line_hashes", earlier=False), ~removed, cfg.lines.max_documents)
    else:
        boilerplate = pa.array([[]] * n, LINE_HASH)
    ids = docs.column("id")
    return pa.table(
        {
            "id": ids.slice(0, n),
            "dup_cluster": ids.take(rep),
            "dup_cluster_size": pa.array(size, pa.int32()),
            "duplicate_of": ids.take(pa.array(rep, mask=~removed)),
            "reason": pa.array(REASONS, pa.string()).take(pa.array(code, mask=code < 0)),
            "boilerplate_lines": boilerplate,
        }
    )
