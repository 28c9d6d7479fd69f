"""Per-shard work on a Dask cluster: the shard jobs go to its workers as plain function calls.

Why Dask futures under Prefect tasks, and not prefect-dask's DaskTaskRunner: with the task
runner, each Prefect task (its state changes, logs, retries) would run on a Dask worker, so every
worker would need Prefect, a route to the API and, without a server, its own temporary API. Here
the Prefect tasks stay in the flow process (one per shard, visible in the UI, ~20-40 ms each)
and each hands `pipeline.jobs.run_job(job)` to the cluster through a `concurrent.futures`
executor, the same interface as the local process pool. Workers need only the `corpus` package
and the build directory at the same path (shared storage); they never talk to Prefect.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager

from pipeline.errors import InputError

CONNECT_TIMEOUT_S = 30


@contextmanager
def dask_executor(address: str) -> Iterator[tuple[Executor, int]]:
    """An executor on the cluster at `address` and how many jobs its workers run at once."""
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise InputError(
            f"--dask-address {address}: cannot reach a Dask scheduler ({exc}). "
            "Check the address (tcp://HOST:PORT) and that the scheduler is up."
        ) from None
    with client:
        slots = sum(client.nthreads().values())
        if not slots:
            raise InputError(
                f"--dask-address {address}: the cluster has no workers. Start some (dask worker {address})."
            )
        # pure=False: Dask would otherwise treat two submissions with equal arguments as one result.
        yield client.get_executor(pure=False), slots
