"""Corpus-wide tokenizer statistics from the per-shard encode records and token counts.

- bytes per token and tokens per word, per language: compression, comparable across tokenizers
  of any vocabulary (words: whitespace-separated, so scripts without spaces show many tokens
  per "word");
- vocabulary use: the share of the vocabulary that occurs at least once in the encoded corpus
  (added tokens included in the denominator; unused ids are wasted embedding rows);
- unknown rate: tokens mapped to the model's unknown token (always 0 for byte-level BPE);
- byte-fallback rate: tokens that are not whole UTF-8 characters (a lone byte or a fragment of a
  multi-byte character), the price of text the merges did not learn;
- the longest learned tokens (what the merges spent their budget on).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from pipeline.stage import BuildContext
from pipeline.tokenizer.encode import counts_path
from pipeline.tokenizer.train import longest_tokens, token_bytes


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def partial_character_ids(tokenizer: Tokenizer) -> np.ndarray:
    """Boolean per id: True where the token's bytes are not valid UTF-8 on their own."""
    out = []
    for b in token_bytes(tokenizer):
        try:
            b.decode("utf-8")
            out.append(False)
        except UnicodeDecodeError:
            out.append(True)
    return np.array(out, dtype=bool)


SPLIT_TOTALS = ("train_docs", "val_docs", "train_tokens", "val_tokens", "train_bytes", "val_bytes")


def stage_summary(ctx: BuildContext) -> dict:
    """The tokenizer stage's manifest entry: split totals, the vocabulary and its statistics."""
    records = ctx.records["encode"]
    trained = ctx.artifacts["tokenizer_train"]
    totals = {key: sum(r["extra"][key] for r in records) for key in SPLIT_TOTALS}
    mixture = ctx.artifacts["mixture"]
    return totals | {
        "vocab_size": trained["vocab_size"],
        "train_seconds": trained["seconds"],
        # What the tokenizer trained on, per source (records of builds before the bound lack it).
        "training_sample": {key: trained.get(key) for key in ("sample_bytes", "sample", "documents", "bytes")},
        "mixture": {key: mixture[key] for key in ("budget_tokens", "train_tokens", "sources")},
        "stats": summarize(
            [r["extra"] | {"name": r["name"]} for r in records], ctx.build_dir / trained["artifact"], ctx.folder
        ),
        "shards": records,
    }


def headline(summary: dict) -> dict[str, str]:
    docs = summary["train_docs"] + summary["val_docs"]
    tokens = summary["train_tokens"] + summary["val_tokens"]
    return {
        "docs in": f"{docs:,}",
        "docs out": f"{tokens:,} tok",
        "MB in": f"{(summary['train_bytes'] + summary['val_bytes']) / 1e6:.2f}",
        "detail": mixture_lines(summary["mixture"]),
    }


def mixture_lines(mixture: dict) -> str:
    """The mixture as a person reads it: each source's target and realised share, repeats, and
    what fell short."""
    lines = [f"mixture: {mixture['train_tokens']:,} training tokens (target share -> planned -> realised, repeats)"]
    for name, s in mixture["sources"].items():
        note = ""
        if not s["tokens_available"]:
            note = "  (no documents left after filtering)"
        elif s["capped"]:
            note = f"  (capped at max_epochs {s['max_epochs']:g}: {s['shortfall_tokens']:,} tokens short)"
        lines.append(
            f"  {name:<12} {s['target_share']:6.1%} -> {s['planned_share']:6.1%} -> {s['realised_share']:6.1%}"
            f"  x{s['repeats']:.2f}"
            f"  of {s['tokens_available']:,} tokens{note}"
        )
    return "\n".join(lines)


def funnel_row(summary: dict) -> dict | None:
    """Tokens exist only after tokenization: one more funnel row, every document encoded."""
    if "train_tokens" not in summary:
        return None
    return {
        "docs": summary["train_docs"] + summary["val_docs"],
        "bytes": summary["train_bytes"] + summary["val_bytes"],
        "tokens": summary["train_tokens"] + summary["val_tokens"],
    }


def summarize(records: list[dict], tokenizer_path: Path, tokens_dir: Path) -> dict:
    """Merge the encode records (each with `name` and `langs`) and `_counts/*.npy` into corpus
    statistics."""
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    vocab_size = tokenizer.get_vocab_size()
    langs: dict[str, dict[str, int]] = {}
    for record in records:
        for lang, row in record.get("langs", {}).items():
            acc = langs.setdefault(lang, {"docs": 0, "bytes": 0, "tokens": 0, "words": 0})
            for key in acc:
                acc[key] += row[key]
    languages = {
        lang: row
        | {
            "bytes_per_token": _ratio(row["bytes"], row["tokens"]),
            "tokens_per_word": _ratio(row["tokens"], row["words"]),
        }
        for lang, row in sorted(langs.items(), key=lambda it: (-it[1]["bytes"], it[0]))
    }
    counts = np.zeros(vocab_size, dtype=np.int64)
    for record in records:
        counts += np.load(counts_path(tokens_dir, record["name"]))
    total = int(counts.sum())  # text tokens, delimiters not counted
    unk = json.loads(tokenizer.to_str())["model"].get("unk_token")
    unk_id = tokenizer.token_to_id(unk) if unk else None
    text_bytes = sum(row["bytes"] for row in langs.values())
    return {
        "text_tokens": total,
        "bytes_per_token": _ratio(text_bytes, total),
        "tokens_per_word": _ratio(total, sum(row["words"] for row in langs.values())),
        "languages": languages,
        "vocab_used": int((counts > 0).sum()),
        "vocab_used_share": _ratio(int((counts > 0).sum()), vocab_size),
        "unknown_rate": _ratio(int(counts[unk_id]) if unk_id is not None else 0, total),
        "byte_fallback_rate": _ratio(int(counts[partial_character_ids(tokenizer)].sum()), total),
        "longest_tokens": longest_tokens(tokenizer),
    }
