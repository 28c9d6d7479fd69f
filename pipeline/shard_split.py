"""The checked text input cut along the shard plan (pipeline/shard_plan.py).

`prepare_sources` checks every input file and gives one shard per file; `planned_inputs` plans
the build's shards from those files' row groups and writes every shard that is not a whole file
as it stands (a piece of a large file, or tiny files merged) to `input/shards/part-*.parquet`,
streaming a row group at a time. A shard that is a whole file stays that file (a user's Parquet
file, or the conversion of a JSONL file), so a build of files near the shard size copies nothing.
A written shard is reused while the files it comes from are unchanged (its `.source.json`), so a
resumed build finds the same bytes and skips its finished jobs.

Ids are those of the files: a file's `id` column, or the id made from the file's name and row (a
JSONL line's number in the file), whatever shard the row lands in.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import ShardsConfig
from pipeline.errors import InputError
from pipeline.shard_plan import InputFile, PlannedShard, plan, shard_size
from pipeline.shards import WRITE_OPTIONS, InputShard, atomic_path, check_table, fingerprint, read_rows, write_json

FOLDER = "shards"


def planned_inputs(inputs: list[InputShard], convert_dir: Path, config: ShardsConfig, workers: int) -> list[InputShard]:
    """The build's shards, planned over the checked per-file shards `inputs` (text input; raw
    web input is cut by the extract stage's own parts and is returned as it is)."""
    if any(shard.raw for shard in inputs):
        return inputs
    files = {shard.name: _layout(shard) for shard in inputs}
    size = shard_size(sum(f.bytes for f in files.values()), workers, config.target_mb, config.per_worker, config.min_mb)
    merge = len(files) > config.per_worker * workers
    by_source: dict[str, list[InputShard]] = {}
    for shard in inputs:
        by_source.setdefault(shard.source, []).append(shard)
    prints = {}  # file -> fingerprint, read once however many pieces it has
    planned = []
    for own in by_source.values():
        for shard in plan([files[s.name] for s in own], size, merge):
            planned.append(_materialised(shard, own, convert_dir / FOLDER, prints))
    return planned


def _layout(shard: InputShard) -> InputFile:
    meta = pq.read_metadata(shard.path)
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    return InputFile(shard.name, str(shard.path), tuple((g.num_rows, g.total_byte_size) for g in groups))


def _materialised(planned: PlannedShard, own: list[InputShard], folder: Path, prints: dict[str, str]) -> InputShard:
    """The input shard of a planned shard: the file itself when it is one whole file, else the
    rows of its pieces written as one Parquet file."""
    by_path = {str(s.path): s for s in own}
    first = by_path[planned.pieces[0].path]
    if len(planned.pieces) == 1 and (planned.pieces[0].start, planned.pieces[0].stop) == (0, first.docs):
        return replace(first, name=planned.name)
    pieces = tuple((str(by_path[p.path].origin), p.start, p.stop) for p in planned.pieces)
    path = folder / f"{planned.name}.parquet"
    marker = path.with_suffix(".source.json")
    for p in planned.pieces:
        prints.setdefault(p.path, fingerprint(Path(p.path)))
    record = {"pieces": [[p.path, p.start, p.stop, prints[p.path]] for p in planned.pieces]}
    if not (path.exists() and marker.exists() and json.loads(marker.read_text()) == record):
        _write(planned, by_path, path)
        write_json(record, marker)
    return replace(first, name=planned.name, path=path, docs=planned.rows, pieces=pieces)


def _write(planned: PlannedShard, by_path: dict[str, InputShard], path: Path) -> None:
    """The rows of the pieces, in order, under the union of their files' columns (merged files may
    differ; a column one lacks is null there), streamed."""
    sources = [by_path[p.path] for p in planned.pieces]
    try:
        schema = pa.unify_schemas([_checked_schema(s) for s in sources])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        names = ", ".join(str(s.origin) for s in sources)
        raise InputError(
            f"{names}: these files are merged into one shard but their columns clash ({str(exc).splitlines()[0]}). "
            "Give a column one type in every file."
        ) from None
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, **WRITE_OPTIONS) as writer:
        for piece, source in zip(planned.pieces, sources):
            for table in read_rows(Path(piece.path), piece.start, piece.stop, source.origin):
                columns = [
                    table[f.name] if f.name in table.column_names else pa.nulls(len(table), f.type) for f in schema
                ]
                writer.write_table(pa.Table.from_arrays(columns, schema=schema))


def _checked_schema(shard: InputShard) -> pa.Schema:
    """A file's schema as its checked rows have it (`id` first when made, strings not large)."""
    empty = pq.read_schema(shard.path).empty_table()
    return check_table(empty, shard.origin).schema.remove_metadata()
