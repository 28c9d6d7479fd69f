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
from pipeline.tokenizer.train import EOT, EOT_ID, PLACEHOLDERS, SPACED_PLACEHOLDERS, train_tokenizer

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
                text = text[: span["start"]] + f"<{span['label']}>" + text[span["end"] :]
                n += 1
        if n:
            out.append((text, n))
    return out


def test_scrubbed_texts_round_trip_with_each_placeholder_as_one_token(trained, shared_data):
    tokenizer = load_tokenizer(trained[0])
    placeholder_ids = {tokenizer.token_to_id(p) for p in PLACEHOLDERS + SPACED_PLACEHOLDERS}
    cases = scrubbed_pii_texts(shared_data)
    assert len(cases) > 300
    for (text, n), ids in zip(cases, encode(tokenizer, [t for t, _ in cases])):
        assert decode(tokenizer, ids) == text
        assert sum(i in placeholder_ids for i in ids) == n


def test_every_placeholder_is_exactly_one_token(trained):
    tokenizer = load_tokenizer(trained[0])
    for placeholder in PLACEHOLDERS:
        assert encode(tokenizer, [placeholder]) == [[tokenizer.token_to_id(placeholder)]]


def test_a_placeholder_after_a_space_takes_the_space_instead_of_a_lone_space_token(trained):
    tokenizer = load_tokenizer(trained[0])
    tokens = tokenizer.encode("Please call <PERSON> today", add_special_tokens=False).tokens
    assert " <PERSON>" in tokens and "Ġ" not in tokens
    assert "Ġ" not in tokenizer.encode("Mail <EMAIL_ADDRESS> or <URL>", add_special_tokens=False).tokens


def test_endoftext_is_id_zero_and_placeholders_follow_in_order(trained, tok_cfg):
    tokenizer = load_tokenizer(trained[0])
    order = (EOT, *PLACEHOLDERS, *SPACED_PLACEHOLDERS)
    assert [tokenizer.token_to_id(t) for t in order] == list(range(len(order)))
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


def test_gpt4_pre_tokenizer_never_merges_more_than_three_digits(corpus_shard, tok_cfg, tmp_path, udhr):
    cfg = tok_cfg.model_copy(update={"pre_tokenizer": "gpt4"})
    path = tmp_path / "gpt4.json"
    train_tokenizer([corpus_shard], cfg, path)
    tokenizer = load_tokenizer(path)
    tokens = tokenizer.encode("Article 1948: 10000000 people, 2024-12-10.", add_special_tokens=False).tokens
    assert all(sum(c.isdigit() for c in t) <= 3 for t in tokens)
    assert_round_trip(path, [r["text"] for r in udhr[::40]])


def test_configured_special_tokens_follow_the_placeholders_and_are_never_read_from_text(
    corpus_shard, tok_cfg, tmp_path
):
    cfg = tok_cfg.model_copy(update={"special_tokens": ["<|fim_prefix|>", "<|fim_suffix|>"]})
    path = tmp_path / "special.json"
    train_tokenizer([corpus_shard], cfg, path)
    tokenizer = load_tokenizer(path)
    first = 1 + 2 * len(PLACEHOLDERS)
    assert [tokenizer.token_to_id(t) for t in cfg.special_tokens] == [first, first + 1]
    [ids] = encode(tokenizer, ["code <|fim_prefix|> here"])  # in a document: plain text
    assert first not in ids and decode(tokenizer, ids) == "code <|fim_prefix|> here"
    assert decode(tokenizer, [first, *ids]) == "code <|fim_prefix|> here"  # skipped as control


def test_language_cap_samples_each_big_language_down_to_about_the_cap(fortunes, tok_cfg, tmp_path):
    rows = fortunes[::4]  # de, es, it, ru, pt, pl, cs: unequal amounts
    path = tmp_path / "part-00000.parquet"
    pq.write_table(
        pa.table({"id": [r["id"] for r in rows], "text": [r["text"] for r in rows], "lang": [r["lang"] for r in rows]}),
        path,
    )
    total = {}
    for r in rows:
        total[r["lang"]] = total.get(r["lang"], 0) + len(r["text"].encode())
    cap = 60_000
    cfg = tok_cfg.model_copy(update={"max_bytes_per_language": cap})
    stats = train_tokenizer([path], cfg, tmp_path / "capped.json")
    assert set(stats["sampled_languages"]) == {lang for lang, n in total.items() if n > cap}
    assert len(stats["sampled_languages"]) >= 3
    for lang, n in stats["language_bytes"].items():
        assert n == total[lang] if total[lang] <= cap else abs(n - cap) < 0.25 * cap
    assert stats["bytes"] == sum(stats["language_bytes"].values())
    train_tokenizer([path], cfg, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "capped.json").read_bytes()


def test_longest_tokens_are_reported_longest_first(trained):
    longest = trained[1]["longest_tokens"]
    assert len(longest) == 10
    lengths = [len(t.encode()) for t in longest]
    assert lengths == sorted(lengths, reverse=True)


def test_transformers_fast_tokenizer_loads_the_file_and_agrees(trained, fortunes):
    transformers = pytest.importorskip("transformers", reason="transformers is not a dependency; checked in bench")
    fast = transformers.PreTrainedTokenizerFast(tokenizer_file=str(trained[0]), eos_token=EOT)
    tokenizer = load_tokenizer(trained[0])
    for text in [r["text"] for r in fortunes[::500]] + ["Call <PERSON> at <PHONE_NUMBER>."]:
        ids = fast.encode(text, add_special_tokens=False)
        assert ids == encode(tokenizer, [text])[0]
        assert fast.decode(ids) == text
    assert fast.eos_token_id == EOT_ID
