"""A stage's work over the build directory, as plain functions the flows call.

Which shards a stage reads, the jobs one of its shard steps maps over them, the context of a
build step, and the stage summary that later stages and the manifest read. Build directory
layout (fixed names; docs/build-directory):

    manifest.json
    input/                      JSONL input converted to Parquet; shards/: planned shards
    <stage>/                    part-*.parquet (exactly its documents), removed/part-*.parquet,
                                _stage.json, _done/, and `_`-prefixed build-wide artifacts
    tokenizer/tokenizer.json
    tokens/                     train-part-*.bin, val-part-*.bin (+ .idx.npy), _stage.json
    model/                      ckpt.pt, metrics.jsonl
    report/                     report.html, stats.json
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import BuildConfig, SourceConfig
from pipeline.errors import InputError
from pipeline.jobs import ShardJob
from pipeline.shards import InputShard, combined_fingerprint, fingerprint, write_json, write_shard
from pipeline.stage import BuildContext, ShardContext, ShardStep, Stage
from pipeline.stages import registry


def stage_sources(build_dir: Path, stage: Stage, inputs: list[InputShard]) -> list[tuple[str, Path]]:
    """(name, path) of the shards a stage reads, shard by shard: the output of the nearest earlier
    filter stage that finished with that shard, or the build's input shard itself. A raw-input
    stage (extract) reads only the raw shards of its format; raw input reaches no other stage."""
    names = registry.names()
    earlier = [s for s in registry.filters() if names.index(s.name) < names.index(stage.name)]
    produced = {}  # earlier stage -> the shards its summary holds
    for previous in earlier:
        summary = read_summary(build_dir, previous)
        if summary is not None:
            produced[previous] = {s["name"] for s in summary["shards"]}
    reads_shards = any(isinstance(step, ShardStep) for step in stage.steps)
    found = []
    for shard in inputs:
        if not stage.applies_to(shard):
            continue
        previous = next((s for s in reversed(earlier) if shard.name in produced.get(s, ())), None)
        if previous is not None:
            found.append((shard.name, build_dir / previous.out / f"{shard.name}.parquet"))
            continue
        if reads_shards and shard.raw != stage.raw_input:
            readers = [s.name for s in registry if s.raw_input and s.raw_input == shard.raw]
            what = f"raw {shard.raw} input" if shard.raw else "text shards"
            first = (
                f"the {readers[0]} stage must run first: add it to --stages or enable it"
                if readers
                else "no stage reads it"
            )
            raise InputError(f"{shard.origin}: {stage.name} cannot read {what}; {first}.")
        found.append((shard.name, shard.path))
    return found


def entering_documents(build_dir: Path, inputs: list[InputShard]) -> list[tuple[str, Path]]:
    """(name, path) of every shard's documents as they entered the filters: the input shard, or
    what the raw-input stage (extract) made of a raw one. A model trained on "the raw input"
    (the quality classifier's negatives) reads these."""
    first = next(stage for stage in registry.filters() if not stage.raw_input)
    return stage_sources(build_dir, first, inputs)


def align_schemas(folder: Path, shards: list[str]) -> int:
    """Give every shard of a stage folder (and of its removed/) the columns of all of them, null
    where a shard lacks one, in one order; returns how many files were rewritten.

    Sources judged with other settings carry other columns (a web source's C4 signals), and a
    folder whose files differ in schema does not read as one table in most readers (HF datasets,
    DuckDB without union_by_name). A rewrite keeps the rows and their values as they are."""
    rewritten = 0
    for sub in (folder, folder / "removed"):
        paths = [sub / f"{name}.parquet" for name in shards if (sub / f"{name}.parquet").exists()]
        schemas = [pq.read_schema(path) for path in paths]
        if len({schema.names and tuple(schema.names) for schema in schemas}) < 2:
            continue
        unified = pa.unify_schemas([schema.remove_metadata() for schema in schemas])
        for path, schema in zip(paths, schemas):
            if schema.names != unified.names:
                table = pq.read_table(path)
                columns = [
                    table[f.name] if f.name in schema.names else pa.nulls(table.num_rows, f.type) for f in unified
                ]
                write_shard(pa.Table.from_arrays(columns, schema=unified), path)
                rewritten += 1
    return rewritten


def read_summary(build_dir: Path, stage: Stage) -> dict | None:
    path = build_dir / stage.out / "_stage.json"
    return json.loads(path.read_text()) if path.exists() else None


def write_summary(build_dir: Path, stage: Stage, summary: dict) -> None:
    """Written when a stage has finished all its steps: later stages read from it."""
    write_json(summary, build_dir / stage.out / "_stage.json")


def build_context(
    build_dir: Path, stage: Stage, inputs: list[InputShard], cfg: BuildConfig, sources: list[SourceConfig]
) -> BuildContext:
    return BuildContext(
        build_dir=build_dir,
        stage=stage.name,
        folder=build_dir / stage.out,
        config=cfg.section(stage.name),
        config_hash=cfg.section_hash(stage.name),
        seed=cfg.seed,
        shards=stage_sources(build_dir, stage, inputs),
        build_config=cfg,
        inputs=inputs,
        sources=sources,
    )


def longest_first(jobs: list[ShardJob]) -> list[ShardJob]:
    """The jobs in the order to start them: decreasing expected work (the step's `cost` of the
    shard, else the file's size), then by name. With a few shards per worker, a long one started
    last ends last while the other workers idle (longest processing time first)."""

    def work(job: ShardJob) -> float:
        path = Path(job.input_path)
        if not path.exists():  # a shard the workers read at the build's URL: left in its place
            return 0.0
        return job.step.cost(path, job.context.config) if job.step.cost else float(path.stat().st_size)

    return sorted(jobs, key=lambda job: (-work(job), job.name))


def shard_jobs(
    stage: Stage, step: ShardStep, ctx: BuildContext, shares_cores: bool = False, hash_of=fingerprint
) -> list[ShardJob]:
    """One job per shard the stage reads, with the stage's section as it applies to the shard's
    source; its fingerprint covers the shard's bytes, that section and the build steps' artifacts
    the step receives. A job that reads the build's input gives its rows their provenance (the
    `source` column, namespaced ids). `shares_cores`: the jobs run several at a time on one
    machine (see ShardContext). `hash_of`: a file's sha256 (of a build whose files are at a URL:
    pipeline/remote_jobs.py)."""
    artifacts = {name: record for name, record in ctx.artifacts.items() if "artifact" in record}
    inputs = {shard.name: shard for shard in ctx.inputs}
    per_source: dict[str, tuple] = {}
    jobs = []
    for name, path in ctx.shards:
        source = ctx.source_of(name)
        if source not in per_source:
            cfg = ctx.build_config.for_source(source)
            per_source[source] = (cfg.section(stage.name), cfg.section_hash(stage.name))
        section, section_hash = per_source[source]
        parts = [step.name, hash_of(path), section_hash] + [r["fingerprint"] for r in artifacts.values()]
        raw = inputs.get(name)
        context = ShardContext(
            config=section,
            stage=stage.name,
            shard=name,
            source=source,
            seed=ctx.seed,
            artifacts={key: ctx.build_dir / record["artifact"] for key, record in artifacts.items()},
            out_dir=ctx.folder,
            shares_cores=shares_cores,
        )
        jobs.append(
            ShardJob(
                step=step,
                input_path=path,
                context=context,
                fingerprint=combined_fingerprint(parts),
                reasons=stage.reasons,
                provenance=(source, raw.id_prefix) if raw is not None and raw.path == path else None,
            )
        )
    return jobs
