"""The build manifest: per-stage and per-shard counts, the conservation check, versions.

Stage summaries are sums of the per-shard done records, so a resumed build's manifest is the
same as an uninterrupted one's (only timings differ).
"""

from __future__ import annotations

import json
import platform
from collections import Counter
from importlib import metadata
from pathlib import Path

from pipeline.shards import write_json

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


def load(build_dir: Path) -> dict:
    path = build_dir / "manifest.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def save(build_dir: Path, manifest: dict) -> None:
    write_json(manifest, build_dir / "manifest.json")
