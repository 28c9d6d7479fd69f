"""The scheduled build: new input shards only, deduplicated against what earlier builds kept.

Each run builds `OUT/build-NNNN` from the shards of `input` (or of each of `service.sources`)
that no earlier build took (pipeline/incremental.py), with `dedup.index` at `OUT/dedup-index` unless the config names one,
so a document an earlier build published is removed as `duplicate_of_earlier_build`. An `out` URL
(`s3://...`) is worked on in a local copy of the whole root (pipeline/remote.py), pulled before
planning and pushed after the build.

Operating rules (docs/service.md), so that a schedule can be left running:
- one build at a time per `out`: a run that finds one running ends at once as Skipped, or waits
  for it (`service.overlap`);
- a bad input file is quarantined (listed in the build's manifest and the run's log) and the
  rest is built;
- an unfinished build is resumed unless it was cancelled or failed with nothing changed since
  (held until `retry`); a run that finds nothing to do, or a held build, ends Completed named
  Skipped with the reason as its message, so that no Failed run alerts twice for one fault.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Completed, State

from flows.build import corpus_build, one_line, run_identity
from pipeline import incremental, remote, status
from pipeline.config import BuildConfig
from pipeline.lock import BuildRunning, build_lock


def skipped(message: str) -> State:
    """A run that had nothing to do, or must not do it now: not a failure, and says why."""
    get_run_logger().info("skipped: %s", message)
    return Completed(name="Skipped", message=message)


@flow(name="corpus_scheduled_build")
def scheduled_build(
    input: str,
    out: str,
    config: dict[str, Any] | None = None,
    stages: list[str] | None = None,
    workers: int = 0,
    retry: bool = False,
) -> dict | State:
    """Build the input shards that are new since the last build (in `input`, or in each of the
    config's `service.sources`), into OUT/build-NNNN; `retry` resumes an unfinished build that
    was cancelled or failed."""
    logger = get_run_logger()
    cfg = BuildConfig.model_validate(config or {})
    root = remote.working_dir(out)  # `out`, or the local working copy of a URL (the whole root)
    if not cfg.dedup.index:
        cfg.dedup.index = str(root / "dedup-index")
    run = run_identity()
    with ExitStack() as held:
        try:  # two runs must not plan (or build) at once
            held.enter_context(build_lock(root, about=run))
        except BuildRunning as running:
            owner = running.owner
            busy = f"a build into {out} is running (run {owner.get('run', '?')}, pid {owner.get('pid', '?')}, since {owner.get('started', '?')})"
            if cfg.service.overlap == "skip":
                return skipped(f"{busy}; this run ends here (service.overlap: skip)")
            logger.info("%s; waiting for it to end (service.overlap: wait)", busy)
            held.enter_context(build_lock(root, wait=True, about=run))
        plan = None
        try:
            remote.pull(out, root)  # earlier builds, their index and finished marks
            settings = json.dumps([cfg.model_dump(mode="json"), stages], sort_keys=True)
            plan = incremental.next_build(cfg.service.inputs(input), root, settings, retry)
            if isinstance(plan, incremental.Plan):
                counts = ", ".join(f"{name} {len(paths)}" for name, paths in plan.sources.items())
                what = "resuming the unfinished" if plan.resumed else f"new shard(s) ({counts}) into"
                logger.info("%s %s", what, plan.build_dir)
                build_input, build_config = incremental.build_input(cfg, plan)
                manifest = corpus_build(
                    build_input, str(plan.build_dir), build_config, stages, workers, quarantine=True
                )
                incremental.mark_finished(plan)
                remote.push(out, root)  # a failed build stays in the working copy; a rerun here resumes it
        except Exception as exc:
            reason = one_line(exc)
            # A build's own failure is in its status.json, and the build is held from then on. A
            # fault before or around it (the input folder gone, the bucket unreachable, the build's
            # folder taken) is reported once: the same fault again ends the run as Skipped.
            if not (isinstance(plan, incremental.Plan) and status.read(plan.build_dir).get("error") == reason):
                if (last := incremental.repeated_failure(root, reason)) is not None:
                    return skipped(f"still failing as at {last['at']} (run {last['run']}): {reason}")
                incremental.record_failure(root, reason, run["run"])
            raise
        if isinstance(plan, incremental.Held):
            return skipped(plan.reason)
        incremental.clear_failure(root)
        if plan is None:
            where = ", ".join(map(str, cfg.service.inputs(input).values()))
            logger.info("no new input in %s since the last build; nothing to build", where)
            return {"status": "no new input", "input": where}
    return {
        "status": "built",
        "build_dir": str(plan.build_dir),
        "inputs": plan.inputs,
        "sources": plan.sources,
        "quarantined": [entry["path"] for entry in manifest["quarantined"]],
        "resumed": plan.resumed,
        "conservation": manifest["conservation"],
    }
