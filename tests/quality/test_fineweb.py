"""FineWeb rules on real text: Common Crawl pages (cc_docs) and Tiny Shakespeare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import FineWebConfig
from pipeline.quality import fineweb
from pipeline.quality.rules import count_words

ON = FineWebConfig(enabled=True)


def judge(text: str, cfg: FineWebConfig = ON) -> tuple[fineweb.FineWebSignals | None, str | None]:
    sig = fineweb.signals(text, count_words(text), cfg)
    return sig, fineweb.reason(sig, cfg)


@pytest.fixture(scope="module")
def cc(shared_data: Path) -> list[str]:
    with (shared_data / "corpora" / "cc_docs.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


@pytest.fixture(scope="module")
def speeches(shared_data: Path) -> str:
    text = (shared_data / "corpora" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    return "\n\n".join(text.split("\n\n")[:12])  # Coriolanus, act 1 opening


def test_fineweb_keeps_a_prose_article(cc: list[str]) -> None:
    sig, reason = judge(cc[15])  # charity auction announcement
    assert reason is None
    assert sig.line_punct_ratio == 1.0 and sig.char_dup_ratio == 0.0


def test_fineweb_removes_a_university_menu_page_for_unpunctuated_lines(cc: list[str]) -> None:
    sig, reason = judge(cc[2])  # "Skip to:[Main Navigation | Page Content]", course lists...
    assert sig.line_punct_ratio < 0.12
    assert reason == "fineweb_line_punct_ratio"


def test_fineweb_removes_a_booking_page_for_short_lines(cc: list[str]) -> None:
    sig, reason = judge(cc[8])  # "Mechanical Engineering", "Meeting Room Booking System", "1 2 3 4 5"
    assert sig.short_line_ratio > 0.67
    assert reason == "fineweb_short_line_ratio"


def test_fineweb_removes_dialogue_whose_speaker_names_repeat(speeches: str) -> None:
    """ "First Citizen:" and "All:" recur: 8% of the characters, over FineWeb's 1%."""
    sig, reason = judge(speeches)
    assert reason == "fineweb_char_dup_ratio"
    assert sig.char_dup_ratio == pytest.approx(0.0803, abs=1e-3)


def test_fineweb_removes_double_spaced_verse_for_its_list_ratio(speeches: str) -> None:
    """One verse line per paragraph: over 0.3 newlines per word reads as a list."""
    cfg = FineWebConfig(enabled=True, filter_char_dup=False)
    assert judge(speeches, cfg)[1] is None
    sig, reason = judge(speeches.replace("\n", "\n\n"), cfg)
    assert sig.newline_word_ratio > 0.3
    assert reason == "fineweb_list_ratio"


def test_fineweb_terminal_punctuation_covers_other_scripts() -> None:
    stops = fineweb.terminal_punctuation()
    assert {".", "!", "?", "。", "؟", "।", "！"} <= stops
    assert not {",", ":", '"', ")"} & stops


def test_fineweb_a_text_of_blank_lines_is_empty() -> None:
    assert judge(" \n\n \n") == (None, "fineweb_empty")
