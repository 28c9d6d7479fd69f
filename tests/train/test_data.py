"""Training windows from token shards: shapes, the one-token shift, shards too short to sample."""

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.errors import InputError
from pipeline.tokenizer.token_file import write_tokens
from pipeline.train.data import TokenBatches

SHAKESPEARE = Path(__file__).resolve().parents[2] / "../shared/data/corpora/tinyshakespeare.txt"


@pytest.fixture(scope="module")
def text_ids() -> np.ndarray:
    """The first 20,000 characters of Tiny Shakespeare as byte ids."""
    if not SHAKESPEARE.exists():
        pytest.skip("needs ../shared/data")
    return np.frombuffer(SHAKESPEARE.read_bytes()[:20_000], dtype=np.uint8).astype(np.int64)


def shard(path: Path, ids: np.ndarray) -> Path:
    write_tokens(path, ids, np.array([0]), vocab_size=256)
    return path


def test_batches_are_windows_of_the_text_with_y_one_token_ahead(text_ids, tmp_path):
    batches = TokenBatches([shard(tmp_path / "train-0.bin", text_ids)], block_size=32, batch_size=5, seed=0)
    x, y = batches.next_batch()
    assert x.shape == y.shape == (5, 32)
    assert x.dtype == y.dtype == torch.int64
    text = text_ids.astype(np.uint8).tobytes()
    for row_x, row_y in zip(x.numpy(), y.numpy()):
        assert (row_y[:-1] == row_x[1:]).all()
        window = np.append(row_x, row_y[-1]).astype(np.uint8).tobytes()  # block_size+1 tokens
        assert window in text


def test_same_seed_draws_the_same_batches_and_the_state_resumes_the_stream(text_ids, tmp_path):
    paths = [shard(tmp_path / "train-0.bin", text_ids)]
    a, b = TokenBatches(paths, 16, 4, seed=3), TokenBatches(paths, 16, 4, seed=3)
    assert (a.next_batch()[0] == b.next_batch()[0]).all()
    saved = a.state_dict()
    expected = a.next_batch()[0]
    b.load_state_dict(saved)
    assert (b.next_batch()[0] == expected).all()


def test_shards_shorter_than_a_window_are_skipped(text_ids, tmp_path):
    short = shard(tmp_path / "train-0.bin", text_ids[:20])
    long = shard(tmp_path / "train-1.bin", text_ids)
    batches = TokenBatches([short, long], block_size=32, batch_size=4, seed=0)
    assert len(batches.shards) == 1
    assert batches.next_batch()[0].shape == (4, 32)


def test_no_shard_long_enough_is_a_clear_input_error(text_ids, tmp_path):
    short = shard(tmp_path / "train-0.bin", text_ids[:20])
    with pytest.raises(InputError, match="no token shard has more than block_size"):
        TokenBatches([short], block_size=32, batch_size=4, seed=0)


def test_uint32_shards_are_read_as_memmaps_not_loaded(text_ids, tmp_path):
    big_ids = text_ids + 70_000  # past uint16: written as llm.c version 2
    path = tmp_path / "train-0.bin"
    write_tokens(path, big_ids, np.array([0]), vocab_size=70_256)
    batches = TokenBatches([path], block_size=16, batch_size=2, seed=0)
    assert isinstance(batches.shards[0], np.memmap)
    x, _ = batches.next_batch()
    assert int(x.min()) >= 70_000
