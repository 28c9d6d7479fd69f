"""The pretrain stage: a compact GPT trained on the tokenizer stage's token shards (loop.py),
then one document written from scratch by it, for the report (sample.py), and its model card
(card.py)."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.errors import BuildError, InputError
from pipeline.shards import combined_fingerprint, fingerprint, write_bytes
from pipeline.stage import BuildContext
from pipeline.stages import registry
from pipeline.steps import read_summary


def pretrain(ctx: BuildContext) -> dict:
    """Build step: train until the step or wall-clock budget ends (skipped when an identical run
    finished), reporting each step to `ctx.on_progress`."""
    from pipeline.tokenizer.token_file import read_tokens
    from pipeline.train.card import model_card, write_card
    from pipeline.train.distributed import launch
    from pipeline.train.loop import train
    from pipeline.train.sample import sample

    build_dir, cfg = ctx.build_dir, ctx.config
    tokens = read_summary(build_dir, registry.get("tokenizer"))
    tokenizer_path = build_dir / "tokenizer" / "tokenizer.json"
    if tokens is None or not tokenizer_path.exists():
        raise InputError(f"{build_dir}: no tokens/ yet. Run the tokenizer stage first (--stages tokenizer,pretrain).")
    tokens_dir = build_dir / registry.get("tokenizer").out
    token_files = sorted(tokens_dir.glob("*.bin"))
    if not any(len(read_tokens(p)) for p in token_files if p.name.startswith("val-")):
        raise BuildError(
            f"{tokens_dir}: the validation split is empty; raise tokenizer.val_fraction or give more text."
        )
    # Text bytes per val token (delimiters counted as tokens, not bytes): turns nats per token
    # into bits per byte.
    val_bytes_per_token = tokens["val_bytes"] / tokens["val_tokens"]
    fp = combined_fingerprint([fingerprint(p) for p in token_files] + [ctx.config_hash])
    model_dir = ctx.folder
    on_step = (lambda p: ctx.on_progress(p["step"], cfg.max_steps)) if ctx.on_progress else None

    def train_then_sample() -> dict:
        # Several processes: the same function on each, under torchrun (distributed.py).
        record = (train if cfg.processes == 1 else launch)(
            tokens_dir,
            model_dir,
            cfg,
            int(tokens["vocab_size"]),
            ctx.seed,
            val_bytes_per_token,
            on_step,
            val_by_source(tokens, tokens_dir),
        )
        # A new document written from scratch by the model, for the report: what it has learnt.
        write_bytes(sample(build_dir, "", max_new_tokens=200, seed=ctx.seed).encode(), model_dir / "sample.txt")
        return record

    record = ctx.once(
        "pretrain",
        fp,
        [model_dir / "ckpt.pt", model_dir / "metrics.jsonl", model_dir / "sample.txt"],
        train_then_sample,
    )
    # Written from the record every time (a resumed build's too): it costs nothing and reads only
    # what the run fixed.
    mixture_path = tokens_dir / "mixture.json"
    mixture = json.loads(mixture_path.read_text()) if mixture_path.exists() else None
    write_card(model_dir, model_card(cfg, record, int(tokens["vocab_size"]), ctx.seed, mixture))
    return record | {"note": f"val loss {record['final_val_loss']:.3f}"}


def val_by_source(tokens: dict, tokens_dir: Path) -> dict[str, tuple[list[Path], float]] | None:
    """Each source's val shards and bytes per token, from the tokenizer stage's shard records;
    None for a build of one source (its figure is the overall one)."""
    by_source: dict[str, list[dict]] = {}
    for record in tokens["shards"]:
        by_source.setdefault(record["source"], []).append(record)
    if len(by_source) < 2:
        return None
    out = {}
    for source, records in by_source.items():
        val_tokens = sum(r["extra"]["val_tokens"] for r in records)
        if val_tokens:
            paths = [tokens_dir / f"val-{r['name']}.bin" for r in records if r["extra"]["val_tokens"]]
            out[source] = (paths, sum(r["extra"]["val_bytes"] for r in records) / val_tokens)
    return out


def stage_summary(ctx: BuildContext) -> dict:
    """The training record: steps, tokens seen, losses, bits per byte, throughput."""
    return {key: value for key, value in ctx.artifacts["pretrain"].items() if key != "note"}


def headline(summary: dict) -> dict[str, str]:
    detail = (
        f"model: {summary['params']:,} parameters, validation loss {summary['initial_val_loss']:.3f} -> "
        f"[bold]{summary['final_val_loss']:.3f}[/] nats/token = [bold]{summary['final_val_bpb']:.3f}[/] "
        f"bits/byte after {summary['steps']:,} steps ({summary['tokens_per_s']:,.0f} tokens/s)"
    )
    return {"docs in": f"{summary['tokens_seen']:,} tok", "docs out": f"{summary['steps']:,} steps", "detail": detail}
