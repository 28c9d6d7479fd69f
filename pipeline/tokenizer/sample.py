"""The tokenizer's bounded training sample, drawn where the shards are (train.py has the rule).

`plan_step` (build step) reads only the shards' Parquet footers: each source's share of
`tokenizer.sample_bytes` and the hash under which its documents are candidates, written to
`tokens/_sample/plan.json` when a source is over its share. `sample_step` (shard step, in the worker pool or on the cluster)
writes a shard's candidates to `tokens/_sample/<shard>.parquet`, for sources over their share
only. Training then reads the candidates of those sources and the shards of the others: the
bounded sample, never the whole corpus.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import pyarrow as pa

from pipeline.shards import combined_fingerprint, write_json, write_shard
from pipeline.stage import BuildContext, ShardContext, StageResult
from pipeline.tokenizer.train import Sample, candidates, plan_sample

FOLDER = "_sample"


def weights(ctx: BuildContext) -> dict[str, float]:
    return {source.name: source.weight for source in ctx.sources}


def plan_step(ctx: BuildContext) -> dict:
    """Build step: the sample's plan, from the footers, recomputed at every run (it reads no text).
    Its fingerprint is the plan itself: the candidates and the tokenizer are redone exactly when
    it changes. A corpus under the bound writes nothing: no shard step, no artifact, so the
    encode step's fingerprints stay what they were before there was a bound."""
    shards = [(path, ctx.source_of(name)) for name, path in sorted(ctx.shards, key=lambda s: str(s[1]))]
    sample = plan_sample(shards, weights(ctx), ctx.config, ctx.seed)
    plan = asdict(sample)
    record = {
        "fingerprint": combined_fingerprint([json.dumps(plan, sort_keys=True), ctx.config_hash]),
        "wide": sample.wide,
        "estimate": sample.estimate,
    }
    sampled = sorted(s for s, wide in sample.wide.items() if wide < 1.0)
    if not sampled:
        return record | {"note": "every document (under the bound)"}
    out = ctx.folder / FOLDER / "plan.json"
    write_json(plan, out)
    return record | {"artifact": ctx.artifact(out), "note": f"candidates from {', '.join(sampled)}"}


def draws_candidates(ctx: BuildContext) -> bool:
    """Whether any source is over its share: a corpus under the bound needs no shard step."""
    return any(wide < 1.0 for wide in ctx.artifacts["tokenizer_sample_plan"]["wide"].values())


def sample_step(table: pa.Table, ctx: ShardContext) -> StageResult:
    """Shard step: the shard's candidates, when its source is over its share of the sample."""
    sample = Sample(**json.loads(ctx.artifacts["tokenizer_sample_plan"].read_text()))
    wide = sample.wide[ctx.source]
    if wide >= 1.0:
        return StageResult(extra={"candidates": table.num_rows})
    columns = [c for c in ("id", "text", "lang") if c in table.column_names]
    drawn = candidates(table.select(columns), wide, sample.seed)
    out = ctx.out_dir / FOLDER / f"{ctx.shard}.parquet"
    write_shard(drawn, out)
    return StageResult(extra={"candidates": drawn.num_rows}, files=[out])
