"""Per-shard jobs: the unit of work the flows map over, run in worker processes.

A job reads one shard, runs one shard step of a stage on it, writes its outputs atomically and
last of all a done record (`<stage folder>/_done/<step>-<shard>.json`) holding the job's
fingerprint, counts and outputs. A rerun whose fingerprint matches a done record whose outputs
exist is skipped, so a build killed at any moment resumes where it stopped and ends with the same
bytes. A job carries its step function and its context, so a worker needs no registry lookup
and nothing here knows Prefect.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import BuildError
from pipeline.shards import RawPart, read_input_shard, with_provenance, write_json, write_shard
from pipeline.stage import ShardContext, ShardStep, StageResult, split_by_reason


@dataclass(frozen=True)
class ShardJob:
    step: ShardStep
    input_path: Path
    context: ShardContext
    fingerprint: str  # of everything that decides the output: input bytes, config, artifacts
    reasons: tuple[str, ...] = ()  # the removal reasons the stage declares
    # (source, id prefix) when the job reads the build's input: its rows get their provenance.
    provenance: tuple[str, str] | None = None

    @property
    def name(self) -> str:
        return self.context.shard

    @property
    def out_dir(self) -> Path:
        return self.context.out_dir

    @property
    def record_path(self) -> Path:
        return self.out_dir / "_done" / f"{self.step.name}-{self.name}.json"


def finished_record(job: ShardJob) -> dict | None:
    """The done record of an earlier identical run, if its outputs are all there."""
    try:
        record = json.loads(job.record_path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != job.fingerprint or "outputs" not in record:
        return None
    if not all((job.out_dir / output).exists() for output in record["outputs"]):
        return None
    return record | {"skipped": True}


def text_bytes(table: pa.Table) -> int:
    if table.num_rows == 0:
        return 0
    return int(pc.sum(pc.binary_length(table["text"])).as_py() or 0)


def run_job(job: ShardJob) -> dict:
    """Run one job (or skip it); returns its record. Safe to call in a worker process."""
    if (record := finished_record(job)) is not None:
        return record
    record = execute_job(job)
    write_json(record, job.record_path)  # last: its presence means the outputs are complete
    return record | {"skipped": False}


def execute_job(job: ShardJob) -> dict:
    """Run one job's step and write its outputs; returns the done record, which the caller
    writes once the outputs are where they belong (pipeline/remote_jobs.py: at a URL)."""
    start = time.perf_counter()
    if job.step.reads == "raw":
        part = RawPart.read(job.input_path)
        result = job.step.run(part, job.context)
        docs_in, bytes_in = part.docs, part.payload_bytes
        if job.provenance is not None:  # the documents exist only now: they get their source here
            result.kept, result.removed = (
                None if table is None else with_provenance(table, *job.provenance)
                for table in (result.kept, result.removed)
            )
    else:
        table = read_input_shard(job.input_path)
        if job.provenance is not None:
            table = with_provenance(table, *job.provenance)
        if job.step.writes == "documents" and not getattr(job.context.config, "enabled", True):
            # The stage runs for other sources (BuildConfig.runs); this source's documents pass as they are.
            result = split_by_reason(table, [None] * table.num_rows, job.context.stage)
        else:
            result = job.step.run(table, job.context)
        docs_in, bytes_in = table.num_rows, text_bytes(table)
    if job.step.writes == "documents":
        record = _write_documents(job, docs_in, bytes_in, result)
    else:
        record = {
            "docs_in": docs_in,
            "extra": result.extra,
            "outputs": [path.relative_to(job.out_dir).as_posix() for path in result.files],
        }
    record |= {
        "name": job.name,
        "source": job.context.source,
        "input": str(job.input_path),
        "fingerprint": job.fingerprint,
        "seconds": round(time.perf_counter() - start, 3),
    }
    return record


def _write_documents(job: ShardJob, docs_in: int, bytes_in: int, result: StageResult) -> dict:
    """The stage's output of one shard: kept rows beside removed/ rows, checked for conservation
    (against the documents the job read, or a raw part's count) and for undeclared reasons."""
    stage = job.context.stage
    if result.kept is None or result.removed is None:
        raise BuildError(
            f"{stage} on {job.input_path}: the step returned no kept/removed tables. "
            "A documents step returns split_by_reason(...); this is a bug in the stage."
        )
    kept, removed = result.kept.num_rows, result.removed.num_rows
    if kept + removed != docs_in:
        raise BuildError(
            f"{stage} on {job.input_path}: {docs_in} documents in but {kept} kept + {removed} removed. "
            "This is a bug in the stage; please report it."
        )
    reasons = result.reasons
    undeclared = [r for r in reasons if not any(fnmatchcase(r, pattern) for pattern in job.reasons)]
    if undeclared:
        raise BuildError(
            f"{stage} on {job.input_path}: removal reason {undeclared[0]!r} is not among the "
            f"reasons the stage declares ({', '.join(job.reasons) or 'none'}). Declare it in its Stage."
        )
    kept_path = job.out_dir / f"{job.name}.parquet"
    removed_path = job.out_dir / "removed" / f"{job.name}.parquet"
    write_shard(result.removed, removed_path)
    write_shard(result.kept, kept_path)
    return {
        "docs_in": docs_in,
        "docs_kept": kept,
        "docs_removed": removed,
        "bytes_in": bytes_in,
        "bytes_kept": text_bytes(result.kept),
        "bytes_removed": text_bytes(result.removed),
        "reasons": reasons,
        "extra": dict(sorted(result.extra.items())),
        "outputs": [path.relative_to(job.out_dir).as_posix() for path in (kept_path, removed_path)],
    }
