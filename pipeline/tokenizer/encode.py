"""Encode one corpus shard into train/val token shards (llm.c `.bin`, see token_file.py).

Every document becomes `<|endoftext|>` followed by its tokens: llm.c's convention, the delimiter
starts each document, so a model sees "new document" before the first token it must predict.
Documents go to train or val by a seeded hash of their id: the split is stable across reruns,
shard counts and worker layouts, and a document never lands on both sides.

Stats count UTF-8 bytes of the original texts per split, so that bits-per-byte
(= summed loss in nats / ln 2 / bytes) compares models across tokenizers.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
from tokenizers import Tokenizer

from pipeline.config import TokenizerConfig
from pipeline.tokenizer import token_file
from pipeline.tokenizer.train import EOT_ID, read_batches

SPLITS = ("train", "val")


@lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int) -> Tokenizer:
    tokenizer = Tokenizer.from_file(path)
    # Documents are text, never control: a literal "<|endoftext|>" inside one is encoded as
    # plain bytes, so only the delimiters we insert mark document boundaries.
    tokenizer.encode_special_tokens = True
    return tokenizer


def load_tokenizer(path: Path) -> Tokenizer:
    """Load tokenizer.json once per process (keyed by mtime too: a retrained file is reloaded)."""
    return _load(str(path), os.stat(path).st_mtime_ns)


def encode(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of each text, without delimiters (ids only: no offsets are computed)."""
    return [enc.ids for enc in tokenizer.encode_batch_fast(texts, add_special_tokens=False)]


def decode(tokenizer: Tokenizer, ids: list[int]) -> str:
    """Text of token ids; placeholders are kept and `<|endoftext|>` delimiters dropped."""
    return tokenizer.decode(ids, skip_special_tokens=True)


def is_val(doc_id: str, seed: int, val_fraction: float) -> bool:
    """Seeded hash of the document id, read as a number in [0, 1): val when below the share."""
    digest = hashlib.blake2b(f"{seed}\x00{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64 < val_fraction


def encode_shard(
    shard_path: Path, tokenizer_path: Path, out_dir: Path, name: str, cfg: TokenizerConfig, seed: int
) -> dict:
    """Encode one Parquet shard to `out_dir/{train,val}-{name}.bin`.

    Returns {train,val}_{docs,tokens,bytes}: tokens include each document's delimiter, bytes are
    the UTF-8 bytes of the texts.
    """
    tokenizer = load_tokenizer(tokenizer_path)
    # Per split: token arrays (delimiter included) and document lengths in tokens, batch by batch.
    chunks: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    lengths: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    stats = {f"{s}_{key}": 0 for s in SPLITS for key in ("docs", "tokens", "bytes")}
    for batch in read_batches(shard_path, cfg.batch_size, ["id", "text"]):
        ids = encode(tokenizer, batch.column("text").to_pylist())
        lens = np.fromiter((len(x) + 1 for x in ids), dtype=np.int64, count=len(ids))  # +1: delimiter
        flat = np.fromiter(_with_delimiters(ids), dtype=np.uint32, count=int(lens.sum()))
        val = np.array([is_val(d, seed, cfg.val_fraction) for d in batch.column("id").to_pylist()], dtype=bool)
        nbytes = pc.binary_length(batch.column("text")).to_numpy(zero_copy_only=False)
        for split, mask in (("train", ~val), ("val", val)):
            chunks[split].append(flat[np.repeat(mask, lens)])
            lengths[split].append(lens[mask])
            stats[f"{split}_docs"] += int(mask.sum())
            stats[f"{split}_bytes"] += int(nbytes[mask].sum())

    out_dir.mkdir(parents=True, exist_ok=True)
    vocab_size = tokenizer.get_vocab_size()
    for split in SPLITS:
        tokens = np.concatenate(chunks[split]) if chunks[split] else np.zeros(0, dtype=np.uint32)
        lens = np.concatenate(lengths[split]) if lengths[split] else np.zeros(0, dtype=np.int64)
        offsets = np.cumsum(lens) - lens  # each document's start
        token_file.write_tokens(out_dir / f"{split}-{name}.bin", tokens, offsets, vocab_size)
        stats[f"{split}_tokens"] = len(tokens)
    return stats


def _with_delimiters(ids: list[list[int]]) -> Iterator[int]:
    for doc in ids:
        yield EOT_ID
        yield from doc

