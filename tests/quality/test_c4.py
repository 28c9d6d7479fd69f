"""C4 line cleaning and page rules on real text: Common Crawl pages (cc_docs), Tiny Shakespeare,
lingua-py sentences. Boilerplate lines that the shared data lacks are quoted verbatim from the
software that prints them on millions of pages (noted at each one).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import C4Config
from pipeline.quality import c4

ON = C4Config(enabled=True)
# The default message of the cookieconsent banner (Osano, MIT) and Disqus's <noscript> text.
COOKIE_BANNER = "This website uses cookies to ensure you get the best experience on our website."
DISQUS_NOSCRIPT = "Please enable JavaScript to view the comments powered by Disqus."
# The classic placeholder passage (Cicero, De finibus, as typesetters have cut it since the 1500s).
LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt."


@pytest.fixture(scope="module")
def cc(shared_data: Path) -> list[str]:
    with (shared_data / "corpora" / "cc_docs.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


@pytest.fixture(scope="module")
def article(cc: list[str]) -> str:
    """A 1.5k-character charity auction announcement: prose lines only, 12 sentences."""
    return cc[15]


@pytest.fixture(scope="module")
def speeches(shared_data: Path) -> str:
    text = (shared_data / "corpora" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    return "\n\n".join(text.split("\n\n")[:12])  # Coriolanus, act 1 opening


def test_c4_keeps_a_prose_article_untouched(article: str) -> None:
    result = c4.clean(article, ON)
    assert c4.reason(result, ON) is None
    assert result.lines_removed == 0 and result.text == article.strip()
    assert result.sentences >= 5


def test_c4_drops_navigation_lines_and_counts_what_it_removed(cc: list[str]) -> None:
    page = cc[0]  # a clinic blog post under a menu: "PPAA Home", "About Our Blog", ...
    result = c4.clean(page, ON)
    assert c4.reason(result, ON) is None
    kept = result.text.split("\n")
    assert "PPAA Home" not in kept and "About Our Blog" not in kept
    assert set(kept) <= {line.strip() for line in page.splitlines()}
    removed = [line for line in page.splitlines() if line.strip() and line.strip() not in kept]
    assert result.lines_removed == len(removed) > 20
    assert result.chars_removed == len(page) - len(result.text)


def test_c4_drops_cookie_banner_lines_but_keeps_the_article(article: str) -> None:
    result = c4.clean(f"{COOKIE_BANNER}\n{article}", ON)
    assert c4.reason(result, ON) is None
    assert COOKIE_BANNER not in result.text and result.text == article.strip()
    assert result.lines_removed == 1


def test_c4_drops_javascript_lines_but_keeps_the_article(article: str) -> None:
    result = c4.clean(f"{article}\n{DISQUS_NOSCRIPT}", ON)
    assert result.text == article.strip() and result.lines_removed == 1


def test_c4_policy_and_javascript_switches_keep_those_lines(article: str) -> None:
    cfg = C4Config(enabled=True, filter_policy=False, filter_javascript=False)
    result = c4.clean(f"{COOKIE_BANNER}\n{article}\n{DISQUS_NOSCRIPT}", cfg)
    assert result.lines_removed == 0


def test_c4_lorem_ipsum_removes_the_page(article: str) -> None:
    result = c4.clean(f"{article}\n{LOREM}", ON)
    assert c4.reason(result, ON) == "c4_lorem_ipsum"
    assert c4.reason(result, C4Config(enabled=True, filter_lorem_ipsum=False)) is None


def test_c4_curly_bracket_in_a_prose_line_removes_the_page_but_a_code_line_is_only_dropped(
    article: str,
) -> None:
    # A template placeholder left in a sentence (the page is unrendered) vs a line of CSS.
    template = "Thank you for bidding on {{ item.title }} at our auction."
    assert c4.reason(c4.clean(f"{article}\n{template}", ON), ON) == "c4_curly_bracket"
    css = "body { font-family: Arial; }"
    result = c4.clean(f"{article}\n{css}", ON)
    assert c4.reason(result, ON) is None and result.lines_removed == 1


def test_c4_removes_speaker_names_and_two_word_lines_from_shakespeare(speeches: str) -> None:
    result = c4.clean(speeches, ON)
    kept = result.text.split("\n")
    assert "First Citizen:" not in kept  # no terminal punctuation
    assert "Speak, speak." not in kept  # two words
    assert "Before we proceed any further, hear me speak." in kept
    assert c4.reason(result, ON) is None


def test_c4_three_sentences_are_too_few(shared_data: Path) -> None:
    with (shared_data / "langid" / "lingua_dev.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    sentences = [r["text"] for r in rows if r["lang"] == "en" and r["kind"] == "sentence"]
    three = "\n".join(s for s in sentences if s.endswith(".") and c4.count_sentences(s) == 1)
    three = "\n".join(three.split("\n")[:3])
    result = c4.clean(three, ON)
    assert result.sentences == 3
    assert c4.reason(result, ON) == "c4_too_few_sentences"
    assert c4.reason(result, C4Config(enabled=True, min_sentences=3)) is None


def test_c4_a_page_of_truncated_headlines_has_no_lines_left(cc: list[str]) -> None:
    page = cc[29]  # five news teasers, each cut with "..."
    result = c4.clean(page, ON)
    assert result.text == "" and result.lines_removed == 5
    assert c4.reason(result, ON) == "c4_no_lines_left"


def test_c4_removes_wikipedia_citation_marks(article: str) -> None:
    first = article.splitlines()[1]
    cited = first[:-1] + "[1][citation needed]."
    assert c4.clean(cited, ON).text == first


def test_c4_terminal_punctuation_switch_keeps_menu_lines(cc: list[str]) -> None:
    """FineWeb's setting: C4 without its line-punctuation rule (FineWeb has its own ratio)."""
    cfg = C4Config(enabled=True, filter_no_terminal_punct=False)
    assert "About Our Blog" in c4.clean(cc[0], cfg).text.split("\n")


def test_sentence_count_skips_abbreviations_and_ellipses() -> None:
    line = "Mr. Smith arrived at 9 a.m. on Oct. 11. He left... Did he stay? Yes!"
    assert c4.count_sentences(line) == 4
