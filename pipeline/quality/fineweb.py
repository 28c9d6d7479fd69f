"""FineWeb quality rules (Penedo et al. 2024, "The FineWeb Datasets", section 3.5).

FineWeb added three line statistics to the C4 and Gopher rules, each chosen because it
separated a worse-performing Common Crawl dump from a better one, plus datatrove's list check:
- too few lines end in terminal punctuation (menus, tables, lists of links);
- too many lines are short (navigation, headings, buttons);
- characters in lines repeated elsewhere in the page (boilerplate that Gopher's 20% misses);
- many newlines per word (one item per line).

Lines are the non-blank lines of `str.split("\\n")`, not stripped, as in datatrove: a line that
ends in a space does not end in punctuation. "Terminal punctuation" is Unicode's
Sentence_Terminal property (. ! ? and the full stops, question and exclamation marks of other
scripts), so Russian or Hindi pages are judged like English ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import regex

from pipeline.config import FineWebConfig


@cache
def terminal_punctuation() -> frozenset[str]:
    """Every character with Unicode's Sentence_Terminal property (~170; built once per process)."""
    every_char = "".join(map(chr, range(0x30000)))
    return frozenset(regex.findall(r"\p{Sentence_Terminal}", every_char))


@dataclass(frozen=True, slots=True)
class FineWebSignals:
    line_punct_ratio: float  # share of lines ending in terminal punctuation
    short_line_ratio: float  # share of lines of at most `short_line_length` characters
    char_dup_ratio: float  # characters in repeated lines / characters (newlines excluded)
    newline_word_ratio: float  # newlines per word


def signals(text: str, n_words: int, cfg: FineWebConfig) -> FineWebSignals | None:
    """The four statistics of one text (None when it has no non-blank line)."""
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return None
    stops = terminal_punctuation()
    ended = sum(1 for line in lines if line[-1] in stops)
    short = sum(1 for line in lines if len(line) <= cfg.short_line_length)
    seen: set[str] = set()
    dup_chars = 0
    for line in lines:
        if line in seen:
            dup_chars += len(line)
        else:
            seen.add(line)
    chars = len(text) - text.count("\n")
    newlines = text.count("\n")
    return FineWebSignals(
        line_punct_ratio=ended / len(lines),
        short_line_ratio=short / len(lines),
        char_dup_ratio=dup_chars / max(chars, 1),
        newline_word_ratio=newlines / max(n_words, 1),
    )


def reason(sig: FineWebSignals | None, cfg: FineWebConfig) -> str | None:
    """The first FineWeb rule the text fails, or None."""
    if sig is None:
        return "fineweb_empty"
    if cfg.filter_line_punct and sig.line_punct_ratio < cfg.min_line_punct_ratio:
        return "fineweb_line_punct_ratio"
    if cfg.filter_short_lines and sig.short_line_ratio > cfg.max_short_line_ratio:
        return "fineweb_short_line_ratio"
    if cfg.filter_char_dup and sig.char_dup_ratio > cfg.max_char_dup_ratio:
        return "fineweb_char_dup_ratio"
    if cfg.filter_list and sig.newline_word_ratio > cfg.max_newline_word_ratio:
        return "fineweb_list_ratio"
    return None
