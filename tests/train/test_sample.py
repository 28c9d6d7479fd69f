"""`corpus sample`: the build's tokenizer and checkpoint continue a prompt, reproducibly."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from flows.cli import app
from pipeline.config import PretrainConfig, TokenizerConfig
from pipeline.tokenizer.encode import encode, load_tokenizer, with_delimiters
from pipeline.tokenizer.token_file import write_tokens
from pipeline.tokenizer.train import train_tokenizer
from pipeline.train.loop import train


@pytest.fixture(scope="module")
def build_dir(shared_data: Path, tmp_path_factory) -> Path:
    """tokenizer/ and model/ of a build: the pipeline's BPE and a few training steps on Tiny Shakespeare."""
    text = (shared_data / "corpora" / "tinyshakespeare.txt").read_text(encoding="utf-8")[:200_000]
    speeches = [s for s in text.split("\n\n") if s.strip()]
    build = tmp_path_factory.mktemp("build")
    shard = build / "part-00000.parquet"
    pq.write_table(pa.table({"id": [str(i) for i in range(len(speeches))], "text": speeches}), shard)
    tokenizer_path = build / "tokenizer" / "tokenizer.json"
    vocab = train_tokenizer([shard], TokenizerConfig(vocab_size=400), tokenizer_path)["vocab_size"]
    flat, lens = with_delimiters(encode(load_tokenizer(tokenizer_path), speeches))
    (build / "tokens").mkdir()
    for split in ("train", "val"):
        write_tokens(build / "tokens" / f"{split}-00000.bin", flat, np.cumsum(lens) - lens, vocab)
    cfg = PretrainConfig(
        n_layer=1, n_head=2, n_embd=32, block_size=32, max_steps=20, eval_interval=20, eval_batches=1, threads=1
    )
    train(build / "tokens", build / "model", cfg, vocab_size=vocab, seed=1)
    return build


def sample(*args: str):
    return CliRunner().invoke(app, ["sample", *args])


def test_sample_continues_the_prompt_and_the_seed_fixes_the_text(build_dir):
    first = sample(str(build_dir), "--prompt", "ROMEO:", "--max-new-tokens", "30", "--seed", "3")
    again = sample(str(build_dir), "--prompt", "ROMEO:", "--max-new-tokens", "30", "--seed", "3")
    other = sample(str(build_dir), "--prompt", "ROMEO:", "--max-new-tokens", "30", "--seed", "4")
    assert first.exit_code == 0, first.output
    assert first.output.startswith("ROMEO:") and len(first.output) > len("ROMEO:\n")
    assert first.output == again.output != other.output


def test_sample_without_a_trained_model_is_a_one_line_error(build_dir, tmp_path):
    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "tokenizer" / "tokenizer.json").write_bytes((build_dir / "tokenizer" / "tokenizer.json").read_bytes())
    result = sample(str(tmp_path), "--prompt", "ROMEO:")
    assert result.exit_code == 2
    assert "no checkpoint" in result.output and len(result.output.strip().splitlines()) == 1
