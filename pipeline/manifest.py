"""The build manifest: per-stage and per-shard counts, the conservation check, versions.

Stage summaries are sums of the per-shard done records, so a resumed build's manifest is the
same as an uninterrupted one's (only timings differ).
"""

from __future__ import annotations

import platform
from collections import Counter
from importlib import metadata
from pathlib import Path

from pipeline.config import BuildConfig
from pipeline.errors import BuildError
from pipeline.shards import InputShard, fingerprint, write_json
from pipeline.steps import stage_summary

COUNT_KEYS = ("docs_in", "docs_kept", "docs_removed", "bytes_in", "bytes_kept", "bytes_removed")
PACKAGES = ("pyarrow", "prefect", "torch", "tokenizers", "datasketch", "presidio-analyzer", "spacy", "fasttext-predict")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "corpus": metadata.version("corpus")}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def summarise_stage(records: list[dict], seconds: float, config_hash: str) -> dict:
    """Sum the shard records of one stage into its manifest entry."""
    shards = sorted(records, key=lambda r: r["name"])
    reasons: Counter[str] = Counter()
    extra: Counter[str] = Counter()
    for record in shards:
        reasons.update(record.get("reasons", {}))
        extra.update(record.get("extra", {}))
    summary = {key: sum(r.get(key, 0) for r in shards) for key in COUNT_KEYS}
    return summary | {
        "status": "done",
        "seconds": round(seconds, 3),
        "config_hash": config_hash,
        "reasons": dict(sorted(reasons.items())),
        "extra": dict(sorted(extra.items())),
        "shards": shards,
    }


def conservation_failures(stages: dict[str, dict]) -> list[str]:
    """Every shard of every filtering stage: documents in = kept + removed."""
    failures = []
    for stage, entry in stages.items():
        for record in entry.get("shards", []):
            if "docs_kept" not in record:
                continue
            if record["docs_in"] != record["docs_kept"] + record["docs_removed"]:
                failures.append(
                    f"{stage}/{record['name']}: {record['docs_in']} in != "
                    f"{record['docs_kept']} kept + {record['docs_removed']} removed"
                )
    return failures


def input_records(inputs: list[InputShard]) -> list[dict]:
    return [
        {"name": s.name, "path": str(s.source), "fingerprint": fingerprint(s.path), "docs": s.docs} for s in inputs
    ]


# Manifest stage name -> the folder whose _stage.json holds that stage's summary.
STAGE_FOLDERS = {"quality": "quality", "dedup": "dedup", "privacy": "privacy", "tokenizer": "tokens", "pretrain": "model"}


def record(build_dir: Path, input_spec: str, inputs: list[dict], cfg: BuildConfig, workers: int,
           out: str | None = None) -> dict:
    """Write manifest.json from the finished stages' summaries; fail the build if a stage lost
    documents (in != kept + removed). `out`: where the build is published when that is not
    `build_dir` (a URL, whose local working copy `build_dir` is)."""
    stages = {}
    for stage, folder in STAGE_FOLDERS.items():
        if (summary := stage_summary(build_dir, folder)) is not None:
            stages[stage] = summary
    failures = conservation_failures(stages)
    found = versions()
    data = {
        "corpus_version": found["corpus"],
        "build_dir": str(build_dir.resolve()),
        "out": out or str(build_dir.resolve()),
        "input": input_spec,
        "workers": workers,
        "versions": found,
        "config": cfg.model_dump(mode="json"),
        "input_shards": inputs,
        "stages": stages,
        "conservation": {"ok": not failures, "failures": failures},
    }
    write_json(data, build_dir / "manifest.json")
    if failures:
        raise BuildError(f"{build_dir}/manifest.json: conservation check failed: {failures[0]}")
    return data
