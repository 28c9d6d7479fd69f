"""The dedup stage's steps (pipeline/dedup/minhash.py explains the method):

1. `signature_shard`, per shard: what the clustering needs of each document (no text);
2. `cluster`, once per build: keep/remove decisions over all shards' signatures (and the index
   of earlier builds), written to `dedup/_decisions/`;
3. `apply_shard`, per shard: the decisions applied, boilerplate lines taken out.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.config import DedupConfig, LinesConfig
from pipeline.dedup import index, task_files
from pipeline.dedup.distributed import find_duplicates_distributed, plan
from pipeline.dedup.lines import strip_lines
from pipeline.dedup.methods import find_duplicates, signatures
from pipeline.errors import BuildError
from pipeline.shards import combined_fingerprint, read_shard, write_shard
from pipeline.stage import BuildContext, ShardContext, StageResult, split_by_reason

TOO_SHORT = "dedup_lines_too_short"
# The clustering reads signature files a column at a time, so a large build holds one column of
# them, never every signature. Files this small in all (~100,000 documents) are read whole
# instead, one read each: on a build of a few MB the column reads (20 a shard) were most of it.
READ_WHOLE_BYTES = 64 << 20


def signature_shard(table: pa.Table, ctx: ShardContext) -> StageResult:
    """Step 1: the shard's signatures, in `_signatures/` (no text leaves the shard)."""
    out = ctx.out_dir / "_signatures" / f"{ctx.shard}.parquet"
    write_shard(signatures(table, ctx.config), out)
    return StageResult(files=[out])


def cluster(ctx: BuildContext) -> dict:
    """Step 2: cluster all shards' signatures into keep/remove decisions, reading the signature
    files a column at a time (pipeline/dedup/lsh.py). With `dedup.index`, documents that earlier
    builds kept take part too, and this build's kept documents are then appended to the index."""
    records = ctx.records["dedup_signatures"]
    files = [ctx.folder / record["outputs"][0] for record in records]
    dedup: DedupConfig = ctx.config
    documents = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    skip_containment = dedup.containment and documents > dedup.containment_max_documents
    if skip_containment:
        dedup = dedup.model_copy(update={"containment": False})
    index_dir = Path(dedup.index) if dedup.index else None
    earlier = index.earlier_parts(index_dir, ctx.build_dir, dedup.minhash) if index_dir else []
    out = ctx.folder / "_decisions" / "decisions.parquet"
    priority = source_priority(ctx)
    fingerprint = combined_fingerprint(
        [r["fingerprint"] for r in records] + [ctx.config_hash, index.state(earlier), ",".join(priority)]
    )

    if documents > dedup.cluster_partition_rows and not dedup.containment and not index_dir:
        return _cluster_in_tasks(ctx, files, dedup, priority, fingerprint, skip_containment, documents)

    def step() -> dict:
        small = sum(f.stat().st_size for f in files) <= READ_WHOLE_BYTES
        decisions = find_duplicates([read_shard(f) for f in files] if small else files, dedup, earlier, priority)
        write_shard(decisions, out)
        record = {
            "artifact": ctx.artifact(out),
            "documents": decisions.num_rows,
            "note": f"{decisions.num_rows:,} docs clustered",
        }
        if skip_containment:
            record["containment"] = f"skipped: {documents:,} documents > containment_max_documents"
            record["note"] += f"; containment {record['containment']}"
        if index_dir:
            part = index.append(index_dir, ctx.build_dir, files, decisions, dedup.minhash)
            record |= {"index_part": str(part), "earlier_files": len(earlier)}
        return record

    return ctx.once("dedup_clusters", fingerprint, [out], step)


def _cluster_in_tasks(
    ctx: BuildContext,
    files: list[Path],
    dedup: DedupConfig,
    priority: list[str],
    fingerprint: str,
    skip_containment: bool,
    documents: int,
) -> dict:
    """Step 2 as tasks of bounded memory on `ctx.tasks` (pipeline/dedup/distributed.py): one
    decisions file per shard, in `_decisions/by_shard/`. The work folder is named by the
    fingerprint, so a rerun after a lost worker or a failed build resumes from the finished tasks.
    The tasks name the files as they reach them (`ctx.shared`): at the build's URL when it has one."""
    folder = ctx.folder / "_decisions" / "by_shard"
    outs = [folder / f"{f.stem}.parquet" for f in files]
    work = ctx.folder / "_cluster_work" / fingerprint[:16]

    def step() -> dict:
        shared = plan([ctx.shared(f) for f in files], dedup, priority, ctx.shared(work))
        ran = find_duplicates_distributed(shared, [ctx.shared(out) for out in outs], ctx.tasks.map)
        task_files.remove(ctx.shared(ctx.folder / "_cluster_work"), folder=True)
        note = f"{documents:,} docs clustered in {ran['tasks']:,} tasks on {ctx.tasks.where}"
        if skip_containment:
            note += f"; containment skipped: {documents:,} documents > containment_max_documents"
        return {"artifact": ctx.artifact(folder), "documents": documents, "ran_on": ctx.tasks.where, "note": note} | ran

    return ctx.once("dedup_clusters", fingerprint, outs, step)


def source_priority(ctx: BuildContext) -> list[str]:
    """The sources in the order their copies are kept: dedup.source_priority's, then the rest in
    the order of the build's sources."""
    named = list(ctx.config.source_priority)
    return named + [source.name for source in ctx.sources if source.name not in named]


def apply_shard(table: pa.Table, ctx: ShardContext) -> StageResult:
    """Step 3: the build's decisions applied to one shard."""
    decisions = ctx.artifacts["dedup_clusters"]
    if decisions.is_dir():  # made in tasks: one file per shard
        decisions = decisions / f"{ctx.shard}.parquet"
    return apply_decisions(table, read_shard(decisions), ctx.config.lines, ctx.stage)


def apply_decisions(
    table: pa.Table, decisions: pa.Table, lines: LinesConfig = LinesConfig(), stage: str = "dedup"
) -> StageResult:
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
    result = split_by_reason(table, reasons, stage)
    result.extra["boilerplate_lines_removed"] = sum(n for n, r in zip(removed_lines, reasons) if r is None)
    return result
