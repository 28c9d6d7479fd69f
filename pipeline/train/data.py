"""Random training windows from memory-mapped token shards.

Each batch row is a window of block_size+1 consecutive tokens at a random offset: x is the
first block_size, y the same shifted by one. Windows cross document boundaries; the
<|endoftext|> token that opens every document tells the model where one ends (as in GPT-2).
The corpus is never read into RAM: only the B windows of a batch are copied out of the memmaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.errors import InputError
from pipeline.tokenizer.token_file import read_tokens


class TokenBatches:
    def __init__(self, paths: Sequence[Path], block_size: int, batch_size: int, seed: int):
        self.block_size = block_size
        self.batch_size = batch_size
        # A shard with no full window cannot give a sample; it is skipped, not an error.
        shards = [read_tokens(Path(p)) for p in sorted(paths)]
        self.shards = [s for s in shards if len(s) > block_size + 1]
        if not self.shards:
            raise InputError(
                f"tokens/: no token shard has more than block_size+1 ({block_size + 1}) tokens; "
                "lower pretrain.block_size or give more text"
            )
        # Choosing a shard in proportion to its size makes every token equally likely to be
        # drawn, as if the shards were one file.
        sizes = np.array([len(s) for s in self.shards], dtype=np.float64)
        self.shard_p = sizes / sizes.sum()
        self.rng = np.random.default_rng(seed)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """x, y: int64 (batch_size, block_size); y[b, t] is the token after x[b, t]."""
        window = self.block_size + 1
        which = self.rng.choice(len(self.shards), size=self.batch_size, p=self.shard_p)
        rows = []
        for i in which:
            shard = self.shards[i]
            start = int(self.rng.integers(0, len(shard) - window + 1))
            rows.append(np.asarray(shard[start : start + window], dtype=np.int64))
        batch = np.stack(rows)  # (B, T+1)
        return torch.from_numpy(batch[:, :-1].copy()), torch.from_numpy(batch[:, 1:].copy())

    def prefix_lengths(self) -> torch.Tensor:
        """int64 (batch_size,): a prefix decoder's prefix length per row, uniform in [0, block_size),
        drawn from the sampler's generator so that a resumed run draws the same ones."""
        return torch.from_numpy(self.rng.integers(0, self.block_size, size=self.batch_size))

    def state_dict(self) -> dict[str, Any]:
        """The sampler's position, saved in checkpoints so a resumed run draws the same batches."""
        return self.rng.bit_generator.state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state
