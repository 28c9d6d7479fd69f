"""Scheduled builds over a growing input: each build takes only the shards no earlier build took.

The input is one folder (`service.input`) or several named sources (`service.sources`), each
watched for its own new files: a build holds the sources that have new files, each with just
those (`build_input`), so a new shard in one source rebuilds only that source's new documents,
and the build-wide steps (dedup's clustering against the index of earlier builds, the tokenizer,
the mixture) run over what the build holds.

    SERVICE_OUT/
      build-0001/ build-0002/ ...   ordinary build directories, each with a `scheduled.json`
      dedup-index/                  what earlier builds kept (pipeline/dedup/index.py)
      input-cache/                  local copies of URL input (pipeline/storage.py)
      last-failure.json             the last firing that failed before it reached a build

`scheduled.json` holds the build's input files with their sources and fingerprints, written before
the build starts and marked finished after it ends. A file is new when its fingerprint is in no
build's plan for its source, so a file that a build quarantined (bad input: listed in its manifest, the rest built) is
not taken again until its bytes change.

An unfinished last build comes before anything new, by what became of it (pipeline/status.py):
- interrupted (killed, `corpus serve` stopped): resumed with its own inputs, to the outputs it
  would have had. A file removed from the input since is dropped from its plan, and the build
  starts again from the rest, so that no output of the removed file lingers among its shards.
- cancelled: held. A cancelled build is resumed only when a run asks to `retry` it.
- failed: held while nothing it depends on has changed (its input files' bytes, the config and
  stages, the corpus version): trying again would fail the same way. Resumed once something
  has, or when a run asks to `retry`.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline import status
from pipeline.config import BuildConfig
from pipeline.errors import InputError
from pipeline.lock import LOCK_NAME
from pipeline.shards import combined_fingerprint, fingerprint, source_files, write_json
from pipeline.sources import INPUT_SOURCE

PLAN = status.PLAN
FAILURE = "last-failure.json"
RETRY_HINT = "`corpus run-deployment corpus-build --param retry=true`"


@dataclass(frozen=True)
class Plan:
    build_dir: Path
    sources: dict[str, list[str]]  # each source with files in this build: their local paths
    resumed: bool  # an unfinished build planned again

    @property
    def inputs(self) -> list[str]:
        return [path for paths in self.sources.values() for path in paths]


@dataclass(frozen=True)
class Held:
    """The unfinished last build is not resumed by this run, and why."""

    build_dir: Path
    reason: str


def next_build(
    input_spec: str | dict[str, Any], out: Path, settings: str = "", retry: bool = False
) -> Plan | Held | None:
    """The next build to run, None when no source holds a file that no build took, or `Held`
    when the unfinished last build waits for an operator. `input_spec`: one input, or source name
    -> input. `settings` stands for the config and stages the build would run with (a failed
    build is held while they are unchanged)."""
    given = input_spec if isinstance(input_spec, dict) else {INPUT_SOURCE: input_spec}
    builds = sorted(out.glob("build-[0-9][0-9][0-9][0-9]"))
    plans = [(b, json.loads((b / PLAN).read_text())) for b in builds if (b / PLAN).exists()]
    if plans and not plans[-1][1]["finished"]:
        again = _unfinished(*plans[-1], settings, retry)
        if again is not None:
            return again
    taken = {(_source(entry), entry["fingerprint"]) for _, plan in plans for entry in plan["inputs"]}
    new = [
        {"source": name, "path": str(path), "fingerprint": fp}
        for name, spec in given.items()
        for path in _input_files(name, spec, out, len(given))
        if (name, fp := fingerprint(path)) not in taken
    ]
    if not new:
        return None
    number = int(builds[-1].name.removeprefix("build-")) + 1 if builds else 1
    build_dir = out / f"build-{number:04d}"
    record = {"input": input_spec, "inputs": new, "finished": False, "attempt": _attempt(new, settings)}
    write_json(record, build_dir / PLAN)
    return Plan(build_dir, _by_source(new), resumed=False)


def build_input(cfg: BuildConfig, plan: Plan) -> tuple[list[str] | None, dict]:
    """What `corpus_build` takes for a planned build: (input, config). With `service.sources`,
    the sources that have files in the plan, in their order, each with just those files as its
    input (`dedup.source_priority` keeps the ones present); else the files as the one input."""
    config = cfg.model_dump(mode="json")
    if not cfg.service.sources:
        return plan.inputs, config | {"sources": []}
    config["sources"] = [
        source.model_dump(mode="json") | {"input": plan.sources[source.name]}
        for source in cfg.service.sources
        if source.name in plan.sources
    ]
    dedup = config.get("dedup", {})
    if dedup.get("source_priority"):
        dedup["source_priority"] = [name for name in dedup["source_priority"] if name in plan.sources]
    return None, config


def _source(entry: dict) -> str:
    return entry.get("source", INPUT_SOURCE)  # plans written before sources had none: the one input


def _by_source(entries: list[dict]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for entry in entries:
        grouped.setdefault(_source(entry), []).append(entry["path"])
    return grouped


def _unfinished(build_dir: Path, plan: dict, settings: str, retry: bool) -> Plan | Held | None:
    """The unfinished last build again, held, or (every input gone) closed: None."""
    outcome = status.read(build_dir)
    # Its files as they are now: a removed one is dropped, a rewritten one has new bytes.
    present = [entry for entry in plan["inputs"] if Path(entry["path"]).exists()]
    inputs = [entry | {"fingerprint": fingerprint(Path(entry["path"]))} for entry in present]
    attempt = _attempt(inputs, settings)
    when = f"{outcome.get('at', '?')}" + (f", run {outcome['run']}" if outcome.get("run") else "")
    if not retry and outcome.get("state") == "cancelled":
        return Held(build_dir, f"{build_dir.name} was cancelled ({when}); it is resumed only when asked: {RETRY_HINT}.")
    if not retry and outcome.get("state") == "failed" and plan.get("attempt") == attempt:
        return Held(
            build_dir,
            f"{build_dir.name} failed ({when}): {outcome.get('error', '?')} Nothing it depends on has changed "
            f"since (input files, config, corpus version), so it is not tried again: fix the cause, then {RETRY_HINT}.",
        )
    dropped = sorted({entry["path"] for entry in plan["inputs"]} - {entry["path"] for entry in present})
    if dropped:
        _restart(build_dir)
    record = plan | {"inputs": inputs, "attempt": attempt, "dropped": plan.get("dropped", []) + dropped}
    if not inputs:  # nothing left to build: closed, so that new files go on
        write_json(record | {"finished": True}, build_dir / PLAN)
        return None
    write_json(record, build_dir / PLAN)
    return Plan(build_dir, _by_source(inputs), resumed=True)


def _input_files(name: str, spec: Any, out: Path, sources: int) -> list[Path]:
    """A source's files; an input folder that exists but holds none yet simply has nothing new."""
    try:
        return source_files(name, spec, out / "input-cache", sources)
    except InputError:
        if isinstance(spec, str) and Path(spec).is_dir():
            return []
        raise


def _attempt(inputs: list[dict], settings: str) -> str:
    """What a build attempt depends on: its files' bytes, the settings, the corpus version."""
    parts = [settings, metadata.version("corpus")] + [f"{e['path']}\t{e['fingerprint']}" for e in inputs]
    return combined_fingerprint(parts)


def _restart(build_dir: Path) -> None:
    """Everything the build made so far removed: its shard names follow its inputs' order."""
    for path in build_dir.iterdir():
        if path.name in (PLAN, LOCK_NAME):
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def mark_finished(plan: Plan) -> None:
    record = json.loads((plan.build_dir / PLAN).read_text())
    write_json(record | {"finished": True}, plan.build_dir / PLAN)


def repeated_failure(out: Path, reason: str) -> dict | None:
    """The record of the last failed firing when it failed for this same reason."""
    try:
        last = json.loads((out / FAILURE).read_text())
    except (OSError, ValueError):
        return None
    return last if last.get("reason") == reason else None


def record_failure(out: Path, reason: str, run: str) -> None:
    write_json({"reason": reason, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "run": run}, out / FAILURE)


def clear_failure(out: Path) -> None:
    (out / FAILURE).unlink(missing_ok=True)
