"""Encode one corpus shard into train/val token shards (llm.c `.bin`, see token_file.py).

Every document becomes `<|endoftext|>` followed by its tokens: llm.c's convention, the delimiter
starts each document, so a model sees "new document" before the first token it must predict.
Documents go to train or val by a seeded hash of their id: the split is stable across reruns,
shard counts and worker layouts, and a document never lands on both sides.

Stats count UTF-8 bytes of the original texts per split, so that bits-per-byte
(= summed loss in nats / ln 2 / bytes) compares models across tokenizers. Per language (the
`lang` column, "und" without one) they count documents, bytes, tokens and whitespace-separated
words; the count of every token id goes to `_counts/{name}.npy` for the stage's vocabulary
statistics (stats.py).
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tokenizers import Tokenizer

from pipeline.config import TokenizerConfig
from pipeline.shards import atomic_path
from pipeline.stage import ShardContext, StageResult
from pipeline.tokenizer import token_file
from pipeline.tokenizer.mixture import ENCODED
from pipeline.tokenizer.train import EOT_ID, has_lang, hash_unit, read_batches

SPLITS = ("train", "val")
NO_LANG = "und"  # BCP 47 "undetermined": documents without a language label


# Words whose BPE merges a worker remembers. tokenizers' default, 10,000, stops remembering
# after the first 10,000 distinct words, and multilingual text has many more (sample_data/ alone
# has hundreds of thousands); at 100,000 the stage runs fewer instructions (callgrind) for tens
# of MB more per worker. Output is the same: the cache holds each word's merge result.
BPE_CACHE_WORDS = 100_000


@lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int) -> Tokenizer:
    tokenizer = Tokenizer.from_file(path)
    # Documents are text, never control: a literal "<|endoftext|>" inside one is encoded as
    # plain bytes, so only the delimiters we insert mark document boundaries.
    tokenizer.encode_special_tokens = True
    tokenizer.model._resize_cache(BPE_CACHE_WORDS)
    return tokenizer


def load_tokenizer(path: Path) -> Tokenizer:
    """Load tokenizer.json once per process (keyed by mtime too: a retrained file is reloaded)."""
    return _load(str(path), os.stat(path).st_mtime_ns)


def encode(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of each text, without delimiters.

    `encode_batch_fast`: the same ids as `encode_batch` without tracking each token's character
    offsets, which we never read: fewer instructions (callgrind), a little less CPU time
    (bench/results/tokenizer.md measures the stage against both).
    """
    return [enc.ids for enc in tokenizer.encode_batch_fast(texts, add_special_tokens=False)]


@contextmanager
def library_threads(parallel: bool) -> Iterator[None]:
    """`encode_batch` on every core (tokenizers' rayon pool), or on the calling thread alone.

    When several shard jobs encode at once, each worker process's rayon pool would start a thread
    per core: 2 processes x 2 threads on 2 cores, and the switching cost the stage 12% of raw
    `encode_batch`'s throughput (bench/tokenizer.py). tokenizers reads TOKENIZERS_PARALLELISM at
    each call, so the setting can change per job; the previous value comes back afterwards, so a
    global step in the same process (tokenizer training) keeps its threads.
    """
    before = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if parallel else "false"
    try:
        yield
    finally:
        if before is None:
            del os.environ["TOKENIZERS_PARALLELISM"]
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = before


def encoded_batches(
    tokenizer: Tokenizer, batches: Iterable[pa.RecordBatch], parallel: bool = True
) -> Iterator[tuple[pa.RecordBatch, list[list[int]]]]:
    """(batch, token ids of its texts), the next batch encoding in a thread while the caller works.

    `encode_batch` releases the GIL: encoding batch k+1 while the caller splits and counts batch
    k keeps every core busy, where a plain loop left all but one idle during our bookkeeping and
    reached little more than half the raw `encode_batch` throughput. Two batches in flight on
    every core measured no faster than one (bench/results/tokenizer.md has the stage's figures).
    """
    with library_threads(parallel), ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for batch in batches:
            future = pool.submit(encode, tokenizer, batch.column("text").to_pylist())
            if pending is not None:
                yield pending[0], pending[1].result()
            pending = (batch, future)
        if pending is not None:
            yield pending[0], pending[1].result()


def word_counts(text: pa.Array) -> pa.Array:
    """Whitespace-separated words per document, as Python's str.split() counts them."""
    trimmed = pc.utf8_trim_whitespace(text)
    n = pc.list_value_length(pc.utf8_split_whitespace(trimmed))
    return pc.subtract(n, pc.cast(pc.equal(trimmed, ""), n.type))  # "" splits into [""]


def decode(tokenizer: Tokenizer, ids: list[int]) -> str:
    """Text of token ids; placeholders are kept and `<|endoftext|>` delimiters dropped."""
    return tokenizer.decode(ids, skip_special_tokens=True)


def is_val(doc_id: str, seed: int, val_fraction: float) -> bool:
    """Seeded hash of the document id, read as a number in [0, 1): val when below the share."""
    return hash_unit(doc_id, seed) < val_fraction


def counts_path(out_dir: Path, name: str) -> Path:
    return out_dir / "_counts" / f"{name}.npy"


def with_delimiters(ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, lengths): the documents' ids each preceded by EOT_ID, flat; lengths include it.

    `array.fromlist` converts a list of ints in one C loop, several times faster than `np.fromiter`
    over the chained lists (a visible share of the stage's instructions); numpy reads the buffer.
    """
    lens = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)) + 1  # +1: the delimiter
    flat = array("I")  # C unsigned int: numpy's uintc, 32 bits
    for doc in ids:
        flat.append(EOT_ID)
        flat.fromlist(doc)
    return np.frombuffer(flat, dtype=np.uintc), lens


def encode_shard(
    shard_path: Path,
    tokenizer_path: Path,
    out_dir: Path,
    name: str,
    cfg: TokenizerConfig,
    seed: int,
    parallel: bool = True,
) -> dict:
    """Encode one Parquet shard, streamed batch by batch (see `encode_batches`)."""
    columns = ["id", "text", "lang"] if has_lang(shard_path) else ["id", "text"]
    batches = read_batches(shard_path, cfg.batch_size, columns)
    return encode_batches(batches, tokenizer_path, out_dir, name, cfg, seed, parallel)


def encode_step(table: pa.Table, ctx: ShardContext) -> StageResult:
    """Shard step of the tokenizer stage: the shard encoded with the tokenizer the build trained;
    its training tokens go to `_encoded/` for the mixture (mixture.py), its validation tokens
    to the stage's folder."""
    cfg: TokenizerConfig = ctx.config
    columns = ["id", "text", "lang"] if "lang" in table.column_names else ["id", "text"]
    batches = table.select(columns).to_batches(max_chunksize=cfg.batch_size)
    train_dir = ctx.out_dir / ENCODED
    stats = encode_batches(
        batches,
        ctx.artifacts["tokenizer_train"],
        ctx.out_dir,
        ctx.shard,
        cfg,
        ctx.seed,
        not ctx.shares_cores,
        train_dir,
    )
    files = [
        train_dir / f"train-{ctx.shard}.bin",
        ctx.out_dir / f"val-{ctx.shard}.bin",
        counts_path(ctx.out_dir, ctx.shard),
    ]
    return StageResult(extra=stats, files=files)


def encode_batches(
    batches: Iterable[pa.RecordBatch],
    tokenizer_path: Path,
    out_dir: Path,
    name: str,
    cfg: TokenizerConfig,
    seed: int,
    parallel: bool = True,
    train_dir: Path | None = None,
) -> dict:
    """Encode one shard's batches to `out_dir/{train,val}-{name}.bin` (+ index, + token counts;
    the train split into `train_dir` when given).

    `parallel`: encode on every core (the job has the machine), else on one thread (other shard
    jobs run beside it; see `library_threads`).

    Returns {train,val}_{docs,tokens,bytes} (tokens include each document's delimiter, bytes are
    the UTF-8 bytes of the texts) and `langs`: {lang: {docs, bytes, tokens, words}} over both
    splits, tokens without delimiters (documents without a `lang` column count as "und").
    """
    tokenizer = load_tokenizer(tokenizer_path)
    vocab_size = tokenizer.get_vocab_size()
    # Per split: token arrays (delimiter included) and document lengths in tokens, batch by batch.
    chunks: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    lengths: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    stats = {f"{s}_{key}": 0 for s in SPLITS for key in ("docs", "tokens", "bytes")}
    token_counts = np.zeros(vocab_size, dtype=np.int64)
    per_lang: list[pa.Table] = []
    for batch, ids in encoded_batches(tokenizer, batches, parallel):
        text = batch.column("text")
        flat, lens = with_delimiters(ids)
        token_counts += np.bincount(flat, minlength=vocab_size)
        val = np.array([is_val(d, seed, cfg.val_fraction) for d in batch.column("id").to_pylist()], dtype=bool)
        nbytes = pc.binary_length(text).to_numpy(zero_copy_only=False)
        for split, mask in (("train", ~val), ("val", val)):
            chunks[split].append(flat[np.repeat(mask, lens)])
            lengths[split].append(lens[mask])
            stats[f"{split}_docs"] += int(mask.sum())
            stats[f"{split}_bytes"] += int(nbytes[mask].sum())
        has_lang_column = "lang" in batch.schema.names
        lang = pc.fill_null(batch.column("lang"), NO_LANG) if has_lang_column else pa.array([NO_LANG] * len(text))
        per_lang.append(
            pa.table(
                {
                    "lang": lang,
                    "bytes": nbytes,
                    "tokens": lens - 1,
                    "words": word_counts(text),
                }
            )
        )
    token_counts[EOT_ID] = 0  # our delimiters, not text

    counts_file = counts_path(out_dir, name)
    with atomic_path(counts_file) as tmp, open(tmp, "wb") as f:
        np.save(f, token_counts)
    for split in SPLITS:  # the .bin files last: their presence means the shard is complete
        tokens = np.concatenate(chunks[split]) if chunks[split] else np.zeros(0, dtype=np.uint32)
        lens = np.concatenate(lengths[split]) if lengths[split] else np.zeros(0, dtype=np.int64)
        offsets = np.cumsum(lens) - lens  # each document's start
        folder = train_dir if split == "train" and train_dir is not None else out_dir
        token_file.write_tokens(folder / f"{split}-{name}.bin", tokens, offsets, vocab_size)
        stats[f"{split}_tokens"] = len(tokens)
    stats["langs"] = _language_totals(per_lang)
    return stats


def _language_totals(tables: list[pa.Table]) -> dict[str, dict[str, int]]:
    if not tables:
        return {}
    keys = ("bytes", "tokens", "words")
    grouped = pa.concat_tables(tables).group_by("lang").aggregate([("lang", "count"), *((k, "sum") for k in keys)])
    return {
        row["lang"]: {"docs": row["lang_count"], **{k: row[f"{k}_sum"] for k in keys}}
        for row in sorted(grouped.to_pylist(), key=lambda r: r["lang"])
    }
