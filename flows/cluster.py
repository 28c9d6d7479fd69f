"""Per-shard work on a Dask cluster: the shard jobs go to its workers as plain function calls.

Why Dask futures under Prefect tasks, and not prefect-dask's DaskTaskRunner: with the task
runner, each Prefect task (its state changes, logs, retries) would run on a Dask worker, so every
worker would need Prefect, a route to the API and, without a server, its own temporary API. Here
the Prefect tasks stay in the flow process (one per shard, visible in the UI, ~20-40 ms each)
and each hands `pipeline.jobs.run_job(job)` to the cluster and waits for it. Workers need only
the `corpus` package and the build directory at the same path (shared storage); they never talk
to Prefect. A build at a URL (`--out s3://...`) needs no shared storage: its jobs go as
`pipeline.remote_jobs.run_at_url` and its build-wide steps as
`pipeline.remote_steps.run_step_at_url`, which read and write the build there, and the flow
gets back only their records.

The wait is watched: Dask itself would wait for ever when every worker is gone, so while none is
there the build says so (`note`) and fails after `dask_worker_timeout_s`; and a shard whose job
(or a build step that) kills worker after worker (Dask's KilledWorker) fails the build naming
the shard (or the step), not the task.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import BuildError, InputError
from pipeline.jobs import ShardJob, run_job
from pipeline.remote_jobs import BuildStore, align_at_url, run_at_url
from pipeline.remote_steps import run_step_at_url, url_step
from pipeline.stage import BuildContext
from pipeline.steps import align_schemas

CONNECT_TIMEOUT_S = 30
POLL_S = 2.0  # how often a waiting shard task looks at the cluster
TASK_POLL_S = 0.1  # how often a build step waiting on its tasks looks (a step maps many short tasks)


class DaskShards:
    """Shard jobs on the cluster at `address`, `slots` of them at a time (its workers' threads)."""

    def __init__(
        self,
        client,
        address: str,
        worker_timeout_s: float,
        note: Callable[[str], None],
        store: BuildStore | None = None,
    ):
        self.client = client
        self.store = store  # the build at its URL, when the workers read and write it there
        self.address = address
        self.worker_timeout_s = worker_timeout_s
        self.note = note
        self.slots = sum(client.nthreads().values())
        self._lock = threading.Lock()
        self._checked = 0.0
        self._lost_since: float | None = None
        self._failure: BuildError | None = None

    def run(self, job: ShardJob) -> dict:
        from distributed import KilledWorker

        # A build at a URL: the worker reads and writes it there itself (pipeline/remote_jobs.py).
        call = (run_job, job) if self.store is None else (run_at_url, self.store.job(job))
        try:
            # The key names the shard, so that the Dask dashboard does too.
            record = self.call(*call, key=f"{job.step.name}-{job.name}")
        except KilledWorker as exc:
            raise BuildError(
                f"{job.context.stage} on shard {job.name} ({job.input_path}): its job killed "
                f"{exc.allowed_failures + 1} Dask workers in a row, so the cluster gave up on it. Likely it needs "
                "more memory than a worker has: give the workers more (dask worker --memory-limit) or split the shard."
            ) from None
        return record if self.store is None else self.store.received(job, record)

    def call(self, fn: Callable, *args, key: str):
        """`fn(*args)` on a worker, waited for while the cluster is watched."""
        future = self.client.submit(fn, *args, pure=False, key=f"{key}-{uuid.uuid4().hex[:8]}")
        try:
            while True:
                try:
                    return future.result(timeout=POLL_S)
                except TimeoutError:
                    self._watch()
        except BaseException:
            future.cancel()  # nobody waits for it any more (the build failed or was stopped)
            raise

    def step(self, name: str, fn: Callable[[BuildContext], dict], ctx: BuildContext, summary: bool = False) -> dict:
        """A build step (or, `summary`, a stage's summary) on a worker, against the build at its
        URL (pipeline/remote_steps.py); its record back."""
        from distributed import KilledWorker

        try:
            return self.call(run_step_at_url, url_step(self.store, fn, ctx, summary), key=name)
        except KilledWorker as exc:
            raise BuildError(
                f"{name}: the build step killed {exc.allowed_failures + 1} Dask workers in a row, so the cluster gave "
                "up on it. Likely it needs more memory than a worker has: give the workers more (dask worker "
                "--memory-limit), and rerun: finished steps are kept."
            ) from None

    def align_schemas(self, folder: Path, shards: list[str]) -> None:
        """steps.align_schemas, on a worker at the build's URL when the build is there."""
        if self.store is None:
            align_schemas(folder, shards)
        else:
            self.store.hashes |= self.call(align_at_url, *self.store.aligned(folder, shards), key="align-schemas")

    def stop(self) -> None:
        """Make every waiting shard task give up within POLL_S (the build is being stopped)."""
        with self._lock:
            self._failure = self._failure or BuildError(f"--dask-address {self.address}: the build was stopped.")

    def _watch(self) -> None:
        """Raise the build's failure once the cluster has had no worker for too long; say when
        it loses its last worker and when one is back. One shard task looks per POLL_S."""
        with self._lock:
            if self._failure is None and time.monotonic() - self._checked >= POLL_S:
                self._checked = time.monotonic()
                self._look()
            if self._failure is not None:
                raise self._failure

    def _look(self) -> None:
        try:
            workers = len(self.client.nthreads())
        except OSError:  # the scheduler itself does not answer: no worker is reachable either
            workers = 0
        now = time.monotonic()
        if workers:
            if self._lost_since is not None:
                self.note(
                    f"Dask: {workers} worker(s) at {self.address} again after {now - self._lost_since:.0f} s; going on"
                )
            self._lost_since = None
        elif self._lost_since is None:
            self._lost_since = now
            self.note(
                f"Dask: no worker at {self.address}; the build waits for one and fails after "
                f"{self.worker_timeout_s:.0f} s (dask_worker_timeout_s)"
            )
        elif now - self._lost_since > self.worker_timeout_s:
            self._failure = BuildError(
                f"--dask-address {self.address}: no Dask worker for {now - self._lost_since:.0f} s "
                f"(dask_worker_timeout_s={self.worker_timeout_s:.0f}). Start workers (dask worker {self.address}) "
                "and rerun: finished shards are kept."
            )


@contextmanager
def dask_shards(
    address: str, worker_timeout_s: float, note: Callable[[str], None], store: BuildStore | None = None
) -> Iterator[DaskShards]:
    """The cluster at `address`, connected for the block; with `store`, for a build at a URL."""
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise InputError(
            f"--dask-address {address}: cannot reach a Dask scheduler ({exc}). "
            "Check the address (tcp://HOST:PORT) and that the scheduler is up."
        ) from None
    with client:
        shards = DaskShards(client, address, worker_timeout_s, note, store)
        if not shards.slots:
            raise InputError(
                f"--dask-address {address}: the cluster has no workers. Start some (dask worker {address})."
            )
        yield shards


@dataclass(frozen=True)
class DaskTasks:
    """A build step's tasks (pipeline/tasks.py) on the Dask cluster at `address`: the step's own
    process (on the flow's machine, or a worker for a build at a URL) connects and waits. A task
    lost with its worker is run again on another (Dask reschedules it; the tasks skip the outputs
    they find written); one that kills worker after worker, or a cluster left without workers for
    `worker_timeout_s`, fails the build in one line naming the step, and a rerun resumes from the
    tasks that finished."""

    address: str
    worker_timeout_s: float
    step: str

    @property
    def where(self) -> str:
        return self.address

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        from distributed import KilledWorker

        with cluster_client(self.address) as client:
            batch = uuid.uuid4().hex[:8]
            items = list(items)
            name = getattr(fn, "__name__", type(fn).__name__)
            keys = [f"{self.step}-{name}-{i}-{batch}" for i in range(len(items))]
            futures = client.map(fn, items, key=keys, pure=False)
            lost_since: float | None = None
            # Until all are done or one failed (gather then raises its error; the others are dropped below).
            while not all(future.done() for future in futures) and not any(f.status == "error" for f in futures):
                time.sleep(TASK_POLL_S)
                if client.nthreads():
                    lost_since = None
                elif lost_since is None:
                    lost_since = time.monotonic()
                elif time.monotonic() - lost_since > self.worker_timeout_s:
                    client.cancel(futures)
                    raise BuildError(
                        f"{self.step}: no Dask worker at {self.address} for {self.worker_timeout_s:.0f} s "
                        "(dask_worker_timeout_s). Start workers and rerun: its finished tasks are kept."
                    )
            try:
                return client.gather(futures)
            except KilledWorker as exc:
                raise BuildError(
                    f"{self.step}: its task {name} killed {exc.allowed_failures + 1} Dask workers in a row. "
                    "Likely it needs more memory than a worker has: give the workers more (dask worker "
                    "--memory-limit) or lower dedup.cluster_partition_rows, and rerun: its finished tasks are kept."
                ) from None
            finally:
                client.cancel(futures)  # those still queued, when one failed; the results are in hand


@contextmanager
def cluster_client(address: str) -> Iterator[Any]:
    """A client of the cluster at `address`: this process's own, or, in a task on one of its
    workers (a build step of a build at a URL), the worker's, with the task's thread handed back
    to the worker while it waits: a step holding the only thread its tasks could run on would
    wait for ever."""
    from distributed import Client, get_worker, worker_client

    try:
        get_worker()
    except ValueError:  # not on a worker
        with Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False) as client:
            yield client
        return
    with worker_client() as client:
        yield client
