"""The scheduled build: new input shards only, deduplicated against what earlier builds kept.

Each run builds `OUT/build-NNNN` from the shards of `input` that no finished build took
(pipeline/incremental.py), with `dedup.index` at `OUT/dedup-index` unless the config names one,
so a document an earlier build published is removed as `duplicate_of_earlier_build`. A run that
finds nothing new ends at once and says so. An `out` URL (`s3://...`) is worked on in a local
copy of the whole root (pipeline/remote.py), pulled before planning and pushed after the build.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.build import corpus_build
from pipeline import incremental, remote
from pipeline.config import BuildConfig
from pipeline.lock import build_lock


@flow(name="corpus_scheduled_build")
def scheduled_build(
    input: str,
    out: str,
    config: dict[str, Any] | None = None,
    stages: list[str] | None = None,
    workers: int = 0,
) -> dict:
    """Build the input shards that are new since the last build, into OUT/build-NNNN."""
    logger = get_run_logger()
    cfg = BuildConfig.model_validate(config or {})
    root = remote.working_dir(out)  # `out`, or the local working copy of a URL (the whole root)
    if not cfg.dedup.index:
        cfg.dedup.index = str(root / "dedup-index")
    with build_lock(root):  # two runs must not plan the same build
        remote.pull(out, root)  # earlier builds, their index and finished marks
        plan = incremental.next_build(input, root)
        if plan is None:
            logger.info("no new input in %s since the last build; nothing to build", input)
            return {"status": "no new input", "input": input}
        what = "resuming the unfinished" if plan.resumed else f"{len(plan.inputs)} new shard(s) into"
        logger.info("%s %s", what, plan.build_dir)
        manifest = corpus_build(plan.inputs, str(plan.build_dir), cfg.model_dump(mode="json"), stages, workers)
        incremental.mark_finished(plan)
        remote.push(out, root)  # a failed build stays in the working copy; a rerun here resumes it
    return {
        "status": "built",
        "build_dir": str(plan.build_dir),
        "inputs": plan.inputs,
        "resumed": plan.resumed,
        "conservation": manifest["conservation"],
    }
