"""A small real-text training shard and a tokenizer trained on it, shared by the tokenizer tests.

Text: Debian fortunes in seven languages and UDHR paragraphs in many scripts, from
../shared/data (see its README for sources and licences).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import TokenizerConfig
from pipeline.tokenizer.train import train_tokenizer

# Small enough that training takes a couple of seconds, big enough for real merges.
TEST_CFG = TokenizerConfig(vocab_size=1024, val_fraction=0.1, batch_size=256)


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="session")
def tok_cfg() -> TokenizerConfig:
    return TEST_CFG


@pytest.fixture(scope="session")
def fortunes(shared_data: Path) -> list[dict]:
    return read_jsonl(shared_data / "corpora/fortunes_multilingual.jsonl")


@pytest.fixture(scope="session")
def udhr(shared_data: Path) -> list[dict]:
    return read_jsonl(shared_data / "langid/udhr_paragraphs_dev.jsonl")


@pytest.fixture(scope="session")
def corpus_shard(fortunes: list[dict], udhr: list[dict], tmp_path_factory) -> Path:
    """~3,000 documents: every 7th fortune and every 15th UDHR paragraph, in file order."""
    rows = fortunes[::7] + udhr[::15]
    table = pa.table({"id": [r["id"] for r in rows], "text": [r["text"] for r in rows]})
    path = tmp_path_factory.mktemp("tok_corpus") / "part-00000.parquet"
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="session")
def trained(corpus_shard: Path, tmp_path_factory) -> tuple[Path, dict]:
    """(tokenizer.json path, training stats)."""
    out = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    return out, train_tokenizer([corpus_shard], TEST_CFG, out)
