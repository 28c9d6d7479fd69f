"""Corpus encoding: llm.c token shards that read back as the direct encoding, a stable split."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer

from pipeline.tokenizer import token_file
from pipeline.tokenizer.encode import decode, encode, encode_shard, is_val, load_tokenizer
from pipeline.tokenizer.stats import summarize
from pipeline.tokenizer.train import EOT_ID

SEED = 1337


@pytest.fixture(scope="module")
def encoded(trained, corpus_shard, tok_cfg, tmp_path_factory) -> tuple[Path, dict]:
    """(output dir, stats) of the training shard encoded once."""
    out = tmp_path_factory.mktemp("tokens")
    return out, encode_shard(corpus_shard, trained[0], out, "00000", tok_cfg, SEED)


def test_each_split_reads_back_as_the_direct_encoding_of_its_documents(encoded, trained, corpus_shard, tok_cfg):
    """Direct: the library as loaded plainly, with its default BPE cache and the offset-tracking
    `encode_batch`, so the stage's faster path (no offsets, a larger cache) must give the same ids."""
    out, _ = encoded
    table = pq.read_table(corpus_shard)
    plain = Tokenizer.from_file(str(trained[0]))
    plain.encode_special_tokens = True
    direct = [e.ids for e in plain.encode_batch(table["text"].to_pylist(), add_special_tokens=False)]
    for split, want_val in (("train", False), ("val", True)):
        in_split = [is_val(i, SEED, tok_cfg.val_fraction) == want_val for i in table["id"].to_pylist()]
        docs = [ids for ids, keep in zip(direct, in_split) if keep]
        expected = [t for ids in docs for t in (EOT_ID, *ids)]
        path = out / f"{split}-00000.bin"
        assert token_file.read_tokens(path).tolist() == expected
        starts = np.cumsum([0] + [len(ids) + 1 for ids in docs])[:-1]
        assert token_file.read_doc_offsets(path).tolist() == starts.tolist()


def test_every_document_starts_with_the_delimiter_and_decodes_to_its_text(encoded, trained, corpus_shard, tok_cfg):
    out, _ = encoded
    tokenizer = load_tokenizer(trained[0])
    tokens = token_file.read_tokens(out / "val-00000.bin")
    offsets = token_file.read_doc_offsets(out / "val-00000.bin").tolist()
    table = pq.read_table(corpus_shard).to_pylist()
    texts = [r["text"] for r in table if is_val(r["id"], SEED, tok_cfg.val_fraction)]
    for text, start, end in zip(texts, offsets, offsets[1:] + [len(tokens)]):
        assert tokens[start] == EOT_ID
        assert decode(tokenizer, tokens[start:end].tolist()) == text


def test_bin_header_is_llm_c_magic_version_1_and_count(encoded):
    out, stats = encoded
    for split in ("train", "val"):
        path = out / f"{split}-00000.bin"
        header = np.fromfile(path, dtype="<i4", count=256)
        assert header[:3].tolist() == [20240520, 1, stats[f"{split}_tokens"]]
        assert not header[3:].any()
        assert path.stat().st_size == 256 * 4 + 2 * stats[f"{split}_tokens"]  # uint16 tokens


def test_stats_count_documents_tokens_and_utf8_bytes_per_split(encoded, corpus_shard, tok_cfg):
    _, stats = encoded
    rows = pq.read_table(corpus_shard).to_pylist()
    for split, want_val in (("train", False), ("val", True)):
        mine = [r for r in rows if is_val(r["id"], SEED, tok_cfg.val_fraction) == want_val]
        assert stats[f"{split}_docs"] == len(mine)
        assert stats[f"{split}_bytes"] == sum(len(r["text"].encode("utf-8")) for r in mine)
    assert stats["train_docs"] + stats["val_docs"] == len(rows)


def test_split_share_is_close_to_val_fraction_and_depends_on_the_seed(corpus_shard, tok_cfg):
    ids = pq.read_table(corpus_shard)["id"].to_pylist()
    val = [is_val(i, SEED, tok_cfg.val_fraction) for i in ids]
    assert abs(sum(val) / len(ids) - tok_cfg.val_fraction) < 0.02  # ~3,000 draws: sd ~0.005
    assert val != [is_val(i, SEED + 1, tok_cfg.val_fraction) for i in ids]


@pytest.mark.parametrize("parallel", [True, False], ids=["all-cores", "one-thread"])
def test_encoding_again_gives_byte_identical_shards(
    encoded, trained, corpus_shard, tok_cfg, tmp_path, parallel, monkeypatch
):
    """On every core or on one thread (several shard workers at once): the same bytes, and the
    process's TOKENIZERS_PARALLELISM is left as it was for the steps that follow."""
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")
    out, stats = encoded
    assert encode_shard(corpus_shard, trained[0], tmp_path, "00000", tok_cfg, SEED, parallel=parallel) == stats
    for name in ("train-00000.bin", "train-00000.idx.npy", "val-00000.bin", "val-00000.idx.npy"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()
    assert os.environ["TOKENIZERS_PARALLELISM"] == "true"


def test_an_empty_split_is_still_a_valid_empty_shard(trained, fortunes, tok_cfg, tmp_path):
    row = next(r for r in fortunes if not is_val(r["id"], SEED, tok_cfg.val_fraction))
    shard = tmp_path / "one.parquet"
    pq.write_table(pa.table({"id": [row["id"]], "text": [row["text"]]}), shard)
    stats = encode_shard(shard, trained[0], tmp_path, "one", tok_cfg, SEED)
    assert (stats["val_docs"], stats["val_tokens"], stats["val_bytes"]) == (0, 0, 0)
    assert len(token_file.read_tokens(tmp_path / "val-one.bin")) == 0
    assert len(token_file.read_doc_offsets(tmp_path / "val-one.bin")) == 0
    assert stats["train_docs"] == 1


def test_a_vocabulary_past_65535_writes_uint32_tokens_with_version_2(trained, fortunes, tok_cfg, tmp_path):
    # A real trained tokenizer grown past uint16 with added tokens; documents that use the
    # highest ids must read back exactly through numpy.memmap.
    big = Tokenizer.from_file(str(trained[0]))
    big.add_tokens([f"<extra_{i}>" for i in range(65_000)])
    assert big.get_vocab_size() > 65_536
    big.save(str(tmp_path / "big.json"))
    rows = fortunes[:40]
    texts = [f"{r['text']} <extra_{64_999 - i}>" for i, r in enumerate(rows)]
    shard = tmp_path / "big.parquet"
    pq.write_table(pa.table({"id": [r["id"] for r in rows], "text": texts}), shard)
    stats = encode_shard(shard, tmp_path / "big.json", tmp_path, "big", tok_cfg, SEED)

    tokenizer = load_tokenizer(tmp_path / "big.json")
    direct = dict(zip([r["id"] for r in rows], encode(tokenizer, texts)))
    train_ids = [r["id"] for r in rows if not is_val(r["id"], SEED, tok_cfg.val_fraction)]
    path = tmp_path / "train-big.bin"
    header = np.fromfile(path, dtype="<i4", count=256)
    assert header[:3].tolist() == [20240520, 2, stats["train_tokens"]]
    assert path.stat().st_size == 256 * 4 + 4 * stats["train_tokens"]
    tokens = token_file.read_tokens(path)
    assert isinstance(tokens, np.memmap) and tokens.dtype == np.dtype("<u4")
    assert tokens.tolist() == [t for i in train_ids for t in (EOT_ID, *direct[i])]
    assert int(tokens.max()) > 65_535


def test_token_shards_are_plain_numpy_memmaps_at_offset_1024(encoded):
    out, stats = encoded
    path = out / "train-00000.bin"
    raw = np.memmap(path, dtype="<u2", mode="r", offset=1024)  # what llm.c / modded-nanogpt do
    assert len(raw) == stats["train_tokens"]
    assert raw.tolist() == token_file.read_tokens(path).tolist()
    offsets = token_file.read_doc_offsets(path)
    assert offsets.dtype == np.int64 and (raw[offsets] == EOT_ID).all()


def test_language_stats_add_up_to_the_split_totals(encoded, tmp_path):
    out, stats = encoded
    langs = stats["langs"]
    assert sum(r["docs"] for r in langs.values()) == stats["train_docs"] + stats["val_docs"]
    assert sum(r["bytes"] for r in langs.values()) == stats["train_bytes"] + stats["val_bytes"]
    docs = stats["train_docs"] + stats["val_docs"]
    assert sum(r["tokens"] for r in langs.values()) == stats["train_tokens"] + stats["val_tokens"] - docs


def test_each_language_gets_its_own_bytes_per_token(trained, fortunes, tok_cfg, tmp_path):
    rows = [r for r in fortunes if r["lang"] == "de"][:200] + [r for r in fortunes if r["lang"] == "ru"][:200]
    shard = tmp_path / "langs.parquet"
    pq.write_table(
        pa.table({"id": [r["id"] for r in rows], "text": [r["text"] for r in rows], "lang": [r["lang"] for r in rows]}),
        shard,
    )
    stats = encode_shard(shard, trained[0], tmp_path, "langs", tok_cfg, SEED)
    summary = summarize([stats | {"name": "langs"}], trained[0], tmp_path)
    de, ru = summary["languages"]["de"], summary["languages"]["ru"]
    assert de["docs"] + ru["docs"] == len(rows)
    # Cyrillic takes two UTF-8 bytes a letter: more bytes per token than German.
    assert ru["bytes_per_token"] > de["bytes_per_token"] > 1
    assert de["tokens_per_word"] > 1


def test_corpus_stats_count_vocabulary_use_fallback_bytes_and_no_unknowns(encoded, trained, tok_cfg):
    out, stats = encoded
    summary = summarize([stats | {"name": "00000"}], trained[0], out)
    docs = stats["train_docs"] + stats["val_docs"]
    assert summary["text_tokens"] == stats["train_tokens"] + stats["val_tokens"] - docs
    assert 0.5 < summary["vocab_used_share"] <= 1  # trained on this very text
    assert summary["vocab_used"] <= tok_cfg.vocab_size
    assert summary["unknown_rate"] == 0  # byte-level: there is no unknown token
    assert 0 < summary["byte_fallback_rate"] < 0.5  # UDHR in rare scripts falls back to bytes
    assert len(summary["longest_tokens"]) == 10
