"""Worker processes that start warm: forked from a server that loaded the build's stages once.

A spawned worker is a fresh interpreter: ~1 s to start, then on its first job of each stage it
imports that stage's libraries and loads its models and tables (dedup: datasketch and scipy
0.4 s, its code-point tables 0.35 s; quality: lingua's trigram models 0.3 s; privacy: presidio
and spaCy 2.6 s). Every worker pays that, all at the same time, so on a corpus of a few MB a
second worker gains little. Python's fork server does it once, in its own process, started
when the command starts (beside the input checks and Prefect's start-up, on a core idle then),
and forks each worker from it: a worker is ready in milliseconds with all of it loaded, in
pages it shares with the others (so its resident memory counts them).

The server takes module names only: the stages' warm-ups (`Stage.warm`) reach it in an
environment variable, which this module reads when the server imports it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Iterable
from multiprocessing import forkserver
from multiprocessing.context import BaseContext

from pipeline.stage import Ref, Stage

WARM_UPS = "CORPUS_FORK_SERVER_WARM_UPS"  # comma-separated "module:function" of Stage.warm
# What every worker imports, whatever the stages: the flow's module (a worker runs the command's
# main module again, and ours import it), the job runner and the build-step wrapper.
ALWAYS = ("flows.build", "pipeline.jobs", "pipeline.tasks")


def stage_modules(stages: Iterable[Stage]) -> list[str]:
    """The modules of the steps that run in workers, in the order the build runs them."""
    modules = [
        step.run.target.partition(":")[0] for stage in stages for step in stage.steps if isinstance(step.run, Ref)
    ]
    return list(dict.fromkeys([*ALWAYS, *modules]))


def start(stages: Iterable[Stage]) -> None:
    """Start the fork server now, loading `stages`' modules and warm-ups in its own process while
    this one goes on (the first worker waits for them). Once per process: the server outlives a
    build, and a later build's other stages are loaded by its workers themselves."""
    stages = list(stages)
    # Not the command's main module itself: a worker runs it again (as multiprocessing does, for
    # functions defined there), and runpy warns when it was imported before. What ours import
    # is here (flows.build), which leaves them ~60 ms to do.
    context().set_forkserver_preload([*stage_modules(stages), __name__])
    warm_ups = ",".join(ref.target for stage in stages for ref in stage.warm)
    os.environ[WARM_UPS] = warm_ups  # the server is started with this process's environment
    try:
        forkserver.ensure_running()
    finally:
        del os.environ[WARM_UPS]


def context() -> BaseContext:
    """Fork from the server: not from this process, whose Prefect threads a fork would copy
    half-way through what they do."""
    return multiprocessing.get_context("forkserver")


def adopt_environment(environment: dict[str, str]) -> None:
    """A pool's initializer: the environment of the process that made the pool, as a spawned
    worker would have it (a forked one has the server's, from when it started)."""
    os.environ.clear()
    os.environ.update(environment)


def _warm_up() -> None:
    """In the fork server (the only process started with WARM_UPS set): the stages' warm-ups.
    One that fails is left to the workers' first jobs, which meet its error where it is reported."""
    for target in filter(None, os.environ.pop(WARM_UPS, "").split(",")):
        with contextlib.suppress(Exception):
            Ref(target)()


_warm_up()
