"""What a per-shard stage returns, and the one place that splits kept from removed rows.

A stage decides, per document, `None` (keep) or a reason string naming the rule that removed it
(e.g. `gopher_short_doc`). `split_by_reason` turns those decisions into the kept table and the
removed table (same columns + `stage` + `reason`), so conservation holds by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc


@dataclass
class StageResult:
    kept: pa.Table
    removed: pa.Table  # kept's columns + `stage: string` + `reason: string`
    # Counters a stage wants in the manifest beyond kept/removed (e.g. PII entity totals).
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def reasons(self) -> dict[str, int]:
        if self.removed.num_rows == 0:
            return {}
        counts = pc.value_counts(self.removed.column("reason")).to_pylist()
        return {c["values"]: c["counts"] for c in sorted(counts, key=lambda c: c["values"])}


def split_by_reason(table: pa.Table, reasons: Sequence[str | None], stage: str) -> StageResult:
    """Keep rows whose reason is None; the others go to `removed` with `stage` and `reason`."""
    if len(reasons) != table.num_rows:
        raise ValueError(f"{stage}: {len(reasons)} decisions for {table.num_rows} rows")
    reason_array = pa.array(reasons, type=pa.string())
    keep_mask = pc.is_null(reason_array)
    kept = table.filter(keep_mask)
    removed = table.filter(pc.invert(keep_mask))
    removed_reasons = reason_array.filter(pc.invert(keep_mask))
    removed = removed.append_column("stage", pa.array([stage] * removed.num_rows, pa.string()))
    removed = removed.append_column("reason", removed_reasons)
    return StageResult(kept=kept, removed=removed)
