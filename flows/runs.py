"""Flow runs on the Prefect API, for operators: start one of a served deployment, watch it, list
runs, cancel one. The CLI (`corpus run-deployment`, `corpus runs`, `corpus cancel`) prints;
everything that asks the API is here, and every refusal is an `InputError` of one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterName,
    FlowRunFilterParentTaskRunId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import DeploymentStatus, FlowRun, StateType
from prefect.client.schemas.responses import DeploymentResponse
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.states import Cancelled, Cancelling
from prefect.utilities.urls import url_for

from flows.serve import full_names
from pipeline.config import BuildConfig
from pipeline.errors import InputError
from pipeline.stages import registry

POLL_S = 2.0


def run_url(run: FlowRun) -> str:
    return url_for("flow-run", obj_id=run.id) or ""


def deployment(name: str) -> DeploymentResponse:
    """A served deployment by its short name (`corpus-build`, `build`, a stage) or FLOW/DEPLOYMENT."""
    names = full_names()
    full_name = names.get(name, name)
    if "/" not in full_name:
        raise InputError(f"{name}: no such deployment. Choose from {', '.join(names)} or pass FLOW/DEPLOYMENT.")
    with get_client(sync_client=True) as client:
        try:
            return client.read_deployment_by_name(full_name)
        except ObjectNotFound:
            raise InputError(f"{name}: no such deployment on the API. Is `corpus serve` running against it?") from None


def check_parameters(target: DeploymentResponse, parameters: dict[str, Any]) -> None:
    """Refuse before a run exists what the run could not start with, or would do nothing with: a
    required parameter missing, one the flow does not take, a stage that does not exist."""
    schema = target.parameter_openapi_schema or {}
    known = schema.get("properties", {})
    unknown = [key for key in parameters if key not in known]
    if unknown:
        raise InputError(f"--param {unknown[0]}: {target.name} takes no such parameter; it takes {', '.join(known)}.")
    given = target.parameters | parameters
    missing = [key for key in schema.get("required", []) if given.get(key) is None]
    if missing:
        raise InputError(f"{target.name}: parameter {missing[0]!r} is required: pass --param {missing[0]}=VALUE.")
    stages = given.get("stages")
    if stages is None:
        return
    if not isinstance(stages, list) or not stages:
        raise InputError(f"--param stages={stages!r}: expected a list of stages, e.g. --param stages=[quality,dedup].")
    try:
        BuildConfig.model_validate(given.get("config") or {})  # imports its plugins, whose stages may be named
        for stage in stages:
            registry.get(stage)
    except InputError as exc:
        raise InputError(f"--param stages: {exc}") from None


def start(target: DeploymentResponse, parameters: dict[str, Any]) -> FlowRun:
    with get_client(sync_client=True) as client:
        try:
            return client.create_flow_run_from_deployment(target.id, parameters=parameters)
        except PrefectHTTPStatusError as exc:  # what the checks above did not foresee: the server's reason
            detail = exc.response.json().get("detail", str(exc)) if exc.response.content else str(exc)
            raise InputError(f"{target.name}: the API refused the run: {detail}") from None


def watch(
    run: FlowRun, served: bool, start_timeout_s: float, on_state: Callable[[FlowRun], None], warn: Callable[[str], None]
) -> FlowRun:
    """Poll the run until it ends; `on_state` at each new state. A run nothing picks up (no
    `corpus serve` polls its deployment) is warned about, and after `start_timeout_s` cancelled,
    so that it does not start by surprise later."""
    if not served:
        warn(
            f"no `corpus serve` polls this deployment now; the run starts only when one does (waiting {start_timeout_s:.0f} s)"
        )
    created, seen, warned = time.monotonic(), None, not served
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(run.id)
            if run.state_name != seen:
                seen = run.state_name
                on_state(run)
            if run.state is not None and run.state.is_final():
                return run
            waiting = time.monotonic() - created
            if run.state_type == StateType.SCHEDULED:
                if not warned and waiting > min(20.0, start_timeout_s / 2):
                    warn(f"not started after {waiting:.0f} s: is `corpus serve` running against this API?")
                    warned = True
                if waiting > start_timeout_s:
                    client.set_flow_run_state(
                        run.id, Cancelled(message=f"not started within {start_timeout_s:.0f} s"), force=True
                    )
                    raise TimeoutError(
                        f"flow run {run.name} did not start within {start_timeout_s:.0f} s: nothing serves its "
                        "deployment (start `corpus serve`). The run is cancelled."
                    )
            time.sleep(POLL_S)


def is_served(target: DeploymentResponse) -> bool:
    """Whether a `corpus serve` polls the deployment: a stopped one pauses its deployments."""
    return target.status == DeploymentStatus.READY and not target.paused


def recent(limit: int, states: list[str], subflows: bool = False) -> list[tuple[FlowRun, str]]:
    """The latest flow runs due by now (newest first; a cron schedules runs ahead, and those
    are not news), each with its flow's name. `states`: Prefect state types (running, failed...);
    `subflows`: the runs inside others too (a scheduled run's corpus_build, its stages)."""
    try:
        wanted = [StateType(state.upper()) for state in states]
    except ValueError:
        raise InputError(f"--state {states}: choose from {', '.join(t.value.lower() for t in StateType)}.") from None
    flow_filter = FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(before_=datetime.now(UTC)))
    if wanted:
        flow_filter.state = FlowRunFilterState(type=FlowRunFilterStateType(any_=wanted))
    if not subflows:
        flow_filter.parent_task_run_id = FlowRunFilterParentTaskRunId(is_null_=True)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=flow_filter, sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=limit
        )
        flows = {flow.id: flow.name for flow in client.read_flows()}
    return [(run, flows.get(run.flow_id, "?")) for run in runs]


def find(name_or_id: str) -> FlowRun:
    with get_client(sync_client=True) as client:
        try:
            return client.read_flow_run(UUID(name_or_id))
        except (ValueError, ObjectNotFound):
            pass
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name_or_id])))
    if not runs:
        raise InputError(f"{name_or_id}: no such flow run (pass its name or id; `corpus runs` lists them).")
    return runs[0]


def cancel(name_or_id: str) -> tuple[FlowRun, FlowRun]:
    """Ask for the run's cancellation; a sub-flow's is its root run's (the process `corpus serve`
    stops is the root's). Returns (the run named, the run cancelled)."""
    named = run = find(name_or_id)
    with get_client(sync_client=True) as client:
        while run.parent_task_run_id is not None:
            run = client.read_flow_run(client.read_task_run(run.parent_task_run_id).flow_run_id)
        if run.state is not None and run.state.is_final():
            raise InputError(f"flow run {run.name} has already ended ({run.state_name}); nothing to cancel.")
        if run.deployment_id is None:
            raise InputError(
                f"flow run {run.name} was not started from a deployment, so no `corpus serve` can stop it: "
                "interrupt its `corpus build` (Ctrl-C) instead."
            )
        if run.state_type == StateType.SCHEDULED:  # no process yet: nothing to stop
            client.set_flow_run_state(run.id, Cancelled(message="cancelled with `corpus cancel`"), force=True)
        else:  # `corpus serve` sees it, stops the run's process and marks it Cancelled
            client.set_flow_run_state(run.id, Cancelling(message="cancelled with `corpus cancel`"), force=True)
    return named, run
