"""Step 3 of dedup (see pipeline/dedup/minhash.py): apply the global decisions to one shard."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import LinesConfig
from pipeline.dedup.lines import strip_lines
from pipeline.errors import BuildError
from pipeline.stage import StageResult, split_by_reason

STAGE = "dedup"
TOO_SHORT = "dedup_lines_too_short"


def apply_decisions(table: pa.Table, decisions: pa.Table, lines: LinesConfig = LinesConfig()) -> StageResult:
    """Step 3, per shard: add dup_cluster, dup_cluster_size, duplicate_of and dup_lines_removed;
    take boilerplate lines out of kept documents; split by reason.

    Rows keep their input order; kept rows carry a null duplicate_of so every shard, kept or
    removed, has the same schema. A document that boilerplate removal takes below
    `lines.min_words` words (or leaves with none) is removed as `dedup_lines_too_short`, with its
    text as it came in.
    """
    at = pc.index_in(table.column("id"), value_set=decisions.column("id"))
    missing = pc.sum(pc.is_null(at)).as_py() or 0
    if missing:
        raise BuildError(
            f"dedup: {missing} of {table.num_rows} ids in this shard have no dedup decision; "
            "rerun find_duplicates over all shards."
        )
    mine = decisions.take(at)
    reasons = mine.column("reason").to_pylist()
    texts = table.column("text").to_pylist()
    removed_lines = [0] * len(texts)
    for i, boilerplate in enumerate(mine.column("boilerplate_lines").to_pylist()):
        if reasons[i] is None and boilerplate:
            text, removed_lines[i] = strip_lines(texts[i], set(boilerplate))
            words_after = len(text.split())
            # Too short because of the removal: it had min_words before (or loses every word).
            if words_after < lines.min_words and (len(texts[i].split()) >= lines.min_words or not words_after):
                reasons[i] = TOO_SHORT
            else:
                texts[i] = text
    text_type = table.schema.field("text").type
    table = table.set_column(table.column_names.index("text"), "text", pa.array(texts, text_type))
    columns = {name: mine.column(name) for name in ("dup_cluster", "dup_cluster_size", "duplicate_of")}
    columns["dup_lines_removed"] = pa.array(removed_lines, pa.int32())
    for name, column in columns.items():
        if name in table.column_names:  # a rerun over already annotated shards replaces them
            table = table.drop_columns([name])
        table = table.append_column(name, column)
    result = split_by_reason(table, reasons, STAGE)
    result.extra["boilerplate_lines_removed"] = sum(
        n for n, r in zip(removed_lines, reasons) if r is None
    )
    return result
