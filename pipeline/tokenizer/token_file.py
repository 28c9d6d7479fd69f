"""Token shards in the llm.c / modded-nanogpt `.bin` format, so those trainers read ours as is.

Layout: a header of 256 little-endian int32 (magic 20240520, version, token count, zeros),
then the tokens: uint16 (version 1) or uint32 (version 2, vocabularies past 65,535 tokens).
Beside each `X.bin` an `X.idx.npy` holds int64 document start offsets (in tokens).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.shards import atomic_path

MAGIC = 20240520
HEADER_INTS = 256
VERSION_UINT16 = 1
VERSION_UINT32 = 2


def write_tokens(path: Path, tokens: np.ndarray, doc_offsets: np.ndarray, vocab_size: int) -> None:
    """Write one token shard and its document index atomically (temp name, then rename)."""
    version, dtype = (VERSION_UINT16, np.uint16) if vocab_size <= 65_536 else (VERSION_UINT32, np.uint32)
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:3] = (MAGIC, version, len(tokens))
    with atomic_path(index_path(path)) as tmp, open(tmp, "wb") as f:
        np.save(f, np.asarray(doc_offsets, dtype=np.int64))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # the .bin last: its presence means the shard is complete
        f.write(header.tobytes())
        f.write(np.asarray(tokens, dtype=dtype).astype(np.dtype(dtype).newbyteorder("<")).tobytes())


def index_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".bin") + ".idx.npy")


def read_tokens(path: Path) -> np.ndarray:
    """Memory-map the tokens of one shard (never loads the file into RAM)."""
    header = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
    if len(header) < HEADER_INTS or header[0] != MAGIC:
        raise ValueError(f"{path}: not a token shard (bad magic); rebuild the tokens/ stage.")
    version, count = int(header[1]), int(header[2])
    dtype = {VERSION_UINT16: "<u2", VERSION_UINT32: "<u4"}.get(version)
    if dtype is None:
        raise ValueError(f"{path}: unknown token shard version {version}.")
    return np.memmap(path, dtype=dtype, mode="r", offset=HEADER_INTS * 4, shape=(count,))


def read_doc_offsets(path: Path) -> np.ndarray:
    return np.load(index_path(path))
