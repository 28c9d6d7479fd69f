"""The boilerplate lines dedup removed most often, as text a person can recognise.

Dedup records only line hashes (`boilerplate_lines` in its decisions file); the text is
found again by hashing the lines of one document that had each line, in the shards dedup read.
A footer can carry an address or an e-mail, so every line goes through the privacy scrubber with
the build's privacy config (NER included) before it may appear in the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.config import PrivacyConfig
from pipeline.dedup.lines import line_hash
from pipeline.stages import registry
from pipeline.stats.shard_stats import read_columns, stage_files

TOP_LINES = 10
NER_LANGUAGE = "en"  # scrub with NER whatever the page's language: a missed name costs more here


def _dedup_inputs(build_dir: Path, manifest: dict[str, Any]) -> list[Path]:
    """The shards dedup read: the output of the filter stage before it that ran, else the
    build's input (as its shard records name them)."""
    names = registry.names()
    earlier = [
        stage
        for stage in registry.filters()
        if names.index(stage.name) < names.index("dedup") and stage.name in manifest.get("stages", {})
    ]
    if earlier:
        return stage_files(build_dir, earlier[-1].out)
    return [Path(shard["input"]) for shard in manifest["stages"]["dedup"].get("shards", [])]


def top_lines(
    build_dir: Path, manifest: dict[str, Any], decisions: Path | None, privacy: PrivacyConfig
) -> list[dict[str, Any]] | None:
    """The most widespread boilerplate lines: [{"line": scrubbed text, "documents": n}, ...]."""
    if decisions is None or not decisions.exists():
        return None
    path = decisions
    decisions = pq.read_table(path, columns=["id", "reason", "boilerplate_lines"])
    kept = decisions.filter(
        pc.and_(
            pc.is_null(decisions.column("reason")),
            pc.greater(pc.list_value_length(decisions.column("boilerplate_lines")), 0),
        )
    )
    if kept.num_rows == 0:
        return []
    hashes = kept.column("boilerplate_lines").combine_chunks()
    counts = pc.value_counts(pc.list_flatten(hashes))
    ranked = (
        pa.table({"hash": counts.field("values"), "documents": counts.field("counts")})
        .sort_by([("documents", "descending"), ("hash", "ascending")])
        .slice(0, TOP_LINES)
    )
    wanted = dict(zip(ranked.column("hash").to_pylist(), ranked.column("documents").to_pylist()))

    # One document per line is enough to read its text: the first kept one that lost it.
    parents = pc.list_parent_indices(hashes)
    first_doc = {}
    for h, parent in zip(pc.list_flatten(hashes).to_pylist(), parents.to_pylist()):
        if h in wanted and h not in first_doc:
            first_doc[h] = kept.column("id")[parent].as_py()
    docs = read_columns(_dedup_inputs(build_dir, manifest), ["id", "text"])
    docs = docs.filter(pc.is_in(docs.column("id"), value_set=pa.array(sorted(set(first_doc.values())))))
    text_of: dict[int, str] = {}
    for text in docs.column("text").to_pylist():
        for line in text.split("\n"):
            h = line_hash(line)
            if h in wanted and h not in text_of:
                text_of[h] = line.strip()
    found = [h for h in wanted if h in text_of]

    from pipeline.privacy.scrubber import scrub_texts  # presidio + spaCy load only when needed

    scrubbed, _ = scrub_texts([text_of[h] for h in found], [NER_LANGUAGE] * len(found), privacy)
    return [{"line": line, "documents": wanted[h]} for h, line in zip(found, scrubbed)]
