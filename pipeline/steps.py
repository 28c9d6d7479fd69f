"""A stage's work over the build directory, as plain functions the flows call.

Which shards a stage reads, the jobs one of its shard steps maps over them, the context of a
build step, and the stage summary that later stages and the manifest read. Build directory
layout (fixed names; docs/build-directory):

    manifest.json
    input/                      JSONL input converted to Parquet
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

from pipeline.config import BuildConfig
from pipeline.errors import InputError
from pipeline.jobs import ShardJob
from pipeline.shards import InputShard, combined_fingerprint, fingerprint, write_json
from pipeline.stage import BuildContext, ShardContext, ShardStep, Stage
from pipeline.stages import registry


def stage_sources(build_dir: Path, stage: Stage, inputs: list[InputShard]) -> list[tuple[str, Path]]:
    """(name, path) of the shards a stage reads: the output of the nearest earlier filter stage
    that finished, or the build input itself when none has (raw input only for its stage)."""
    names = registry.names()
    earlier = [s for s in registry.filters() if names.index(s.name) < names.index(stage.name)]
    for previous in reversed(earlier):
        summary = read_summary(build_dir, previous)
        if summary is not None:
            return [(s["name"], build_dir / previous.out / f"{s['name']}.parquet") for s in summary["shards"]]
    reads_shards = any(isinstance(step, ShardStep) for step in stage.steps)
    for shard in inputs if reads_shards else ():
        if shard.raw != stage.raw_input:
            readers = [s.name for s in registry if s.raw_input and s.raw_input == shard.raw]
            what = f"raw {shard.raw} input" if shard.raw else "text shards"
            first = (
                f"the {readers[0]} stage must run first: add it to --stages or enable it"
                if readers
                else "no stage reads it"
            )
            raise InputError(f"{shard.source}: {stage.name} cannot read {what}; {first}.")
    return [(shard.name, shard.path) for shard in inputs]


def read_summary(build_dir: Path, stage: Stage) -> dict | None:
    path = build_dir / stage.out / "_stage.json"
    return json.loads(path.read_text()) if path.exists() else None


def write_summary(build_dir: Path, stage: Stage, summary: dict) -> None:
    """Written when a stage has finished all its steps: later stages read from it."""
    write_json(summary, build_dir / stage.out / "_stage.json")


def build_context(build_dir: Path, stage: Stage, sources: list[tuple[str, Path]], cfg: BuildConfig) -> BuildContext:
    return BuildContext(
        build_dir=build_dir,
        stage=stage.name,
        folder=build_dir / stage.out,
        config=cfg.section(stage.name),
        config_hash=cfg.section_hash(stage.name),
        seed=cfg.seed,
        sources=sources,
    )


def shard_jobs(stage: Stage, step: ShardStep, ctx: BuildContext, shares_cores: bool = False) -> list[ShardJob]:
    """One job per shard the stage reads; its fingerprint covers the shard's bytes, the stage's
    config and the build steps' artifacts the step receives. `shares_cores`: the jobs run several
    at a time on one machine (see ShardContext)."""
    artifacts = {name: record for name, record in ctx.artifacts.items() if "artifact" in record}
    jobs = []
    for name, path in ctx.sources:
        parts = [step.name, fingerprint(path), ctx.config_hash] + [r["fingerprint"] for r in artifacts.values()]
        context = ShardContext(
            config=ctx.config,
            stage=stage.name,
            shard=name,
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
            )
        )
    return jobs
