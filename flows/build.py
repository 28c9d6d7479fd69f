"""Prefect flows: `corpus_build`, and one sub-flow per registered stage that runs its steps.

Thin wrappers only: what a stage does lives in `pipeline/`, what steps it has in its
declaration (pipeline/stages.py). A shard step is a mapped Prefect task per shard (visible in the
UI) whose body hands the job to the executors: a local process pool, or a Dask cluster with
`dask_address` (flows/cluster.py). So CPU-bound work uses every core while Prefect itself stays
in this one process (worker processes never talk to the API).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import Flow, flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NONE
from prefect.task_runners import ThreadPoolTaskRunner

from flows import progress
from flows.cluster import dask_executor
from pipeline import manifest, remote, steps
from pipeline.config import BuildConfig, SourceConfig
from pipeline.jobs import ShardJob, run_job
from pipeline.lock import build_lock
from pipeline.shard_split import planned_inputs
from pipeline.shards import InputShard, prepare_sources, remove_stale_temporaries
from pipeline.sources import build_sources
from pipeline.stage import BuildContext, BuildStep, ShardStep, Stage
from pipeline.stages import registry


@dataclass(frozen=True)
class Executors:
    """Where a build's work runs: build steps in a local worker process, shard jobs in `shards`
    (the same local pool, or a Dask cluster), `slots` of them at a time."""

    local: Executor
    shards: Executor
    slots: int

    def run_shard(self, job: ShardJob) -> dict:
        return self.shards.submit(run_job, job).result()

    def run_step(self, fn: Callable[[BuildContext], dict], ctx: BuildContext) -> dict:
        return self.local.submit(fn, ctx).result()


@contextmanager
def executors(workers: int, dask_address: str = "") -> Iterator[Executors]:
    """Processes for CPU-bound work (`spawn`, so no worker inherits Prefect's threads), and the
    Dask cluster for shard jobs when given its address."""
    context = multiprocessing.get_context("spawn")
    with ExitStack() as stack:
        # With a cluster, only the build steps (one at a time) run here.
        local = stack.enter_context(ProcessPoolExecutor(1 if dask_address else workers, context))
        if dask_address:
            shards, slots = stack.enter_context(dask_executor(dask_address))
        else:
            shards, slots = local, workers
        yield Executors(local, shards, slots)


def map_shards(jobs: list[ShardJob], step: ShardStep, pool: Executors) -> list[dict]:
    """One Prefect task per shard job, `pool.slots` at a time, each handing its job to the pool."""

    # The pool is bound here, not passed as a task parameter: Prefect records parameters
    # (deep-copying dataclasses), and a copied process pool closes the real one's pipes when it
    # is collected.
    @task(name="shard", task_run_name="{job.step.name}-{job.context.shard}", cache_policy=NONE)
    def shard_task(job: ShardJob) -> dict:
        record = pool.run_shard(job)
        progress.hook.advance(job.step.name)
        return record

    progress.hook.start(step.name, len(jobs), "shards", step.label or step.name)
    records = [future.result() for future in shard_task.map(jobs)]
    return sorted(records, key=lambda r: r["name"])


def step_progress(step: BuildStep) -> Callable[[int, int], None]:
    """The progress bar and, in the Prefect UI, a progress artifact (updated at each percent,
    an API call each) of a long step running in this process."""
    artifact = None

    def on_progress(done: int, total: int) -> None:
        nonlocal artifact
        progress.hook.advance(step.name, completed=done, total=total)
        if artifact is None:
            artifact = create_progress_artifact(
                0.0, key=f"{step.name.replace('_', '-')}-progress", description=f"{step.label or step.name}: progress"
            )
        if done % max(1, total // 100) == 0 or done == total:
            update_progress_artifact(artifact, 100.0 * done / total)

    return on_progress


def run_stage(
    stage: Stage,
    build_dir: Path,
    inputs: list[InputShard],
    cfg: BuildConfig,
    sources: list[SourceConfig],
    pool: Executors,
) -> dict | None:
    """Every step of one stage in order, then its summary (read by later stages and the manifest)."""
    start = time.perf_counter()
    ctx = steps.build_context(build_dir, stage, inputs, cfg, sources)
    for step in stage.steps:
        if isinstance(step, ShardStep):
            jobs = steps.shard_jobs(stage, step, ctx, shares_cores=pool.slots > 1)
            ctx.records[step.name] = map_shards(jobs, step, pool)
            if step.writes == "documents":
                steps.align_schemas(ctx.folder, [record["name"] for record in ctx.records[step.name]])
            progress.hook.finish(step.name, _shard_note(ctx.records[step.name]))
        elif step.when(ctx.config):
            progress.hook.start(step.name, 1, step.unit, step.label or step.name)
            if step.isolated:
                record = pool.run_step(step.run, ctx)
            else:
                ctx.on_progress = step_progress(step)
                record = step.run(ctx)
                ctx.on_progress = None
            ctx.artifacts[step.name] = record
            progress.hook.finish(step.name, record.get("note", ""))
    summary = manifest.summarise(stage, ctx)
    if summary is not None:
        summary |= {
            "status": "done",
            "seconds": round(time.perf_counter() - start, 3),
            "config_hash": ctx.config_hash,
            "build_steps": ctx.artifacts,
        }
        steps.write_summary(build_dir, stage, summary)
    return summary


def _shard_note(records: list[dict]) -> str:
    if records and "docs_kept" in records[0]:
        return f"{sum(r['docs_kept'] for r in records):,} of {sum(r['docs_in'] for r in records):,} docs kept"
    skipped = sum(bool(r.get("skipped")) for r in records)
    return f"{skipped} resumed" if skipped else ""


def stage_flow(stage: Stage, pool: Executors) -> Flow:
    """The stage as a Prefect sub-flow of its own name, mapping shard tasks `pool.slots` at a time
    (the stage and the pool are bound, not parameters: see map_shards)."""

    def run(build_dir: Path, inputs: list[InputShard], cfg: BuildConfig, sources: list[SourceConfig]) -> dict | None:
        return run_stage(stage, build_dir, inputs, cfg, sources, pool)

    return Flow(
        run,
        name=stage.name,
        description=stage.description,
        validate_parameters=False,
        task_runner=ThreadPoolTaskRunner(max_workers=pool.slots),
    )


def log_stage(stage: Stage, summary: dict) -> None:
    """The stage's counts, top removal reasons and time, in the run's log."""
    counts = ", ".join(f"{k} {v}" for k, v in manifest.headline(stage, summary).items() if v)
    reasons = sorted(summary.get("reasons", {}).items(), key=lambda kv: -kv[1])[:5]
    top = f"; top reasons: {', '.join(f'{r} {n:,}' for r, n in reasons)}" if reasons else ""
    get_run_logger().info("%s: %s%s (%.1f s)", stage.name, counts, top, summary["seconds"])


def publish_artifacts(build_dir: Path, result: dict) -> None:
    """On the parent run, whatever stages ran: the funnel as a table and, once the report is
    written, its headline numbers."""
    from pipeline.stats.report import funnel, funnel_table, markdown_summary

    create_table_artifact(
        table=funnel_table(funnel(result)),
        key="corpus-build-funnel",
        description="Documents, bytes and tokens left after each stage, with the share removed",
    )
    stats_path = build_dir / "report" / "stats.json"
    if stats_path.exists():
        stats = json.loads(stats_path.read_text())
        create_markdown_artifact(
            markdown=markdown_summary(stats),
            key="corpus-build-report",
            description=f"Statistics of {build_dir} (full report: {build_dir / 'report' / 'report.html'})",
        )


@flow(name="corpus_build")
def corpus_build(
    input: str | list[str] | None,
    out: str,
    config: dict[str, Any] | None = None,
    stages: list[str] | None = None,
    workers: int = 0,
) -> dict:
    """Build a corpus from `input` or from the config's sources: every registered stage in order
    (quality -> dedup -> privacy -> tokenizer -> pretrain -> report by default), or the `stages`
    named."""
    cfg = BuildConfig.model_validate(config or {})
    sources = build_sources(cfg, input)
    workers = cfg.worker_count(workers)
    named = {registry.get(name).name for name in stages or registry.names()}  # unknown names fail here
    build_dir = remote.working_dir(out)  # `out` itself, or the local working copy of a URL
    # A deployment run starts here without the CLI, so the flow takes the lock itself too.
    with build_lock(build_dir):
        remove_stale_temporaries(build_dir)  # a killed build's half-written files
        remote.pull(out, build_dir)  # what another run already finished there is skipped below
        checked = prepare_sources([(source.name, source.input) for source in sources], build_dir / "input")
        inputs = planned_inputs(checked, build_dir / "input", cfg.shards, workers)
        # A raw-input stage (extract) runs only for raw shards: text shards go straight on.
        wanted = [s for s in registry if s.name in named and cfg.section(s.name).enabled and s.applies(inputs)]
        input_records = manifest.input_records(inputs)
        spec = input or {source.name: source.input for source in sources}
        result = manifest.record(build_dir, spec, input_records, cfg, workers, str(out))
        with executors(workers, cfg.dask_address) as pool:
            for stage in wanted:
                summary = stage_flow(stage, pool)(build_dir, inputs, cfg, sources)
                # After every stage, so that an interrupted build still has a current manifest
                # (and, at a URL, loses at most the stage in flight).
                result = manifest.record(build_dir, spec, input_records, cfg, workers, str(out))
                remote.push(out, build_dir)
                if summary is not None:
                    log_stage(stage, summary)
        publish_artifacts(build_dir, result)
    return result
