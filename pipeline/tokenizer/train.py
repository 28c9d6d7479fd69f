"""Train a byte-level BPE tokenizer (GPT-2 style) on the text of the final corpus shards.

Byte-level means every string is representable (no unknown token, no normaliser), so
`decode(encode(text)) == text` for any text. The text is streamed shard by shard, batch by
batch: training holds the word counts in memory, never the corpus.

Special tokens, in fixed id order:
- `<|endoftext|>` (id 0) separates documents. It is *special*: the encoder sets
  `encode_special_tokens`, so a document that happens to contain the literal string cannot forge
  a document boundary (see encode.py).
- the privacy stage's placeholders (`<PERSON>`, ...), one token each. They are ordinary added
  tokens (special=False): they are text the model reads and writes like any word, and must be
  matched even when special tokens are not.

Determinism: training with the same shards gives a byte-identical tokenizer.json, whatever the
thread count (rayon) or the process's hash seed; tests/tokenizer/test_tokenizer_train.py checks
it across processes and thread counts.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from pipeline.config import TokenizerConfig
from pipeline.errors import InputError

EOT = "<|endoftext|>"
EOT_ID = 0
# The privacy stage writes these in place of the text it removes (its entity names in <>).
PLACEHOLDERS = (
    "<EMAIL_ADDRESS>",
    "<PHONE_NUMBER>",
    "<CREDIT_CARD>",
    "<IBAN_CODE>",
    "<IP_ADDRESS>",
    "<US_SSN>",
    "<PERSON>",
    "<LOCATION>",
    "<NRP>",
    "<URL>",
)


def read_batches(path: Path, batch_size: int, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """Stream a shard's columns batch by batch; bad files and null or non-string text are InputErrors."""
    row = 0
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=columns):
            text = batch.column("text")
            if not pa.types.is_string(text.type) and not pa.types.is_large_string(text.type):
                raise InputError(f"{path}: column text is {text.type}, not string. Fix the shard's schema.")
            if text.null_count:
                bad = row + pc.index(pc.is_null(text), True).as_py()
                raise InputError(f"{path}: row {bad}: null text; the stages before must drop or fill it.")
            row += batch.num_rows
            yield batch
    except (OSError, KeyError, pa.ArrowException) as exc:  # unreadable file or missing column
        raise InputError(f"{path}: cannot read columns {', '.join(columns)} ({exc}). Check the shard.") from None


def _texts(shard_paths: Sequence[Path], batch_size: int, counts: dict[str, int]) -> Iterator[list[str]]:
    """Document texts of all shards, a batch at a time, tallying documents and UTF-8 bytes."""
    for path in shard_paths:
        for batch in read_batches(path, batch_size, ["text"]):
            text = batch.column("text")
            counts["documents"] += len(text)
            counts["bytes"] += pc.sum(pc.binary_length(text)).as_py() or 0
            yield text.to_pylist()


def train_tokenizer(shard_paths: Sequence[Path], cfg: TokenizerConfig, out_path: Path) -> dict:
    """Train byte-level BPE on the `text` column of the shards; write tokenizer.json atomically."""
    if not shard_paths:
        raise InputError("tokenizer: no shards to train on (every document was removed upstream?).")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, seen or not
        special_tokens=[EOT, *PLACEHOLDERS],  # ids 0..10 in this order
        show_progress=False,
    )
    counts = {"documents": 0, "bytes": 0}
    t0 = time.perf_counter()
    # Sorted: the same set of shards gives the same run whatever order the caller listed them in.
    batches = _texts(sorted(shard_paths, key=str), cfg.batch_size, counts)
    tokenizer.train_from_iterator(batches, trainer=trainer)
    seconds = time.perf_counter() - t0

    # The trainer registers every token it is given as special; placeholders must not be (above).
    spec = json.loads(tokenizer.to_str())
    for added in spec["added_tokens"]:
        added["special"] = added["content"] == EOT
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    Tokenizer.from_str(json.dumps(spec)).save(str(tmp))  # the library's own file layout
    os.replace(tmp, out_path)
    return {"vocab_size": tokenizer.get_vocab_size(), **counts, "seconds": round(seconds, 3)}
