"""Scheduled builds over a growing input: each build takes only the shards no earlier build took.

    SERVICE_OUT/
      build-0001/ build-0002/ ...   ordinary build directories, each with a `scheduled.json`
      dedup-index/                  what earlier builds kept (pipeline/dedup/index.py)
      input-cache/                  local copies of URL input (pipeline/storage.py)

`scheduled.json` holds the build's input files with their fingerprints, written before the build
starts and marked finished after it ends. A shard is new when its fingerprint is in no finished
build. A build that did not finish (killed, failed) is planned again with its own inputs before
anything new is taken, so it resumes to the outputs it would have had.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.shards import find_input_files, fingerprint, write_json

PLAN = "scheduled.json"


@dataclass(frozen=True)
class Plan:
    build_dir: Path
    inputs: list[str]  # local paths of the input files
    resumed: bool  # an unfinished build planned again


def next_build(input_spec: str, out: Path) -> Plan | None:
    """The next build to run, or None when the input holds nothing that a finished build took."""
    builds = sorted(out.glob("build-[0-9][0-9][0-9][0-9]"))
    plans = [(b, json.loads((b / PLAN).read_text())) for b in builds if (b / PLAN).exists()]
    if plans and not plans[-1][1]["finished"]:
        last, plan = plans[-1]
        return Plan(last, [entry["path"] for entry in plan["inputs"]], resumed=True)
    taken = {entry["fingerprint"] for _, plan in plans for entry in plan["inputs"]}
    files = [(path, fingerprint(path)) for path in find_input_files(input_spec, out / "input-cache")]
    new = [(path, fp) for path, fp in files if fp not in taken]
    if not new:
        return None
    number = int(builds[-1].name.removeprefix("build-")) + 1 if builds else 1
    build_dir = out / f"build-{number:04d}"
    inputs = [{"path": str(path), "fingerprint": fp} for path, fp in new]
    write_json({"input": input_spec, "inputs": inputs, "finished": False}, build_dir / PLAN)
    return Plan(build_dir, [entry["path"] for entry in inputs], resumed=False)


def mark_finished(plan: Plan) -> None:
    record = json.loads((plan.build_dir / PLAN).read_text())
    write_json(record | {"finished": True}, plan.build_dir / PLAN)
