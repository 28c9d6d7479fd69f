"""Keyword filter: LDNOOBW blocklists (pipeline/quality/blocklists), whole-word matching, URL list.

Texts: lingua-py sentences and Tiny Shakespeare (../shared/data), and the blocklist entries
themselves (real published words, LDNOOBW, CC BY 4.0).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipeline.config import QualityConfig
from pipeline.quality.keywords import SHIPPED, keyword_share, load_blocklists, url_blocked
from pipeline.quality.stage import run_shard
from pipeline.stage import ShardContext


def _config() -> QualityConfig:
    """Default config with fastText alone: the keyword filter does not depend on lingua (slow to load)."""
    cfg = QualityConfig()
    cfg.lingua.enabled = False
    return cfg


@pytest.fixture(scope="module")
def lists():
    return load_blocklists()


@pytest.fixture(scope="module")
def shakespeare(shared_data: Path) -> str:
    text = (shared_data / "corpora" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    return "\n\n".join(text.split("\n\n")[:12])  # Coriolanus, act 1 opening


def _entries(lang: str) -> list[str]:
    return (SHIPPED / f"{lang}.txt").read_text(encoding="utf-8").splitlines()


def test_shipped_lists_cover_the_default_keep_languages_and_carry_their_licence(lists) -> None:
    assert set(QualityConfig().languages) <= set(lists)
    assert "Attribution 4.0 International" in (SHIPPED / "LICENSE").read_text(encoding="utf-8")


def test_listed_word_matches_whole_words_only_in_any_case(lists) -> None:
    assert "ass" in _entries("en")
    assert keyword_share("Ass!", lists, "en") == 1.0
    assert keyword_share("a class to assess the bass", lists, "en") == 0.0


def test_phrase_matches_across_punctuation_and_case_and_counts_each_word(lists) -> None:
    phrase = next(e for e in _entries("en") if len(e.split()) == 3 and e.isascii() and e.replace(" ", "").isalpha())
    words = phrase.split()
    text = f"{words[0].upper()}, {words[1]}\n{words[2]} and five more clean words here"
    assert keyword_share(text, lists, "en") == pytest.approx(3 / 9)


def test_cyrillic_entry_matches_as_a_whole_word_not_inside_a_longer_one(lists) -> None:
    entry = next(e for e in _entries("ru") if " " not in e and len(e) >= 5)
    assert keyword_share(f"Это {entry.capitalize()}.", lists, "ru") == 0.5
    assert keyword_share(f"Это {entry}ский", lists, "ru") == 0.0


def test_language_without_a_list_gets_no_score(lists) -> None:
    assert keyword_share("any words at all", lists, "ja") is None


def test_stage_keeps_clean_prose_and_drops_it_with_listed_words_above_the_share(shakespeare: str, lists) -> None:
    """The same English prose, then with a paragraph of listed words: still English, now flagged."""
    listed = f"{shakespeare}\n\n" + " ".join(e for e in _entries("en") if e.isalpha())
    assert keyword_share(listed, lists, "en") > QualityConfig().keywords.max_share
    table = pa.table({"id": ["clean", "listed"], "text": [shakespeare, listed]})
    result = run_shard(table, ShardContext(_config(), stage="quality"))
    removed = dict(zip(result.removed["id"].to_pylist(), result.removed["reason"].to_pylist()))
    assert removed.get("clean") != "keyword_share"
    assert removed.get("listed") == "keyword_share"
    assert result.removed.filter(pc.equal(result.removed["id"], "listed"))["lang"].to_pylist() == ["en"]


def test_keyword_share_column_is_there_for_every_row_even_when_nothing_is_dropped(shared_data: Path) -> None:
    with (shared_data / "langid" / "lingua_dev.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    texts = [r["text"] for r in rows if r["lang"] == "en" and r["kind"] == "sentence"][:20]
    result = run_shard(
        pa.table({"id": [str(i) for i in range(len(texts))], "text": texts}), ShardContext(_config(), stage="quality")
    )
    shares = result.kept["keyword_share"].to_pylist() + result.removed["keyword_share"].to_pylist()
    assert len(shares) == len(texts) and all(s is not None and s <= 0.1 for s in shares)
    assert "keyword_share" not in set(result.removed["reason"].to_pylist())


def test_url_blocklist_drops_listed_domains_and_their_subdomains_only(tmp_path: Path, shakespeare: str) -> None:
    domains = tmp_path / "domains.txt"
    domains.write_text("# blocked\nexample.com\n", encoding="utf-8")
    assert url_blocked("https://www.Example.com/page", frozenset({"example.com"}))
    assert not url_blocked("https://notexample.com/", frozenset({"example.com"}))
    table = pa.table(
        {
            "id": ["listed", "sub", "other"],
            "text": [shakespeare] * 3,
            "url": ["https://example.com/a", "http://shop.example.com/b", "https://example.org/c"],
        }
    )
    cfg = _config()
    cfg.keywords.url_blocklist = str(domains)
    result = run_shard(table, ShardContext(cfg, stage="quality"))
    removed = dict(zip(result.removed["id"].to_pylist(), result.removed["reason"].to_pylist()))
    assert removed.get("listed") == removed.get("sub") == "url_blocklist"
    assert removed.get("other") != "url_blocklist"
    assert "url_blocklisted" in result.kept.column_names + result.removed.column_names


def test_other_blocklist_folder_replaces_the_shipped_lists(tmp_path: Path, shakespeare: str) -> None:
    (tmp_path / "en.txt").write_text("citizen\n", encoding="utf-8")
    share = keyword_share(shakespeare, load_blocklists(str(tmp_path)), "en")
    assert 0 < share < 0.1
