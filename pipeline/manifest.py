"""The build manifest: per-stage and per-shard counts, the conservation check, versions.

Stage summaries are sums of the per-shard done records, so a resumed build's manifest is the
same as an uninterrupted one's (only timings differ). The default summary, CLI headline and
report funnel row of a filter stage are here; a stage that is not a filter declares its own.
"""

from __future__ import annotations

import platform
from collections import Counter
from importlib import metadata
from pathlib import Path

from pipeline.config import BuildConfig
from pipeline.errors import BuildError
from pipeline.shards import InputShard, fingerprint, write_json
from pipeline.sources import INPUT_SOURCE
from pipeline.stage import BuildContext, ShardStep, Stage
from pipeline.stages import registry
from pipeline.steps import read_summary

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


def summarise_stage(records: list[dict]) -> dict:
    """Sum the shard records of a filter stage into its manifest entry: the totals, and the same
    per source (`sources`, in the order of their first shard)."""
    shards = sorted(records, key=lambda r: r["name"])
    by_source: dict[str, list[dict]] = {}
    for record in shards:
        by_source.setdefault(record.get("source", INPUT_SOURCE), []).append(record)
    per_source = {source: _counts(group) for source, group in by_source.items()}
    return _counts(shards) | {"sources": per_source, "shards": shards}


def _counts(records: list[dict]) -> dict:
    reasons: Counter[str] = Counter()
    extra: Counter[str] = Counter()
    for record in records:
        reasons.update(record.get("reasons", {}))
        extra.update(record.get("extra", {}))
    summary = {key: sum(r.get(key, 0) for r in records) for key in COUNT_KEYS}
    return summary | {"reasons": dict(sorted(reasons.items())), "extra": dict(sorted(extra.items()))}


def documents_step(stage: Stage) -> ShardStep:
    """The step whose kept/removed rows are a filter stage's output (its last documents step)."""
    return [s for s in stage.steps if isinstance(s, ShardStep) and s.writes == "documents"][-1]


def summarise(stage: Stage, ctx: BuildContext) -> dict | None:
    """A stage's manifest entry from its steps' records: its own `summarise`, or a filter
    stage's sums; None for a stage without one (the report)."""
    if stage.summarise is not None:
        return stage.summarise(ctx)
    if stage.filters:
        return summarise_stage(ctx.records[documents_step(stage).name])
    return None


def headline(stage: Stage, summary: dict) -> dict[str, str]:
    """The CLI summary's columns for one stage (a filter stage's documents and bytes by default)."""
    if stage.headline is not None:
        return stage.headline(summary)
    return {
        "docs in": f"{summary['docs_in']:,}",
        "docs out": f"{summary['docs_kept']:,}",
        "removed": f"{summary['docs_removed']:,}",
        "MB in": f"{summary['bytes_in'] / 1e6:.2f}",
        "MB out": f"{summary['bytes_kept'] / 1e6:.2f}",
    }


def funnel_row(stage: Stage, summary: dict) -> dict | None:
    """A stage's row of the report funnel: documents and bytes left after a filter stage."""
    if stage.funnel is not None:
        return stage.funnel(summary)
    if not stage.filters or "docs_in" not in summary:
        return None
    counts = {k: summary[k] for k in COUNT_KEYS}
    return {
        **counts,
        "docs": counts["docs_kept"],
        "bytes": counts["bytes_kept"],
        "docs_removed_share": _share(counts["docs_removed"], counts["docs_in"]),
        "bytes_removed_share": _share(counts["bytes_removed"], counts["bytes_in"]),
    }


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def conservation_failures(stages: dict[str, dict]) -> list[str]:
    """Every shard that counts documents: in = kept + removed; a filter stage's shard must count."""
    filters = {stage.name for stage in registry.filters()}
    failures = []
    for name, entry in stages.items():
        for record in entry.get("shards", []):
            if "docs_kept" not in record:
                if name in filters:
                    failures.append(f"{name}/{record.get('name')}: no document counts in its record")
            elif record["docs_in"] != record["docs_kept"] + record["docs_removed"]:
                failures.append(
                    f"{name}/{record['name']}: {record['docs_in']} in != "
                    f"{record['docs_kept']} kept + {record['docs_removed']} removed"
                )
    return failures


def input_records(inputs: list[InputShard]) -> list[dict]:
    """The build's input shards: the plan (a shard that is not a whole file lists its `rows`:
    [file, first row, row after the last] of each piece) with fingerprints."""
    return [
        {"name": s.name, "source": s.source, "path": str(s.origin), "fingerprint": fingerprint(s.path), "docs": s.docs}
        | ({"rows": [list(piece) for piece in s.pieces]} if s.pieces else {})
        for s in inputs
    ]


def where_steps_ran(stages: dict[str, dict]) -> dict[str, dict]:
    """Each build-wide step's place (`local`, or the Dask scheduler's address its tasks ran on),
    wall time and peak RSS of the process that ran it, from the stages' records."""
    fields = ("ran_on", "wall_s", "peak_rss_bytes", "peak_task_rss_bytes", "tasks", "skipped")
    return {
        name: {"stage": stage} | {key: step[key] for key in fields if key in step}
        for stage, summary in stages.items()
        for name, step in summary.get("build_steps", {}).items()
    }


def record(
    build_dir: Path,
    input_spec: str,
    inputs: list[dict],
    cfg: BuildConfig,
    workers: int,
    out: str | None = None,
    quarantined: list[dict] | None = None,
) -> dict:
    """Write manifest.json from the finished stages' summaries; fail the build if a stage lost
    documents (in != kept + removed). `out`: where the build is published when that is not
    `build_dir` (a URL, whose local working copy `build_dir` is). `quarantined`: input files set
    aside, with their reasons."""
    stages = {}
    for stage in registry:
        if (summary := read_summary(build_dir, stage)) is not None:
            stages[stage.name] = summary
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
        "quarantined": quarantined or [],
        "stages": stages,
        "build_steps": where_steps_ran(stages),
        "conservation": {"ok": not failures, "failures": failures},
    }
    write_json(data, build_dir / "manifest.json")
    if failures:
        raise BuildError(f"{build_dir}/manifest.json: conservation check failed: {failures[0]}")
    return data
