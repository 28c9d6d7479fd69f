"""The steps of a build over its directory, as plain functions the flows call.

Which shards a stage reads, the jobs it maps over shards, and its global steps (dedup
clustering, tokenizer training, pretraining), each skipped when an identical run already
finished. Build directory layout (fixed names; README "Build directory"):

    manifest.json
    input/                      JSONL input converted to Parquet
    quality/ dedup/ privacy/    part-*.parquet, removed/part-*.parquet, _stage.json, _done/
    tokenizer/tokenizer.json
    tokens/                     train-part-*.bin, val-part-*.bin (+ .idx.npy), _stage.json
    model/                      ckpt.pt, metrics.jsonl
    report/                     report.html, stats.json
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from pipeline.config import BuildConfig
from pipeline.errors import BuildError, InputError
from pipeline.jobs import ShardJob
from pipeline.shards import InputShard, combined_fingerprint, fingerprint, write_bytes, write_json

TEXT_STAGES = ("quality", "dedup", "privacy")  # stages that read and write text shards


def stage_sources(build_dir: Path, stage: str, inputs: list[InputShard]) -> list[tuple[str, Path]]:
    """(name, path) of the shards a stage reads: the nearest earlier finished text stage's output,
    or the build input itself when none has run."""
    earlier = TEXT_STAGES[: TEXT_STAGES.index(stage)] if stage in TEXT_STAGES else TEXT_STAGES
    for previous in reversed(earlier):
        summary = stage_summary(build_dir, previous)
        if summary is not None:
            return [(s["name"], build_dir / previous / f"{s['name']}.parquet") for s in summary["shards"]]
    return [(shard.name, shard.path) for shard in inputs]


def stage_summary(build_dir: Path, stage: str) -> dict | None:
    path = build_dir / stage / "_stage.json"
    return json.loads(path.read_text()) if path.exists() else None


def shard_jobs(
    kind: str,
    section: str,
    sources: list[tuple[str, Path]],
    out_dir: Path,
    cfg: BuildConfig,
    aux: tuple[Path, str] | None = None,
    shares_cores: bool = False,
) -> list[ShardJob]:
    """One job per shard; its fingerprint covers the shard's bytes, the stage config and `aux`.
    `shares_cores`: the jobs run several at a time on one machine (see ShardJob)."""
    config = cfg.model_dump(mode="json")
    jobs = []
    for name, path in sources:
        parts = [kind, fingerprint(path), cfg.section_hash(section)] + ([aux[1]] if aux else [])
        jobs.append(
            ShardJob(
                kind=kind,
                name=name,
                input_path=path,
                out_dir=out_dir,
                fingerprint=combined_fingerprint(parts),
                config=config,
                aux_path=aux[0] if aux else None,
                shares_cores=shares_cores,
            )
        )
    return jobs


def run_once(record_path: Path, fingerprint_: str, outputs: list[Path], step: Callable[[], dict]) -> dict:
    """Run a global step unless a finished record with the same fingerprint (and its outputs) exists."""
    if record_path.exists() and all(p.exists() for p in outputs):
        record = json.loads(record_path.read_text())
        if record.get("fingerprint") == fingerprint_:
            return record | {"skipped": True}
    start = time.perf_counter()
    record = step() | {"fingerprint": fingerprint_, "seconds": round(time.perf_counter() - start, 3)}
    write_json(record, record_path)
    return record | {"skipped": False}


def train_reference_lm(build_dir: Path, cfg: BuildConfig) -> tuple[Path, dict]:
    """The quality stage's perplexity model, trained once per build from the reference files."""
    from pipeline.quality.perplexity import reference_fingerprint, train_reference

    out = build_dir / "quality" / "_reference_lm.npz"
    pcfg = cfg.quality.perplexity

    def step() -> dict:
        out.parent.mkdir(parents=True, exist_ok=True)
        reference = train_reference(pcfg)
        reference.save(out)
        return {"languages": sorted(reference.models), "cutoffs": reference.cutoffs}

    record = run_once(build_dir / "quality" / "_done" / "reference_lm.json", reference_fingerprint(pcfg), [out], step)
    return out, record


def dedup_decisions(build_dir: Path, signature_jobs: list[ShardJob], cfg: BuildConfig) -> tuple[Path, dict]:
    """Cluster all shards' signatures into keep/remove decisions, reading the signature files a
    column at a time (pipeline/dedup/lsh.py). With `dedup.index`, documents that earlier builds
    kept take part too, and this build's kept documents are then appended to the index."""
    import pyarrow.parquet as pq

    from pipeline.dedup import index
    from pipeline.dedup.minhash import find_duplicates
    from pipeline.shards import write_shard

    out = build_dir / "dedup" / "_decisions.parquet"
    files = [job.outputs()[0] for job in signature_jobs]
    dedup = cfg.dedup
    documents = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    skip_containment = dedup.containment and documents > dedup.containment_max_documents
    if skip_containment:
        dedup = dedup.model_copy(update={"containment": False})
    index_dir = Path(dedup.index) if dedup.index else None
    earlier = index.earlier_parts(index_dir, build_dir, dedup.minhash) if index_dir else []
    fp = combined_fingerprint(
        [job.fingerprint for job in signature_jobs] + [cfg.section_hash("dedup"), index.state(earlier)]
    )

    def step() -> dict:
        decisions = find_duplicates(files, dedup, earlier)
        write_shard(decisions, out)
        record = {"documents": decisions.num_rows}
        if skip_containment:
            record["containment"] = f"skipped: {documents:,} documents > containment_max_documents"
        if index_dir:
            part = index.append(index_dir, build_dir, files, decisions, dedup.minhash)
            record |= {"index_part": str(part), "earlier_files": len(earlier)}
        return record

    record = run_once(build_dir / "dedup" / "_done" / "decisions.json", fp, [out], step)
    return out, record


def train_tokenizer(build_dir: Path, sources: list[tuple[str, Path]], cfg: BuildConfig) -> tuple[Path, dict]:
    from pipeline.tokenizer.train import train_tokenizer as train

    out = build_dir / "tokenizer" / "tokenizer.json"
    paths = [path for _, path in sources]
    fp = combined_fingerprint([fingerprint(p) for p in paths] + [cfg.section_hash("tokenizer")])
    record = run_once(build_dir / "tokenizer" / "_done.json", fp, [out], lambda: train(paths, cfg.tokenizer, out))
    return out, record


def pretrain(build_dir: Path, cfg: BuildConfig, on_progress: Callable[[dict], None] | None = None) -> dict:
    from pipeline.tokenizer.token_file import read_tokens
    from pipeline.train.loop import train
    from pipeline.train.sample import sample

    tokens = stage_summary(build_dir, "tokens")
    tokenizer_path = build_dir / "tokenizer" / "tokenizer.json"
    if tokens is None or not tokenizer_path.exists():
        raise InputError(f"{build_dir}: no tokens/ yet. Run the tokenizer stage first (--stages tokenizer,pretrain).")
    vocab_size = int(tokens["vocab_size"])
    token_files = sorted((build_dir / "tokens").glob("*.bin"))
    if not any(len(read_tokens(p)) for p in token_files if p.name.startswith("val-")):
        raise BuildError(f"{build_dir / 'tokens'}: the validation split is empty; raise tokenizer.val_fraction or give more text.")
    # Text bytes per val token (delimiters counted as tokens, not bytes): turns nats per token
    # into bits per byte.
    val_bytes_per_token = tokens["val_bytes"] / tokens["val_tokens"]
    fp = combined_fingerprint([fingerprint(p) for p in token_files] + [cfg.section_hash("pretrain")])
    model_dir = build_dir / "model"

    def train_then_sample() -> dict:
        record = train(
            build_dir / "tokens", model_dir, cfg.pretrain, vocab_size, cfg.seed, val_bytes_per_token, on_progress
        )
        # A new document written from scratch by the model, for the report: what it has learnt.
        write_bytes(sample(build_dir, "", max_new_tokens=200, seed=cfg.seed).encode(), model_dir / "sample.txt")
        return record

    return run_once(
        model_dir / "_done.json", fp, [model_dir / "ckpt.pt", model_dir / "metrics.jsonl", model_dir / "sample.txt"],
        train_then_sample,
    )


def write_stage_summary(build_dir: Path, stage: str, summary: dict) -> None:
    """Written when a stage has finished all its shards: later stages read from it."""
    write_json(summary, build_dir / stage / "_stage.json")
