"""What became of a build, for operators: `BUILD_DIR/status.json`, read by `corpus status` and
by the scheduler.

The build flow writes it when a build starts (`running`) and when it ends: `done`, `failed`
(with the one-line error), `cancelled` (someone cancelled its run) or `interrupted` (its process
was stopped, e.g. with `corpus serve`; a rerun resumes). A build whose record says running while
no process holds its lock was killed without a word, so it reads as interrupted.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.lock import is_held, owner_of
from pipeline.shards import write_json
from pipeline.stages import registry

STATUS = "status.json"
PLAN = "scheduled.json"  # a scheduled build's plan (pipeline/incremental.py)


def write(build_dir: Path, state: str, **fields: object) -> None:
    record = {"state": state, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")} | fields
    write_json(record, Path(build_dir) / STATUS)


def read(build_dir: Path) -> dict:
    try:
        return json.loads((Path(build_dir) / STATUS).read_text())
    except (OSError, ValueError):
        return {}


@dataclass(frozen=True)
class BuildView:
    """One line of `corpus status`."""

    path: Path
    state: str
    stages: list[str]  # finished, in build order
    docs_in: int | None
    docs_out: int | None  # left after the last finished filter stage
    quarantined: list[dict]
    note: str  # the last error, or who is building it
    at: str  # when the state was reached


def describe(build_dir: Path) -> BuildView:
    build_dir = Path(build_dir)
    record = read(build_dir)
    state, note = record.get("state", ""), record.get("error", "")
    manifest = _json(build_dir / "manifest.json")
    plan = _json(build_dir / PLAN)
    if is_held(build_dir):
        owner = owner_of(build_dir)
        state, note = (
            "running",
            f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}"
            + (f", run {owner['run']}" if owner.get("run") else ""),
        )
    elif state == "running":
        state, note = "interrupted", "its process ended without a word (killed); a rerun resumes it"
    elif not state:  # built before status records existed, or planned and never started
        state = "done" if plan.get("finished") else ("planned" if plan else "unknown")
    if plan.get("finished") and state != "running":
        state = "done"
    # From the manifest (whose keys are sorted), in build order; a plugin's stage that is not
    # registered in this process goes last.
    order = registry.names()
    done = dict(
        sorted(manifest.get("stages", {}).items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
    )
    kept = [entry["docs_kept"] for entry in done.values() if "docs_kept" in entry]
    docs_in = sum(s["docs"] for s in manifest.get("input_shards", [])) if manifest else None
    return BuildView(
        path=build_dir,
        state=state,
        stages=list(done),
        docs_in=docs_in,
        docs_out=kept[-1] if kept else None,
        quarantined=manifest.get("quarantined", []),
        note=note,
        at=record.get("at", ""),
    )


def builds_under(root: Path) -> list[Path]:
    """ROOT itself when it is a build, else the builds in it and one level further down
    (a service root's build-NNNN, a folder of ad-hoc builds)."""
    root = Path(root)
    if _is_build(root):
        return [root]
    found = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if _is_build(child):
            found.append(child)
        else:
            found += sorted(p for p in child.iterdir() if p.is_dir() and _is_build(p))
    return found


def _is_build(folder: Path) -> bool:
    return any((folder / name).exists() for name in (STATUS, "manifest.json", PLAN))


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
