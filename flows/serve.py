"""`corpus serve`: the deployments a long-running worker serves (Prefect's `serve`), and starting
their runs by name.

- `corpus-build`: the scheduled, incremental build (flows/scheduled.py) on `service.cron`, over
  `service.input` into `service.out`.
- `build`: an ad-hoc `corpus_build`; pass `input` and `out` per run.
- one per registered stage (`quality`, `dedup`, ..., `report`): an ad-hoc `corpus_build` of
  that one stage (it reads the nearest earlier stage's output already in `out`).

Every deployment carries the served config as its `config` parameter. Runs execute in
subprocesses of the serving process, against whatever API it uses (PREFECT_API_URL, or the
embedded one).
"""

from __future__ import annotations

from typing import Any

from prefect import serve as prefect_serve
from prefect.deployments import run_deployment
from prefect.deployments.runner import EntrypointType, RunnerDeployment

from flows.build import corpus_build
from flows.scheduled import scheduled_build
from pipeline.config import BuildConfig
from pipeline.errors import InputError
from pipeline.stages import registry

SCHEDULED = "corpus-build"


def full_names() -> dict[str, str]:
    """Deployment name -> "flow/deployment", the name Prefect knows it by."""
    return {SCHEDULED: f"{scheduled_build.name}/{SCHEDULED}"} | {
        name: f"{corpus_build.name}/{name}" for name in ("build", *registry.names())
    }


def deployments(cfg: BuildConfig) -> list[RunnerDeployment]:
    config = cfg.model_dump(mode="json")
    service = cfg.service
    # By module path, so that a run finds the flow wherever the package is installed (a container).
    by_module = dict(entrypoint_type=EntrypointType.MODULE_PATH)
    scheduled = scheduled_build.to_deployment(
        SCHEDULED,
        cron=service.cron,
        parameters={"input": service.input, "out": service.out, "config": config, "stages": service.stages or None},
        description=f"Incremental build of new shards in {service.input} into {service.out}/build-NNNN",
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
    """Serve every deployment until interrupted."""
    prefect_serve(*deployments(cfg))


def start_run(name: str, parameters: dict[str, Any], wait: bool):
    """Start a run of a served deployment (short or full name); with `wait`, return once it ended."""
    names = full_names()
    full_name = names.get(name, name)
    if "/" not in full_name:
        raise InputError(f"{name}: no such deployment. Choose from {', '.join(names)} or pass FLOW/DEPLOYMENT.")
    # timeout=0 returns as soon as the run is created; None polls until it ends.
    return run_deployment(full_name, parameters=parameters, timeout=None if wait else 0, poll_interval=2)
