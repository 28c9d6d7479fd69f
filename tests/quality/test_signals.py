"""Signals, not only decisions: every rule family's signals as columns, on kept and removed rows.

Common Crawl pages (cc_docs) through the whole quality stage with C4 and FineWeb switched on.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pytest

from pipeline.config import GopherQualityConfig, QualityConfig
from pipeline.quality import rules, signals
from pipeline.quality.rules import F32, DocumentView, Signal, rule
from pipeline.quality.signals import columns, judge
from pipeline.quality.stage import run_shard
from pipeline.stage import ShardContext

ALL_ON = QualityConfig(c4={"enabled": True}, fineweb={"enabled": True})


@pytest.fixture(scope="module")
def pages(shared_data: Path) -> pa.Table:
    with (shared_data / "corpora" / "cc_docs.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return pa.table({"id": [f"cc-{i:02d}" for i in range(len(rows))], "text": [r["text"] for r in rows]})


@pytest.fixture(scope="module")
def result(pages: pa.Table):
    return run_shard(pages, ShardContext(ALL_ON, stage="quality"))


def test_every_signal_column_is_filled_on_kept_and_removed_rows(result) -> None:
    names = [name for name, _ in columns(ALL_ON)]
    assert len(names) == 8 + 4 + 3 + 6 + 5 + 4  # gopher, repetition, top/dup n-grams, c4, fineweb
    assert result.kept.num_rows > 10 and result.removed.num_rows > 3
    for table in (result.kept, result.removed):
        for name, type_ in columns(ALL_ON):
            assert table.schema.field(name).type == type_
            # English pages: every rule ran; FineWeb has nothing to measure where C4 left nothing.
            nothing_left = pa.compute.equal(table["quality_c4_chars_removed"], pa.compute.utf8_length(table["text"]))
            expected_nulls = pa.compute.sum(nothing_left).as_py() if "fineweb" in name else 0
            assert table.column(name).null_count == expected_nulls, name


def test_removed_rows_keep_their_text_and_the_signal_that_removed_them(pages, result) -> None:
    original = dict(zip(pages["id"].to_pylist(), pages["text"].to_pylist()))
    rows = {r["id"]: r for r in result.removed.to_pylist()}
    for row in rows.values():
        assert row["text"] == original[row["id"]]
    call = rows["cc-10"]  # a call for weekly teleconferences: four sentences
    assert call["reason"] == "c4_too_few_sentences"
    assert call["quality_c4_sentences"] == 4 and call["quality_words"] >= 50
    teasers = rows["cc-29"]  # five headlines cut with "...": Gopher's word count fails first
    assert teasers["reason"] == "gopher_short_doc"
    assert teasers["quality_words"] < 50 and teasers["quality_c4_lines_removed"] == 5


def test_kept_rows_carry_the_c4_cleaned_text_and_what_was_cut(pages, result) -> None:
    original = dict(zip(pages["id"].to_pylist(), pages["text"].to_pylist()))
    blog = next(r for r in result.kept.to_pylist() if r["id"] == "cc-09")  # a jazz radio blog
    assert "Groove Notes by KNKX" in original["cc-09"] and "Groove Notes by KNKX" not in blog["text"]
    assert blog["quality_c4_lines_removed"] > 20
    assert blog["quality_c4_chars_removed"] == len(original["cc-09"]) - len(blog["text"])


def test_signals_are_computed_past_the_first_failed_rule(pages) -> None:
    """RedPajama-v2 style: a document removed by Gopher still gets its C4 and FineWeb signals."""
    text = pages["text"].to_pylist()[29]  # headlines: too short for Gopher
    j = judge(text, "en", ALL_ON)
    assert j.reason == "gopher_short_doc"
    assert j.signals["quality_c4_lines_removed"] == 5
    assert j.signals["quality_fineweb_line_punct_ratio"] is None  # nothing left after C4


def test_rule_families_switched_off_add_no_columns() -> None:
    names = {name for name, _ in columns(QualityConfig())}
    assert "quality_words" in names
    assert not {n for n in names if n.startswith(("quality_c4_", "quality_fineweb_"))}


class DigitsConfig(GopherQualityConfig):
    """The Gopher section with the threshold of one more rule."""

    max_digit_share: float = 0.2


DIGITS = Signal("quality_digit_share", F32, lambda doc: sum(c.isdigit() for c in doc.text) / max(len(doc.text), 1))


@rule(DIGITS)
def digit_share(doc: DocumentView, cfg: DigitsConfig) -> str | None:
    """Mostly digits: tables of figures, not prose."""
    if DIGITS(doc) > cfg.max_digit_share:
        return "gopher_digit_share"
    return None


def test_a_new_rule_is_its_function_and_its_config_field(monkeypatch, sample_table) -> None:
    # The rule joins its family (what a contributor writes in rules.py); its signal becomes a
    # column and its reason a removal, with no other code touched.
    monkeypatch.setattr(rules, "QUALITY_RULES", (*rules.QUALITY_RULES, digit_share))
    monkeypatch.setattr(rules, "FAMILIES", (("gopher", rules.QUALITY_RULES), *rules.FAMILIES[1:]))
    monkeypatch.setattr(signals, "FAMILIES", rules.FAMILIES)
    cfg = QualityConfig(gopher=DigitsConfig())
    prose = sample_table.filter(pa.compute.starts_with(sample_table["id"], "shakespeare-"))["text"][0].as_py()
    # An order log: every token has a letter (so the alphabetic-words rule passes it), most
    # characters are digits.
    figures = "\n".join(
        f"Order ORD{year}{year * 7:06d} shipped in parcel PCL{year * 13:08d} to the warehouse at dock D{year % 97:02d}."
        for year in range(1900, 1960)
    )
    assert ("quality_digit_share", F32) in columns(cfg)
    kept, removed = judge(prose, "en", cfg), judge(figures, "en", cfg)
    assert kept.reason is None and kept.signals["quality_digit_share"] < cfg.gopher.max_digit_share
    assert removed.reason == "gopher_digit_share" and removed.signals["quality_digit_share"] > 0.2
