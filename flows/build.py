"""Prefect flows: `corpus_build`, and one sub-flow per registered stage that runs its steps.

Thin wrappers only: what a stage does lives in `pipeline/`, what steps it has in its
declaration (pipeline/stages.py). A shard step is a mapped Prefect task per shard (visible in the
UI) whose body hands the job to the executors: a local process pool, or a Dask cluster with
`dask_address` (flows/cluster.py). A build-wide step runs in a local worker process too, or,
for a build at a URL with a cluster, on a Dask worker that reads and writes the build there, so
that this process handles only metadata. So CPU-bound work uses every core while Prefect itself
stays in this one process (worker processes never talk to the API).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

from prefect import Flow, flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NONE
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.task_runners import ThreadPoolTaskRunner

from flows import progress
from flows import workers as warm_workers
from flows.cluster import DaskShards, DaskTasks, dask_shards
from pipeline import manifest, remote, shards, status, steps
from pipeline.config import BuildConfig, SourceConfig
from pipeline.errors import BuildError, InputError
from pipeline.jobs import ShardJob, run_job
from pipeline.lock import build_lock
from pipeline.remote_jobs import BuildStore
from pipeline.shard_split import planned_inputs
from pipeline.shards import InputShard, prepare_sources, prepare_sources_quarantining, remove_stale_temporaries
from pipeline.sources import build_sources
from pipeline.stage import BuildContext, BuildStep, ShardStep, Stage
from pipeline.stages import registry
from pipeline.tasks import LocalTasks, measured


@dataclass(frozen=True)
class Executors:
    """Where a build's work runs: build steps in a local worker process (or, for a build at a
    URL, on a worker of the Dask cluster), shard jobs through `run_shard` (the same local pool,
    or the cluster), `slots` of them at a time."""

    local: ProcessPoolExecutor
    run_shard: Callable[[ShardJob], dict]
    slots: int
    cluster: DaskShards | None = None

    def run_step(self, name: str, fn: Callable[[BuildContext], dict], ctx: BuildContext, isolated: bool = True) -> dict:
        """A build step, its record saying where it ran, how long, what memory: at a URL with a
        cluster, on a worker that reads and writes the build there (pipeline/remote_steps.py);
        else in a local worker process (or, not `isolated`, in this one). Its tasks run on the
        cluster when there is one (they reach the build's folder, or its URL), else in a local pool."""
        if self.cluster is not None:
            ctx.tasks = DaskTasks(self.cluster.address, self.cluster.worker_timeout_s, name)
        else:
            ctx.tasks = LocalTasks(self.slots)
        if self.store is not None:
            return self.cluster.step(name, fn, ctx)
        return self.local.submit(measured, fn, ctx).result() if isolated else measured(fn, ctx)

    def summarise(self, stage: Stage, ctx: BuildContext) -> dict | None:
        """The stage's manifest entry (manifest.summarise). A stage's own summary may read its
        files, which at a URL with a cluster only the workers hold: there, on a worker."""
        if self.store is None or stage.summarise is None:
            return manifest.summarise(stage, ctx)
        return self.cluster.step(f"{stage.name}_summary", stage.summarise, ctx, summary=True)

    @property
    def store(self) -> BuildStore | None:
        """The build at its URL when the cluster's workers read and write it there."""
        return None if self.cluster is None else self.cluster.store

    def fingerprint(self, path: Path) -> str:
        return shards.fingerprint(path) if self.store is None else self.store.hash_of(path)

    def align_schemas(self, folder: Path, shards: list[str]) -> None:
        (steps.align_schemas if self.cluster is None else self.cluster.align_schemas)(folder, shards)

    def stop(self) -> None:
        """Stop all work now: the local workers killed, nobody waiting on the cluster any more.
        What they were doing is redone by a rerun (atomic writes, done records last)."""
        terminate(self.local)
        if self.cluster is not None:
            self.cluster.stop()


@contextmanager
def executors(
    workers: int,
    dask_address: str = "",
    dask_worker_timeout_s: float = 300,
    note: Callable[[str], None] = print,
    store: BuildStore | None = None,
) -> Iterator[Executors]:
    """Processes for CPU-bound work (`spawn`, so no worker inherits Prefect's threads), and the
    Dask cluster for shard jobs when given its address (with `store`, they read and write the
    build at its URL). A failure, SIGTERM or SIGINT stops them:
    no worker outlives its build (a build step may hold gigabytes for an hour)."""
    # With a cluster, only the build steps (one at a time) run here.
    local = ProcessPoolExecutor(
        1 if dask_address else workers,
        warm_workers.context(),
        initializer=warm_workers.adopt_environment,
        initargs=(dict(os.environ),),
    )
    pool = None
    try:
        with ExitStack() as stack:
            if dask_address:
                cluster = stack.enter_context(dask_shards(dask_address, dask_worker_timeout_s, note, store))
                pool = Executors(local, cluster.run, cluster.slots, cluster)
            else:
                pool = Executors(local, lambda job: local.submit(run_job, job).result(), workers)
            with stopped_by_signals(pool):
                yield pool
    except BaseException:
        if pool is None:
            terminate(local)
        else:
            pool.stop()
        raise
    local.shutdown()


def terminate(pool: ProcessPoolExecutor) -> None:
    """Kill a pool's worker processes now; ProcessPoolExecutor can only wait for them (until
    Python 3.14's terminate_workers)."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


@contextmanager
def stopped_by_signals(pool: Executors) -> Iterator[None]:
    """On SIGTERM (`corpus serve` stopping, a cancelled run) or SIGINT, stop the pool first,
    then do what was done before: Prefect's handler raises TerminationSignal, Python's
    KeyboardInterrupt, and the run ends Cancelled or Crashed. Stopping first matters: the shard
    tasks wait on the workers, and a flow cannot end before its tasks do. Prefect installs its
    handler again in every sub-flow, so each stage's sub-flow enters this too."""
    if threading.current_thread() is not threading.main_thread():  # only there can handlers be set
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: FrameType | None) -> None:
        pool.stop()
        before = previous[signum]
        if callable(before):
            before(signum, frame)
        elif before == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    for signum in previous:
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


def map_shards(jobs: list[ShardJob], step: ShardStep, pool: Executors) -> list[dict]:
    """One Prefect task per shard job, `pool.slots` at a time, the longest first, each handing its
    job to the pool."""

    # The pool is bound here, not passed as a task parameter: Prefect records parameters
    # (deep-copying dataclasses), and a copied process pool closes the real one's pipes when it
    # is collected.
    @task(name="shard", task_run_name="{job.step.name}-{job.context.shard}", cache_policy=NONE)
    def shard_task(job: ShardJob) -> dict:
        record = pool.run_shard(job)
        progress.hook.advance(job.step.name)
        return record

    progress.hook.start(step.name, len(jobs), "shards", step.label or step.name)
    records = [future.result() for future in shard_task.map(steps.longest_first(jobs))]
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
    with stopped_by_signals(pool):
        run_steps(stage, ctx, pool)
    summary = pool.summarise(stage, ctx)
    if summary is not None:
        summary |= {
            "status": "done",
            "seconds": round(time.perf_counter() - start, 3),
            "config_hash": ctx.config_hash,
            "build_steps": ctx.artifacts,
        }
        steps.write_summary(build_dir, stage, summary)
    return summary


def run_steps(stage: Stage, ctx: BuildContext, pool: Executors) -> None:
    for step in stage.steps:
        if isinstance(step, ShardStep):
            if step.when is not None and not step.when(ctx):
                ctx.records[step.name] = []
                continue
            jobs = steps.shard_jobs(stage, step, ctx, shares_cores=pool.slots > 1, hash_of=pool.fingerprint)
            ctx.records[step.name] = map_shards(jobs, step, pool)
            if step.writes == "documents":
                pool.align_schemas(ctx.folder, [record["name"] for record in ctx.records[step.name]])
            progress.hook.finish(step.name, _shard_note(ctx.records[step.name]))
        elif step.when(ctx.config):
            progress.hook.start(step.name, 1, step.unit, step.label or step.name)
            ctx.on_progress = None if step.isolated else step_progress(step)  # not on a Dask worker
            record = pool.run_step(step.name, step.run, ctx, step.isolated)
            ctx.on_progress = None
            ctx.artifacts[step.name] = record
            progress.hook.finish(step.name, record.get("note", ""))


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
    quarantine: bool = False,
) -> dict:
    """Build a corpus from `input` or from the config's sources: every registered stage in order
    (quality -> dedup -> privacy -> tokenizer -> pretrain -> report by default), or the `stages`
    named. With `quarantine`, an input file that fails its checks is set aside (listed in the
    manifest and the run's log with its reason) and the rest is built; without, it fails the build."""
    cfg = BuildConfig.model_validate(config or {})
    sources = build_sources(cfg, input)
    workers = cfg.worker_count(workers)
    named = {registry.get(name).name for name in stages or registry.names()}  # unknown names fail here
    build_dir = remote.working_dir(out)  # `out` itself, or the local working copy of a URL
    run = run_identity()
    # A deployment run starts here without the CLI, so the flow takes the lock itself too.
    with build_lock(build_dir, about=run), outcome_recorded(build_dir, out, run):
        remove_stale_temporaries(build_dir)  # a killed build's half-written files
        # At a URL (or in the working copy of one: a scheduled build), with a cluster, the workers
        # read and write the build there themselves: here, only what is done is needed.
        url = str(out) if remote.is_remote(out) else remote.url_of(build_dir)
        store = BuildStore(url, build_dir) if cfg.dask_address and url else None
        # What is finished there is skipped below.
        remote.pull(out, build_dir, only=remote.is_record if store is not None else None)
        status.write(build_dir, "running", **run)
        inputs, quarantined = checked_inputs(sources, build_dir, quarantine)
        inputs = planned_inputs(inputs, build_dir / "input", cfg.shards, workers)
        # A raw-input stage (extract) runs only for raw shards: text shards go straight on.
        wanted = [s for s in registry if s.name in named and cfg.runs(s.name) and s.applies(inputs)]
        warm_workers.start(wanted)
        record = partial(
            manifest.record,
            build_dir,
            input or {source.name: source.input for source in sources},
            manifest.input_records(inputs),
            cfg,
            workers,
            str(out),
            [{"path": str(q.path), "fingerprint": q.fingerprint, "reason": q.reason} for q in quarantined],
        )
        result = record()
        with executors(workers, cfg.dask_address, cfg.dask_worker_timeout_s, tell, store) as pool:
            for stage in wanted if inputs else []:
                # Without heartbeats of their own: Prefect's heartbeat thread sleeps in whole
                # seconds and a flow run waits for it as it ends (~1 s of every stage, a third of
                # a small build). The build's own run keeps its heartbeats: it is the one that a
                # crash would leave running.
                with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
                    summary = stage_flow(stage, pool)(build_dir, inputs, cfg, sources)
                # After every stage, so that an interrupted build still has a current manifest
                # (and, at a URL, loses at most the stage in flight). With a cluster, at the
                # build's own URL even in a scheduled build's copy (pushed with its root after
                # the build): the workers' steps read the summaries and the manifest there.
                result = record()
                remote.push(out if store is None else store.url, build_dir)
                if summary is not None:
                    log_stage(stage, summary)
        if store is not None:  # the report was written on a worker: what this run and the CLI show of it
            store.fetch("report/stats.json", "report/report.html")
        publish_artifacts(build_dir, result)
    return result


def checked_inputs(sources: list[SourceConfig], build_dir: Path, quarantine: bool) -> tuple[list[InputShard], list]:
    """Every source's input shards, and with `quarantine` the files set aside, each said in the
    run's log."""
    given = [(source.name, source.input) for source in sources]
    if not quarantine:
        return prepare_sources(given, build_dir / "input"), []
    inputs, quarantined = prepare_sources_quarantining(given, build_dir / "input")
    for bad in quarantined:
        get_run_logger().warning("quarantined: %s", bad.reason)
    if not inputs:
        get_run_logger().warning("every input file is quarantined: nothing to build")
    return inputs, quarantined


def tell(text: str) -> None:
    """Something the person waiting on a build should know: in the run's log and under the bars."""
    get_run_logger().warning(text)
    progress.hook.note(text)


def run_identity() -> dict:
    """The run an operator knows this one by, for the lock's owner record and status.json: its
    root run (the scheduled firing a build is a sub-flow of, the one `corpus runs` lists and
    `corpus cancel` takes), with its name, id and UI address."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run
    from prefect.utilities.urls import url_for

    run_id, name = flow_run.id, flow_run.name
    if flow_run.root_flow_run_id not in (None, run_id):
        try:
            with get_client(sync_client=True) as client:
                root = client.read_flow_run(flow_run.root_flow_run_id)
            run_id, name = str(root.id), root.name
        except Exception:  # no API to ask: this run's own name still finds it in the UI
            pass
    return {"run": name, "run_id": run_id, "url": url_for("flow-run", obj_id=run_id) or ""}


@contextmanager
def outcome_recorded(build_dir: Path, out: str, run: dict) -> Iterator[None]:
    """status.json says how the build ended (pipeline/status.py): done, failed with its one-line
    error, cancelled, or interrupted."""
    try:
        yield
    except Exception as exc:
        status.write(build_dir, "failed", error=one_line(exc), **run)
        raise
    except BaseException:  # a signal: the run was cancelled, or its process is being stopped
        status.write(build_dir, stop_state(), **run)
        raise
    status.write(build_dir, "done", **run)
    remote.push(out, build_dir)


def one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text if isinstance(exc, InputError | BuildError) else f"{type(exc).__name__}: {text}"


def stop_state() -> str:
    """`cancelled` when someone cancelled the run (its root run is Cancelling in the API), else
    `interrupted` (`corpus serve` stopping, Ctrl-C): the difference decides whether the
    scheduler resumes the build by itself (pipeline/incremental.py)."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run.root_flow_run_id).state
    except Exception:  # no API to ask (it is going down too): not known to be a cancellation
        return "interrupted"
    return "cancelled" if state is not None and (state.is_cancelling() or state.is_cancelled()) else "interrupted"
