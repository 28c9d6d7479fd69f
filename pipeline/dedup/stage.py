"""Step 3 of dedup (see pipeline/dedup/minhash.py): apply the global decisions to one shard."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import BuildError
from pipeline.stage import StageResult, split_by_reason

STAGE = "dedup"


def apply_decisions(table: pa.Table, decisions: pa.Table) -> StageResult:
    """Step 3, per shard: add dup_cluster, dup_cluster_size and duplicate_of; split by reason.

    Rows keep their input order; kept rows carry a null duplicate_of so every shard, kept or
    removed, has the same schema.
    """
    at = pc.index_in(table.column("id"), value_set=decisions.column("id"))
    missing = pc.sum(pc.is_null(at)).as_py() or 0
    if missing:
        raise BuildError(
            f"dedup: {missing} of {table.num_rows} ids in this shard have no dedup decision; "
            "rerun find_duplicates over all shards."
        )
    mine = decisions.take(at)
    for name in ("dup_cluster", "dup_cluster_size", "duplicate_of"):
        if name in table.column_names:  # a rerun over already annotated shards replaces them
            table = table.drop_columns([name])
        table = table.append_column(name, mine.column(name))
    return split_by_reason(table, mine.column("reason").to_pylist(), STAGE)
