"""Prefect flows: `corpus_build` and one sub-flow per stage, mapping shard jobs over a process pool.

Thin wrappers only: what a stage does lives in `pipeline/`. Per-shard work is a mapped Prefect
task (visible in the UI) whose body hands the job to a process pool, or to a Dask cluster with
`dask_address` (flows/cluster.py), so CPU-bound work uses every core while Prefect itself stays
in this one process (worker processes never talk to the API).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

from prefect import flow, task
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
from pipeline.config import STAGES, BuildConfig
from pipeline.jobs import ShardJob, run_job
from pipeline.lock import build_lock
from pipeline.manifest import summarise_stage
from pipeline.shards import InputShard, prepare_inputs, remove_stale_temporaries

_pool: Executor | None = None  # processes on this machine: global steps, and shard jobs without Dask
_shard_pool: Executor | None = None  # where shard jobs run: _pool, or a Dask cluster (flows/cluster.py)
_slots = 1  # how many shard jobs run at once


@contextmanager
def worker_pool(workers: int, dask_address: str = "") -> Iterator[int]:
    """Processes for CPU-bound work (`spawn`, so no worker inherits Prefect's threads), and the
    Dask cluster for shard jobs when given its address; yields how many shard jobs run at once."""
    global _pool, _shard_pool, _slots
    context = multiprocessing.get_context("spawn")
    try:
        with ExitStack() as stack:
            # With a cluster, only the global steps (one at a time) run here.
            _pool = stack.enter_context(ProcessPoolExecutor(1 if dask_address else workers, context))
            if dask_address:
                _shard_pool, slots = stack.enter_context(dask_executor(dask_address))
            else:
                _shard_pool, slots = _pool, workers
            _slots = slots
            yield slots
    finally:
        _pool = _shard_pool = None
        _slots = 1


def in_pool(fn, *args, shard_job: bool = False) -> Any:
    """Run `fn` in a worker process: a shard job wherever shard jobs go, a global step here."""
    pool = _shard_pool if shard_job else _pool
    if pool is None:
        raise RuntimeError("corpus flows need a worker pool: call them from corpus_build")
    return pool.submit(fn, *args).result()


@task(name="shard", task_run_name="{job.kind}-{job.name}", cache_policy=NONE)
def shard_task(job: ShardJob) -> dict:
    record = in_pool(run_job, job, shard_job=True)
    progress.hook.advance(job.kind)
    return record


def map_shards(jobs: list[ShardJob], label: str) -> list[dict]:
    progress.hook.start(jobs[0].kind if jobs else label, len(jobs), "shards")
    futures = shard_task.map(jobs)
    return [future.result() for future in futures]


def _filter_stage(
    stage: str, build_dir: Path, inputs: list[InputShard], cfg: BuildConfig,
    aux: tuple[Path, str] | None = None, start: float | None = None,
) -> dict:
    """Map the stage's shard jobs (kept + removed/ per shard), then write its summary."""
    start = start or time.perf_counter()
    sources = steps.stage_sources(build_dir, stage, inputs)
    jobs = steps.shard_jobs(stage, stage, sources, build_dir / stage, cfg, aux)
    records = map_shards(jobs, stage)
    summary = summarise_stage(records, time.perf_counter() - start, cfg.section_hash(stage))
    steps.write_stage_summary(build_dir, stage, summary)
    progress.hook.finish(stage, f"{summary['docs_kept']:,} of {summary['docs_in']:,} docs kept")
    return summary


@flow(name="quality")
def quality_flow(build_dir: Path, inputs: list[InputShard], cfg: BuildConfig) -> dict:
    """Language ID, keyword, heuristic and perplexity filters, per shard (the perplexity
    reference model is trained once first)."""
    if not cfg.quality.perplexity.enabled:
        return _filter_stage("quality", build_dir, inputs, cfg)
    start = time.perf_counter()
    reference_path, reference = in_pool(steps.train_reference_lm, build_dir, cfg)
    return _filter_stage("quality", build_dir, inputs, cfg, (reference_path, reference["fingerprint"]), start)


@flow(name="dedup")
def dedup_flow(build_dir: Path, inputs: list[InputShard], cfg: BuildConfig) -> dict:
    """Exact + MinHash-LSH near-duplicate removal across all shards: signatures per shard,
    one global clustering over ids and hashes, then decisions applied per shard."""
    start = time.perf_counter()
    sources = steps.stage_sources(build_dir, "dedup", inputs)
    signature_jobs = steps.shard_jobs("dedup_signatures", "dedup", sources, build_dir / "dedup", cfg)
    map_shards(signature_jobs, "dedup_signatures")
    progress.hook.finish("dedup_signatures")
    progress.hook.start("dedup_clusters", 1, "step")
    decisions_path, decisions = in_pool(steps.dedup_decisions, build_dir, signature_jobs, cfg)
    note = f"; containment {decisions['containment']}" if "containment" in decisions else ""
    progress.hook.finish("dedup_clusters", f"{decisions['documents']:,} docs clustered{note}")
    return _filter_stage("dedup", build_dir, inputs, cfg, (decisions_path, decisions["fingerprint"]), start)


@flow(name="privacy")
def privacy_flow(build_dir: Path, inputs: list[InputShard], cfg: BuildConfig) -> dict:
    """presidio PII detection; every hit replaced by a typed placeholder such as <EMAIL_ADDRESS>."""
    return _filter_stage("privacy", build_dir, inputs, cfg)


@flow(name="tokenizer")
def tokenizer_flow(build_dir: Path, inputs: list[InputShard], cfg: BuildConfig) -> dict:
    """Byte-level BPE trained on the cleaned text, then every shard encoded to token shards."""
    from pipeline.tokenizer.stats import summarize as tokenizer_stats

    start = time.perf_counter()
    sources = steps.stage_sources(build_dir, "tokenizer", inputs)
    progress.hook.start("tokenizer_train", 1, "step")
    tokenizer_path, trained = in_pool(steps.train_tokenizer, build_dir, sources, cfg)
    progress.hook.finish("tokenizer_train", f"vocab {trained['vocab_size']:,}")
    jobs = steps.shard_jobs("encode", "tokenizer", sources, build_dir / "tokens", cfg,
                            aux=(tokenizer_path, trained["fingerprint"]), shares_cores=_slots > 1)
    records = sorted(map_shards(jobs, "encode"), key=lambda r: r["name"])
    totals = {
        key: sum(r[key] for r in records)
        for key in ("train_docs", "val_docs", "train_tokens", "val_tokens", "train_bytes", "val_bytes")
    }
    summary = totals | {
        "status": "done",
        "seconds": round(time.perf_counter() - start, 3),
        "config_hash": cfg.section_hash("tokenizer"),
        "vocab_size": trained["vocab_size"],
        "train_seconds": trained["seconds"],
        "stats": tokenizer_stats(records, tokenizer_path, build_dir / "tokens"),
        "shards": records,
    }
    steps.write_stage_summary(build_dir, "tokens", summary)
    progress.hook.finish("encode", f"{totals['train_tokens'] + totals['val_tokens']:,} tokens")
    return summary


@flow(name="pretrain")
def pretrain_flow(build_dir: Path, cfg: BuildConfig) -> dict:
    """A compact GPT trained on the token shards for a step and wall-clock budget."""
    max_steps = cfg.pretrain.max_steps
    progress.hook.start("pretrain", max_steps, "steps")
    # The Prefect UI's progress bar, updated at each percent (an API call each).
    artifact = create_progress_artifact(0.0, key="pretrain-progress", description=f"pretraining steps of {build_dir}")
    every = max(1, max_steps // 100)

    def on_progress(p: dict) -> None:
        progress.hook.advance("pretrain", completed=p["step"])
        if p["step"] % every == 0:
            update_progress_artifact(artifact, 100.0 * p["step"] / max_steps)

    record = steps.pretrain(build_dir, cfg, on_progress)
    summary = record | {"status": "done"}
    steps.write_stage_summary(build_dir, "model", summary)
    progress.hook.finish("pretrain", f"val loss {summary['final_val_loss']:.3f}")
    return summary


@flow(name="report")
def report_flow(build_dir: Path) -> str:
    """The corpus statistics report: report/report.html + report/stats.json."""
    from pipeline.stats.report import funnel_table, markdown_summary, write_report

    progress.hook.start("report", 1, "step")
    path = write_report(build_dir)
    stats = json.loads((path.parent / "stats.json").read_text())
    create_markdown_artifact(markdown=markdown_summary(stats), key="corpus-build-report",
                             description=f"Statistics of {build_dir} (full report: {path})")
    create_table_artifact(table=funnel_table(stats), key="corpus-build-funnel",
                          description="Documents, bytes and tokens left after each stage, with the share removed")
    progress.hook.finish("report", str(path))
    return str(path)


@flow(name="corpus_build")
def corpus_build(
    input: str | list[str],
    out: str,
    config: dict[str, Any] | None = None,
    stages: list[str] | None = None,
    workers: int = 0,
) -> dict:
    """Build a corpus: quality -> dedup -> privacy -> tokenizer -> pretrain -> report."""
    cfg = BuildConfig.model_validate(config or {})
    workers = workers or cfg.workers or os.cpu_count() or 1
    wanted = [s for s in STAGES if s in (stages or STAGES) and getattr(cfg, s).enabled]
    build_dir = remote.working_dir(out)  # `out` itself, or the local working copy of a URL
    # A deployment run starts here without the CLI, so the flow takes the lock itself too.
    with build_lock(build_dir):
        remove_stale_temporaries(build_dir)  # a killed build's half-written files
        remote.pull(out, build_dir)  # what another run already finished there is skipped below
        inputs = prepare_inputs(input, build_dir / "input")
        input_records = manifest.input_records(inputs)
        stage_flows = {"quality": quality_flow, "dedup": dedup_flow, "privacy": privacy_flow, "tokenizer": tokenizer_flow}
        result = manifest.record(build_dir, input, input_records, cfg, workers, str(out))
        with worker_pool(workers, cfg.dask_address) as slots:
            runner = ThreadPoolTaskRunner(max_workers=slots)
            for stage in wanted:
                if stage in stage_flows:
                    stage_flows[stage].with_options(task_runner=runner)(build_dir, inputs, cfg)
                elif stage == "pretrain":
                    pretrain_flow(build_dir, cfg)
                else:  # the report reads the manifest as it stands after the other stages
                    report_flow(build_dir)
                # After every stage, so that an interrupted build still has a current manifest
                # (and, at a URL, loses at most the stage in flight).
                result = manifest.record(build_dir, input, input_records, cfg, workers, str(out))
                remote.push(out, build_dir)
    return result
