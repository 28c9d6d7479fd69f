"""Lossless on everything: every document of the multilingual development texts decodes back
to itself, byte for byte (all UDHR scripts, lingua's 75 languages, fortunes, Common Crawl pages,
noisy tweets with emoji, PII sentences, Tiny Shakespeare), and so do control characters."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.tokenizer.encode import load_tokenizer

SOURCES = {
    "langid/udhr_paragraphs_dev.jsonl": ("text",),
    "langid/lingua_dev.jsonl": ("text",),
    "corpora/fortunes_multilingual.jsonl": ("text",),
    "corpora/cc_docs.jsonl": ("text",),
    "pii/wnut17_dev.jsonl": ("text",),
    "pii/presidio_synth_dev.jsonl": ("text",),
    "neardup/udhr_variant_pairs_dev.jsonl": ("text_a", "text_b"),
}


def all_texts(shared_data: Path) -> list[str]:
    texts = []
    for name, fields in SOURCES.items():
        with (shared_data / name).open(encoding="utf-8") as f:
            for row in map(json.loads, f):
                texts.extend(row[k] for k in fields)
    texts.append((shared_data / "corpora/tinyshakespeare.txt").read_text(encoding="utf-8"))
    return texts


def assert_round_trips(tokenizer_path: Path, texts: list[str]) -> None:
    tokenizer = load_tokenizer(tokenizer_path)
    ids = [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    decoded = tokenizer.decode_batch(ids, skip_special_tokens=True)
    bad = [t for t, d in zip(texts, decoded) if t != d]
    assert not bad, f"{len(bad)} documents changed, first: {bad[0][:200]!r}"


def test_every_document_of_the_shared_texts_round_trips(trained, shared_data):
    texts = all_texts(shared_data)
    assert len(texts) > 55_000
    assert any(re.search("[\U00010000-\U0010ffff]", t) for t in texts)  # astral plane: emoji, CJK ext.
    assert_round_trips(trained[0], texts)


@pytest.mark.parametrize(
    "text",
    [
        "".join(map(chr, range(0x00, 0x20))) + "\x7f" + "".join(map(chr, range(0x80, 0xA0))),  # C0, DEL, C1
        "👩🏽‍💻 🏳️‍🌈 🇩🇪 👨‍👩‍👧‍👦 ❤️‍🔥",  # ZWJ sequences, skin tones, flags, variation selectors
        "\ufeffBOM \u200b\u200c\u200d zero widths \u00ad soft hyphen \u2028\u2029 separators",
        "e\u0301 \u0915\u094d\u0937 \U00020000\U0010fffd \ufffd",  # combining marks, CJK ext. B, private use
        "  leading and trailing spaces  \r\n\t\v\f",
    ],
    ids=["control", "emoji", "invisible", "combining_astral", "whitespace"],
)
def test_control_characters_emoji_and_invisible_text_round_trip(trained, text):
    assert_round_trips(trained[0], [text])
