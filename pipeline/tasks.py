"""Where a build-wide step's tasks run, and what the step cost.

A build step that splits its work into independent tasks (the dedup clustering,
pipeline/dedup/distributed.py) hands them to `BuildContext.tasks`: `map(fn, items)` runs
`fn(item)` for each item and returns the results in order, and `where` names the place for the
manifest. Here: a local process pool. flows/cluster.py's `DaskTasks` runs them on the build's
Dask cluster, whose workers reach the build's folder, or its URL (`BuildContext.shared`). A step
of a build at a URL runs on a Dask worker (pipeline/remote_steps.py), which cannot start a
process pool (it is a daemonic process): its tasks always go to the cluster. `measured` runs a
step and adds to its record where it ran, its wall time and the peak memory of the process that
ran it.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import psutil

SAMPLE_S = 0.05  # how often `measured` looks at the process's memory


@dataclass(frozen=True)
class LocalTasks:
    """Tasks in `workers` fresh processes of this machine (spawned: no inherited threads)."""

    workers: int = 1
    where: str = "local"

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        items = list(items)
        if self.workers <= 1 or len(items) <= 1:
            return [fn(item) for item in items]
        with ProcessPoolExecutor(min(self.workers, len(items)), multiprocessing.get_context("spawn")) as pool:
            return list(pool.map(fn, items))


def measured(fn: Callable[..., dict], *args: Any) -> dict:
    """fn(*args)'s record with `ran_on` ("local" unless the step says where), `wall_s` and
    `peak_rss_bytes`: the highest resident memory of this process while it ran, sampled, so a
    reused process's earlier peaks do not count."""
    process = psutil.Process()
    peak = process.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(SAMPLE_S):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        record = fn(*args)
    finally:
        done.set()
        sampler.join()
    peak = max(peak, process.memory_info().rss)
    return {"ran_on": "local"} | record | {"wall_s": round(time.perf_counter() - start, 3), "peak_rss_bytes": peak}
