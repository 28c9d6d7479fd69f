"""Byte-level BPE training: lossless on every script, one token per placeholder, deterministic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import InputError
from pipeline.tokenizer.encode import decode, encode, load_tokenizer
from pipeline.tokenizer.train import EOT, EOT_ID, PLACEHOLDERS, train_tokenizer

REPO = Path(__file__).resolve().parents[2]


def assert_round_trip(tokenizer_path: Path, texts: list[str]) -> None:
    tokenizer = load_tokenizer(tokenizer_path)
    for text, ids in zip(texts, encode(tokenizer, texts)):
        assert decode(tokenizer, ids) == text


def test_udhr_in_every_script_round_trips_exactly(trained, udhr):
    first_per_declaration = list({r["code"]: r["text"] for r in reversed(udhr)}.values())
    assert len(first_per_declaration) > 500  # Latin, Cyrillic, Arabic, Devanagari, CJK, Ethiopic...
    assert_round_trip(trained[0], first_per_declaration)


def test_fortunes_with_newlines_tabs_and_quotes_round_trip_exactly(trained, fortunes):
    texts = [r["text"] for r in fortunes[3::50]]
    assert_round_trip(trained[0], texts)


def scrubbed_pii_texts(shared_data: Path) -> list[tuple[str, int]]:
    """presidio-research sentences with their PII spans replaced as the privacy stage does:
    (text, number of placeholders)."""
    out = []
    for row in map(json.loads, (shared_data / "pii/presidio_synth_dev.jsonl").open(encoding="utf-8")):
        text, n = row["text"], 0
        for span in sorted(row["spans"], key=lambda s: -s["start"]):  # right to left: offsets hold
            if f"<{span['label']}>" in PLACEHOLDERS:
                text = text[: span["start"]] + f"<{span['label']}>" + text[span["end"]:]
                n += 1
        if n:
            out.append((text, n))
    return out


def test_scrubbed_texts_round_trip_with_each_placeholder_as_one_token(trained, shared_data):
    tokenizer = load_tokenizer(trained[0])
    placeholder_ids = {tokenizer.token_to_id(p) for p in PLACEHOLDERS}
    cases = scrubbed_pii_texts(shared_data)
    assert len(cases) > 300
    for (text, n), ids in zip(cases, encode(tokenizer, [t for t, _ in cases])):
        assert decode(tokenizer, ids) == text
        assert sum(i in placeholder_ids for i in ids) == n


def test_every_placeholder_is_exactly_one_token(trained):
    tokenizer = load_tokenizer(trained[0])
    for placeholder in PLACEHOLDERS:
        assert encode(tokenizer, [placeholder]) == [[tokenizer.token_to_id(placeholder)]]


def test_endoftext_is_id_zero_and_placeholders_follow_in_order(trained, tok_cfg):
    tokenizer = load_tokenizer(trained[0])
    assert [tokenizer.token_to_id(t) for t in (EOT, *PLACEHOLDERS)] == list(range(1 + len(PLACEHOLDERS)))
    assert tokenizer.get_vocab_size() == tok_cfg.vocab_size


def test_literal_endoftext_inside_a_document_cannot_forge_a_boundary(trained, fortunes):
    # GPT-2 discussions on the web quote the delimiter; it must stay text.
    text = fortunes[0]["text"] + f"\n{EOT}\n"
    tokenizer = load_tokenizer(trained[0])
    [ids] = encode(tokenizer, [text])
    assert EOT_ID not in ids
    assert decode(tokenizer, ids) == text


def test_stats_count_every_document_and_utf8_byte(trained, corpus_shard, tok_cfg):
    table = pq.read_table(corpus_shard)
    stats = trained[1]
    assert stats["documents"] == table.num_rows
    assert stats["bytes"] == sum(len(t.encode("utf-8")) for t in table["text"].to_pylist())
    assert stats["vocab_size"] == tok_cfg.vocab_size


def test_training_twice_gives_a_byte_identical_file_across_processes_and_thread_counts(
    trained, corpus_shard, tmp_path, tok_cfg
):
    again = tmp_path / "again.json"
    train_tokenizer([corpus_shard], tok_cfg, again)
    assert again.read_bytes() == trained[0].read_bytes()

    # A fresh process has fresh hash seeds; one rayon thread changes the parallel counting.
    single = tmp_path / "single.json"
    script = (
        "import sys; from pathlib import Path; from pipeline.config import TokenizerConfig;"
        "from pipeline.tokenizer.train import train_tokenizer;"
        "train_tokenizer([Path(sys.argv[1])], TokenizerConfig.model_validate_json(sys.argv[2]), Path(sys.argv[3]))"
    )
    env = {**os.environ, "RAYON_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-c", script, str(corpus_shard), tok_cfg.model_dump_json(), str(single)]
    subprocess.run(cmd, check=True, env=env, cwd=REPO)
    assert single.read_bytes() == trained[0].read_bytes()


def test_a_shard_without_text_column_is_an_input_error_naming_the_file(tmp_path, tok_cfg):
    path = tmp_path / "part-00000.parquet"
    pq.write_table(pa.table({"id": ["a"], "body": ["Some text."]}), path)
    with pytest.raises(InputError, match="part-00000.parquet"):
        train_tokenizer([path], tok_cfg, tmp_path / "tokenizer.json")
    assert not (tmp_path / "tokenizer.json").exists()


def test_null_text_is_an_input_error_naming_the_row(tmp_path, tok_cfg):
    path = tmp_path / "part-00000.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["Some text.", None]}), path)
    with pytest.raises(InputError, match="row 1: null text"):
        train_tokenizer([path], tok_cfg, tmp_path / "tokenizer.json")
