"""Per-shard jobs: the unit of work the flows map over, run in worker processes.

A job reads one shard, runs one stage on it, writes its outputs atomically and last of all a
done record (`<out_dir>/_done/<kind>-<name>.json`) holding the job's fingerprint and counts. A
rerun whose fingerprint matches a done record whose outputs exist is skipped, so a build killed
at any moment resumes where it stopped and ends with the same bytes. Nothing here knows Prefect.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline import config as cfgmod
from pipeline.errors import BuildError
from pipeline.shards import read_input_shard, read_shard, write_json, write_shard
from pipeline.stage import StageResult

SPLIT_KINDS = ("quality", "dedup", "privacy")  # jobs that write kept + removed/ shards


@dataclass(frozen=True)
class ShardJob:
    kind: str  # quality | dedup_signatures | dedup | privacy | encode
    name: str  # part-00000
    input_path: Path
    out_dir: Path
    fingerprint: str  # of everything that decides the output: input bytes, config, global inputs
    config: dict[str, Any] = field(default_factory=dict)  # the BuildConfig as JSON
    aux_path: Path | None = None  # the quality reference LM, dedup decisions or the tokenizer file
    # Other shard jobs run beside this one, so library thread pools (tokenizers') stay on one
    # thread instead of each starting a thread per core. Not in the fingerprint: same bytes either way.
    shares_cores: bool = False

    @property
    def record_path(self) -> Path:
        return self.out_dir / "_done" / f"{self.kind}-{self.name}.json"

    def outputs(self) -> list[Path]:
        if self.kind in SPLIT_KINDS:
            return [self.out_dir / f"{self.name}.parquet", self.out_dir / "removed" / f"{self.name}.parquet"]
        if self.kind == "dedup_signatures":
            return [self.out_dir / "_signatures" / f"{self.name}.parquet"]
        if self.kind == "encode":
            from pipeline.tokenizer.encode import counts_path

            splits = [self.out_dir / f"{split}-{self.name}.bin" for split in ("train", "val")]
            return [*splits, counts_path(self.out_dir, self.name)]
        raise ValueError(f"unknown job kind {self.kind!r}")


def finished_record(job: ShardJob) -> dict | None:
    """The done record of an earlier identical run, if its outputs are all there."""
    try:
        record = json.loads(job.record_path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != job.fingerprint or not all(p.exists() for p in job.outputs()):
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
    start = time.perf_counter()
    cfg = cfgmod.BuildConfig.model_validate(job.config)
    if job.kind in SPLIT_KINDS:
        record = _run_split_job(job, cfg)
    elif job.kind == "dedup_signatures":
        from pipeline.dedup.minhash import signatures

        table = read_input_shard(job.input_path)
        write_shard(signatures(table, cfg.dedup), job.outputs()[0])
        record = {"docs_in": table.num_rows}
    elif job.kind == "encode":
        from pipeline.tokenizer.encode import encode_shard

        record = encode_shard(job.input_path, job.aux_path, job.out_dir, job.name, cfg.tokenizer, cfg.seed,
                              parallel=not job.shares_cores)
    else:
        raise ValueError(f"unknown job kind {job.kind!r}")
    record |= {
        "name": job.name,
        "input": str(job.input_path),
        "fingerprint": job.fingerprint,
        "seconds": round(time.perf_counter() - start, 3),
    }
    write_json(record, job.record_path)  # last: its presence means the outputs are complete
    return record | {"skipped": False}


def _run_stage(job: ShardJob, table: pa.Table, cfg: cfgmod.BuildConfig) -> StageResult:
    if job.kind == "quality":
        from pipeline.quality.stage import run_shard

        return run_shard(table, cfg.quality, job.aux_path)
    if job.kind == "dedup":
        from pipeline.dedup.stage import apply_decisions

        return apply_decisions(table, read_shard(job.aux_path), cfg.dedup.lines)
    from pipeline.privacy.scrubber import run_shard

    return run_shard(table, cfg.privacy)


def _run_split_job(job: ShardJob, cfg: cfgmod.BuildConfig) -> dict:
    table = read_input_shard(job.input_path)
    result = _run_stage(job, table, cfg)
    kept_path, removed_path = job.outputs()
    docs_in, kept, removed = table.num_rows, result.kept.num_rows, result.removed.num_rows
    if kept + removed != docs_in:
        raise BuildError(
            f"{job.kind} on {job.input_path}: {docs_in} documents in but {kept} kept + {removed} removed. "
            "This is a bug in the stage; please report it."
        )
    write_shard(result.removed, removed_path)
    write_shard(result.kept, kept_path)
    return {
        "docs_in": docs_in,
        "docs_kept": kept,
        "docs_removed": removed,
        "bytes_in": text_bytes(table),
        "bytes_kept": text_bytes(result.kept),
        "bytes_removed": text_bytes(result.removed),
        "reasons": result.reasons,
        "extra": dict(sorted(result.extra.items())),
    }
