"""`corpus serve`: the deployments a long-running worker serves, served until it is stopped.

- `corpus-build`: the scheduled, incremental build (flows/scheduled.py) on `service.cron`, over
  `service.input` (or each of `service.sources`) into `service.out`.
- `build`: an ad-hoc `corpus_build`; pass `input` and `out` per run.
- one per registered stage (`quality`, `dedup`, ..., `report`): an ad-hoc `corpus_build` of
  that one stage (it reads the nearest earlier stage's output already in `out`).

Every deployment carries the served config as its `config` parameter. Runs execute in
subprocesses of the serving process, against whatever API it uses (PREFECT_API_URL, or the
embedded one). Starting, watching, listing and cancelling runs: flows/runs.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.runner import Runner

from flows.build import corpus_build
from flows.scheduled import scheduled_build
from pipeline.config import BuildConfig
from pipeline.stages import registry

SCHEDULED = "corpus-build"


def full_names() -> dict[str, str]:
    """Deployment name -> "flow/deployment", the name Prefect knows it by."""
    return {SCHEDULED: f"{scheduled_build.name}/{SCHEDULED}"} | {
        name: f"{corpus_build.name}/{name}" for name in ("build", *registry.names())
    }


def watched(cfg: BuildConfig) -> str:
    """Where the scheduled build looks for new shards, in words."""
    if not cfg.service.sources:
        return str(cfg.service.input)
    return ", ".join(f"{source.name} ({source.input})" for source in cfg.service.sources)


def deployments(cfg: BuildConfig) -> list[RunnerDeployment]:
    config = cfg.model_dump(mode="json")
    service = cfg.service
    # By module path, so that a run finds the flow wherever the package is installed (a container).
    by_module = dict(entrypoint_type=EntrypointType.MODULE_PATH)
    scheduled = scheduled_build.to_deployment(
        SCHEDULED,
        cron=service.cron,
        parameters={"input": service.input, "out": service.out, "config": config, "stages": service.stages or None},
        description=f"Incremental build of new shards in {watched(cfg)} into {service.out}/build-NNNN",
        **by_module,
    )
    adhoc = [
        corpus_build.to_deployment(
            name,
            parameters={"config": config, "stages": None if name == "build" else [name]},
            description="Ad-hoc build; pass input and out"
            if name == "build"
            else f"Ad-hoc {name} stage; pass input and out",
            **by_module,
        )
        for name in ("build", *registry.names())
    ]
    return [scheduled, *adhoc]


def serve(cfg: BuildConfig) -> None:
    """Serve every deployment until SIGTERM or SIGINT; then stop the runs in flight and mark them
    (see `_serve`). Returns once nothing it started is running."""
    asyncio.run(_serve(deployments(cfg)))


async def _serve(served: list[RunnerDeployment]) -> None:
    """Prefect's runner, stopped our way. Its own SIGTERM handler exits without stopping the runs
    (their processes and worker pools went on, shown as Running for ever); here a signal asks the
    runner to cancel every run it started (SIGTERM to the run's process, which kills its worker
    pool: flows/build.py; SIGKILL after 30 s) before it exits. The runs end Cancelled; a
    scheduled build stopped so reads as interrupted and the next firing resumes it."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def handle_signals() -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)

    handle_signals()  # a signal while the deployments register ends it here, before any run
    runner = Runner()  # pauses the schedules while nothing serves them: no firings pile up
    for deployment in served:
        await runner.aadd_deployment(deployment)
    if stop.is_set():
        return
    serving = asyncio.create_task(runner.start())
    await asyncio.sleep(0)  # start() sets Prefect's SIGTERM handler first thing; ours replace it
    handle_signals()
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if stop.is_set() and not runner.started:
        serving.cancel()
    elif stop.is_set():
        await runner.astop()
        # The runner fetches runs a few seconds before they are due: one fetched before the
        # signal can start after astop() cancelled the runs in flight (while the runner pauses
        # the schedules on its way out), and the runner would wait for its whole build (the
        # soak saw it). Cancel again until nothing it started is left.
        while not serving.done():
            await runner.cancel_all()
            await asyncio.wait({serving}, timeout=1)
    stopping.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving
