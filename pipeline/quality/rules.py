"""Gopher quality and repetition rules (Rae et al. 2021, "Scaling Language Models", appendix A).

Each rule is a small function of a `DocumentView` and its config section that returns the
name of the rule when the document fails it, else None, marked with the signals it compares
(`@rule(Signal(...))`: each becomes a column, see signals.py). A rule family (quality, repetition)
is the ordered tuple of its rules and one config section; a new rule is one function in a family
plus its threshold fields in that section. The view splits a document into
words, lines and paragraphs once; every rule and every signal column reads from it.

Definitions (unicode-aware, so Cyrillic or Greek text is judged like Latin text):
- a *token* is a whitespace-separated piece of text (`str.split()`), punctuation included
  (with `alpha_words_tokens: spacy`, the alphabetic-words rule counts spaCy's tokens instead);
- a *word* is a run of letters/digits, with inner apostrophes or hyphens (`don't`, `well-known`);
- *lines* and *paragraphs* are the stripped, non-empty lines and blank-line-separated blocks.
Scripts written without spaces (Chinese, Japanese, Thai) have few, very long "words" here,
so they fail the word-length rule: the rules are meant for the space-separated target languages.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property, partial
from itertools import accumulate, count
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.config import CodeConfig, GopherQualityConfig, GopherRepetitionConfig, QualityConfig

WORD = re.compile(r"\w+(?:['’-]\w+)*")
# A whole token without a single letter (letters are the \w that are not digits or "_").
_LETTERLESS_TOKEN = re.compile(r"(?<!\S)(?:[^\w\s]|[\d_])+(?!\S)")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")
BULLETS = ("•", "‣", "◦", "-", "*")
ELLIPSES = ("...", "…")
# Gopher's stop words per language: English is the paper's list; the others are the 8 spaCy
# stop words most frequent in text of the language (stopwords/README.md). A language without a
# list skips the stop-word rule.
STOP_WORDS = {
    path.stem: frozenset(path.read_text(encoding="utf-8").split())
    for path in sorted((Path(__file__).with_name("stopwords")).glob("*.txt"))
}


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(number of items, number of characters) in items that repeat an earlier item."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


def _as_ids(items: list) -> tuple[list[int], int]:
    """Each item replaced by the index of its first distinct occurrence; number of distinct items."""
    index = dict(zip(dict.fromkeys(items), count()))
    return list(map(index.__getitem__, items)), len(index)


def _numbered(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(id of each key, first position of each id): ids number the distinct keys in sorted order."""
    # np.unique's own first positions cost a stable sort; a quicksort and a minimum are cheaper.
    distinct, ids = np.unique(keys, return_inverse=True)
    first = np.full(len(distinct), len(keys))
    np.minimum.at(first, ids, np.arange(len(keys)))
    return ids, first


def count_words(text: str) -> int:
    return len(WORD.findall(text))


@cache
def _spacy_tokenizer(lang: str):
    """spaCy's rule-based tokenizer for the language (no model), the multi-language one without."""
    import spacy

    try:
        return spacy.blank(lang).tokenizer
    except ImportError:  # E048: spaCy has no rules for this language
        return spacy.blank("xx").tokenizer


def spacy_tokens(text: str, lang: str) -> list[str]:
    """Tokens as datatrove's word split makes them: punctuation marks apart, whitespace dropped."""
    return [token.text for token in _spacy_tokenizer(lang)(text) if not token.is_space]


# Per language: spaCy (tokens, tokens with a letter) of each whitespace-free piece seen, emptied
# when full so that a worker's memory stays bounded (~30 MB).
_PIECES_KEPT = 1 << 18
_piece_counts: dict[str, dict[str, tuple[int, int]]] = {}


def spacy_alpha_fraction(text: str, lang: str) -> float:
    """Share of spaCy tokens with a letter, exactly as over `spacy_tokens(text)`, many times faster.

    spaCy splits at whitespace before its affix rules, so a text's tokens are its
    whitespace-separated pieces' tokens (tests check the equality). A piece of letters alone is
    one token unless it is one of spaCy's exceptions ("cannot" -> "can", "not"); every other
    piece is tokenized once per process, the document's new ones together in one call.
    """
    special = _spacy_special_cases(lang)
    known = _piece_counts.setdefault(lang, {})
    pieces = text.split()
    new = {p for p in pieces if p not in known and (p in special or not p.isalpha())}
    if new:
        if len(known) + len(new) > _PIECES_KEPT:
            known.clear()
        known.update(_count_pieces(sorted(new), lang))
    tokens = alpha = 0
    for piece in pieces:
        n, a = known.get(piece, (1, 1))
        tokens, alpha = tokens + n, alpha + a
    return alpha / max(tokens, 1)


def _count_pieces(pieces: list[str], lang: str) -> dict[str, tuple[int, int]]:
    """spaCy (tokens, tokens with a letter) of each piece, from one call over them joined by spaces."""
    starts = list(accumulate((len(p) + 1 for p in pieces[:-1]), initial=0))
    counts = [[0, 0] for _ in pieces]
    for token in _spacy_tokenizer(lang)(" ".join(pieces)):
        if not token.is_space:
            count = counts[bisect_right(starts, token.idx) - 1]
            count[0] += 1
            count[1] += any(c.isalpha() for c in token.text)
    return {piece: (n, a) for piece, (n, a) in zip(pieces, counts)}


@cache
def _spacy_special_cases(lang: str) -> frozenset[str]:
    """Strings spaCy tokenizes by exception ("cannot" -> "can", "not")."""
    return frozenset(_spacy_tokenizer(lang).rules)


class DocumentView:
    """One document's text split once into the units the rules count."""

    def __init__(self, text: str, lang: str, alpha_words_tokens: str = "whitespace") -> None:
        self.text = text
        self.lang = lang
        self.alpha_words_tokens = alpha_words_tokens

    @cached_property
    def tokens(self) -> list[str]:
        return self.text.split()

    @cached_property
    def words(self) -> list[str]:
        return WORD.findall(self.text)

    @cached_property
    def lines(self) -> list[str]:
        return [line for line in (raw.strip() for raw in self.text.splitlines()) if line]

    @cached_property
    def raw_lines(self) -> list[str]:
        """Every line as written (code's indentation and blank lines count)."""
        return self.text.splitlines()

    @cached_property
    def paragraphs(self) -> list[str]:
        blocks = (block.strip() for block in _PARAGRAPH_BREAK.split(self.text))
        return [block for block in blocks if block]

    def signal(self, signal: Signal) -> float | int | bool | None:
        """A rule's signal, computed from the text (a recorded row answers from its column)."""
        return signal.value(self)

    # -- signals: the numbers the rules compare with their thresholds (also output columns)
    @property
    def n_words(self) -> int:
        return len(self.words)

    @cached_property
    def mean_word_length(self) -> float:
        return sum(map(len, self.words)) / max(self.n_words, 1)

    @cached_property
    def alpha_token_fraction(self) -> float:
        if self.alpha_words_tokens == "spacy":
            return spacy_alpha_fraction(self.text, self.lang)
        # One regex pass over the text instead of a search per token.
        letterless = len(_LETTERLESS_TOKEN.findall(self.text))
        return (len(self.tokens) - letterless) / max(len(self.tokens), 1)

    @cached_property
    def stop_words(self) -> int | None:
        """Distinct stop words present ("at least two of" the eight words); None: no list for the language."""
        listed = STOP_WORDS.get(self.lang)
        return None if listed is None else len(listed.intersection(map(str.lower, self.words)))

    @cached_property
    def _dup_lines(self) -> tuple[int, int]:
        return _duplicates(self.lines)

    @cached_property
    def _dup_paragraphs(self) -> tuple[int, int]:
        return _duplicates(self.paragraphs)

    @property
    def dup_line_fraction(self) -> float:
        return self._dup_lines[0] / max(len(self.lines), 1)

    @property
    def dup_para_fraction(self) -> float:
        return self._dup_paragraphs[0] / max(len(self.paragraphs), 1)

    @property
    def dup_line_char_fraction(self) -> float:
        return self._dup_lines[1] / max(len(self.text), 1)

    @property
    def dup_para_char_fraction(self) -> float:
        return self._dup_paragraphs[1] / max(len(self.text), 1)

    @cached_property
    def hash_word_ratio(self) -> float:
        return self.text.count("#") / max(self.n_words, 1)

    @cached_property
    def ellipsis_word_ratio(self) -> float:
        return sum(self.text.count(e) for e in ELLIPSES) / max(self.n_words, 1)

    @cached_property
    def bullet_lines_ratio(self) -> float:
        return sum(1 for line in self.lines if line.startswith(BULLETS)) / max(len(self.lines), 1)

    @cached_property
    def ellipsis_lines_ratio(self) -> float:
        return sum(1 for line in self.lines if line.endswith(ELLIPSES)) / max(len(self.lines), 1)

    # -- word n-grams as integer ids: equal ids <=> equal n-grams. The n-gram at position i is the
    # (n-1)-gram at i plus word i+n-1, so each level is one numpy array of pairs of ints made
    # into one int each (id * distinct words + word id) and numbered by np.unique, instead of
    # hashing tuples of n strings; the n-gram rules below then only count and index arrays.
    @cached_property
    def _chars_before(self) -> list[int]:
        """_chars_before[i]: characters in words[:i]; an n-gram at i has [i+n] - [i]."""
        return list(accumulate(map(len, self.words), initial=0))

    @cached_property
    def _ngram_levels(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        return {}

    def ngram_ids(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(id of the word n-gram at each position, first position of each id)."""
        levels = self._ngram_levels
        if n not in levels:
            if n == 1:
                levels[1] = _numbered(np.array(_as_ids(self.words)[0], dtype=np.int64))
            else:
                previous, first = self.ngram_ids(n - 1)
                size = max(len(self.words) - n + 1, 0)
                if len(first) == len(previous):  # no (n-1)-gram repeats, so no n-gram does
                    levels[n] = (np.arange(size), np.arange(size))
                else:
                    words, distinct_words = self.ngram_ids(1)
                    levels[n] = _numbered(previous[:size] * len(distinct_words) + words[n - 1 :])
        return levels[n]

    def top_ngram_char_fraction(self, n: int) -> float:
        """Share of characters in the most frequent word n-gram (all its occurrences).

        The paper's "characters contained within" an n-gram include the spaces between its words:
        the phrase is its words joined by one space, as datatrove counts it. Without them a phrase
        of short words reads far lower (0.26 instead of datatrove's 0.35 on one of datatrove's
        test texts), and the paper's thresholds (0.20, 0.18, 0.16) let through pages it removes.
        """
        ids, first = self.ngram_ids(n)
        if not len(ids):
            return 0.0
        counts = np.bincount(ids)
        top = int(counts.max())
        at = int(first[counts == top].min())  # of equally frequent n-grams, the one seen first
        chars = self._chars_before[at + n] - self._chars_before[at] + n - 1
        return chars * top / max(len(self.text), 1)

    def dup_ngram_char_fraction(self, n: int) -> float:
        """Share of characters in word n-grams that repeat an earlier one; a repeat is skipped
        whole so overlapping repeats are not counted twice (as in the paper and datatrove).

        The paper's walk: at each position visited, an n-gram seen at an earlier visited position
        counts its characters and the walk jumps past it (the positions jumped over are not
        visited); any other is marked seen and the walk moves one word on. A first occurrence is
        never a repeat, so the walk below stops only at the later occurrences: one of those
        counts unless its n-gram's first occurrence was jumped over and no visited occurrence
        has followed."""
        ids, first = self.ngram_ids(n)
        if len(first) == len(ids):
            return 0.0  # nothing repeats (most prose at n >= 5): no walk needed
        is_first = np.zeros(len(ids), dtype=bool)
        is_first[first] = True
        firsts, ids = is_first.tobytes(), ids.tolist()
        first_jumped, seen_later = bytearray(len(first)), bytearray(len(first))
        before = self._chars_before
        repeated = end = 0
        for i in np.flatnonzero(~is_first).tolist():
            if i < end:
                continue  # jumped over
            if first_jumped[ids[i]] and not seen_later[ids[i]]:
                seen_later[ids[i]] = 1
                continue
            repeated += before[i + n] - before[i]
            end = i + n
            for j in range(i + 1, min(end, len(ids))):
                if firsts[j]:
                    first_jumped[ids[j]] = 1
        return repeated / max(len(self.text), 1)


# ---------------------------------------------------------------- declaring a rule
F32, I32 = pa.float32(), pa.int32()


@dataclass(frozen=True)
class Signal:
    """A number a rule compares with its threshold: a column on every judged row, whatever the
    decision, so a user can re-threshold without recomputing.

    A rule reads it as `SIGNAL(doc)`, never by computing it itself: the document answers
    (`doc.signal`), so a row's recorded columns can stand in for its text and the rules decide
    again from them under other thresholds (redecide.py, for ablations)."""

    column: str
    type: pa.DataType
    value: Callable[[DocumentView], float | int | None]

    def __call__(self, doc: DocumentView) -> float | int | bool | None:
        return doc.signal(self)


Rule = Callable[[DocumentView, Any], str | None]


def rule(*signals: Signal, per_config: Callable[[Any], list[Signal]] | None = None) -> Callable[[Rule], Rule]:
    """Marks a rule with the signals it reads: fixed ones, or (`per_config`) ones that depend on
    its config section, such as one share per configured n-gram length. signals.py turns them
    into columns; a new rule is its function here, in its family below, plus its config fields."""

    def mark(check: Rule) -> Rule:
        check.signals = (lambda section: list(signals)) if per_config is None else per_config
        return check

    return mark


# ---------------------------------------------------------------- Gopher quality rules
WORDS = Signal("quality_words", I32, lambda doc: doc.n_words)
MEAN_WORD_LENGTH = Signal("quality_mean_word_length", F32, lambda doc: doc.mean_word_length)
HASH_WORD_RATIO = Signal("quality_hash_word_ratio", F32, lambda doc: doc.hash_word_ratio)
ELLIPSIS_WORD_RATIO = Signal("quality_ellipsis_word_ratio", F32, lambda doc: doc.ellipsis_word_ratio)
BULLET_LINES = Signal("quality_bullet_lines_ratio", F32, lambda doc: doc.bullet_lines_ratio)
ELLIPSIS_LINES = Signal("quality_ellipsis_lines_ratio", F32, lambda doc: doc.ellipsis_lines_ratio)
ALPHA_WORDS = Signal("quality_alpha_words_fraction", F32, lambda doc: doc.alpha_token_fraction)
STOP_WORDS_SEEN = Signal("quality_stop_words", I32, lambda doc: doc.stop_words)


@rule(WORDS)
def word_count(doc: DocumentView, cfg: GopherQualityConfig) -> str | None:
    """Fewer than 50 or more than 100,000 words: fragments, or dumps no one wrote as prose."""
    if WORDS(doc) < cfg.min_words:
        return "gopher_short_doc"
    if WORDS(doc) > cfg.max_words:
        return "gopher_long_doc"
    return None


@rule(MEAN_WORD_LENGTH)
def mean_word_length(doc: DocumentView, cfg: GopherQualityConfig) -> str | None:
    """Mean word length outside [3, 10] characters marks gibberish, tables or URL lists."""
    if MEAN_WORD_LENGTH(doc) < cfg.min_mean_word_length:
        return "gopher_mean_word_length_low"
    if MEAN_WORD_LENGTH(doc) > cfg.max_mean_word_length:
        return "gopher_mean_word_length_high"
    return None


@rule(HASH_WORD_RATIO, ELLIPSIS_WORD_RATIO)
def symbol_ratio(doc: DocumentView, cfg: GopherQualityConfig) -> str | None:
    """More than 0.1 hash symbols, or 0.1 ellipses, per word: tag clouds and teaser lists."""
    if max(HASH_WORD_RATIO(doc), ELLIPSIS_WORD_RATIO(doc)) > cfg.max_symbol_word_ratio:
        return "gopher_symbol_ratio"
    return None


@rule(BULLET_LINES)
def bullet_lines(doc: DocumentView, cfg: GopherQualityConfig) -> str | None:
    """Over 90% of lines starting with a bullet: navigation menus, not text."""
    if BULLET_LINES(doc) > cfg.max_bullet_lines_ratio:
        return "gopher_bullet_lines"
    return None


@rule(ELLIPSIS_LINES)
def ellipsis_lines(doc: DocumentView, cfg: GopherQualityConfig) -> str | None:
    """Over 30% of lines ending in an ellipsis: truncated previews of other pages."""
    if ELLIPSIS_LINES(doc) > cfg.max_ellipsis_lines_ratio:
        return "gopher_ellipsis_lines"
    return None


@rule(ALPHA_WORDS)
def alpha_words(doc: DocumentView, cfg: GopherQualityConfig) -> str | None:
    """Under 80% of tokens with a letter in them: numbers, symbols, code or markup."""
    if ALPHA_WORDS(doc) < cfg.min_alpha_words_ratio:
        return "gopher_alpha_words"
    return None


@rule(STOP_WORDS_SEEN)
def stop_words(doc: DocumentView, cfg: GopherQualityConfig) -> str | None:
    """Text without two different stop words (the, be, to, of, ...) is not running prose."""
    seen = STOP_WORDS_SEEN(doc)
    if seen is not None and seen < cfg.min_stop_words:
        return "gopher_stop_words"
    return None


# ---------------------------------------------------------------- Gopher repetition rules
DUP_LINES = Signal("quality_dup_line_fraction", F32, lambda doc: doc.dup_line_fraction)
DUP_PARAGRAPHS = Signal("quality_dup_para_fraction", F32, lambda doc: doc.dup_para_fraction)
DUP_LINE_CHARS = Signal("quality_dup_line_char_fraction", F32, lambda doc: doc.dup_line_char_fraction)
DUP_PARA_CHARS = Signal("quality_dup_para_char_fraction", F32, lambda doc: doc.dup_para_char_fraction)


@cache
def top_ngram(n: int) -> Signal:
    return Signal(f"quality_top_{n}_gram_char_fraction", F32, partial(DocumentView.top_ngram_char_fraction, n=n))


@cache
def dup_ngram(n: int) -> Signal:
    return Signal(f"quality_dup_{n}_gram_char_fraction", F32, partial(DocumentView.dup_ngram_char_fraction, n=n))


@rule(DUP_LINES)
def dup_lines(doc: DocumentView, cfg: GopherRepetitionConfig) -> str | None:
    """Over 30% of lines repeating an earlier line: boilerplate or spam."""
    if DUP_LINES(doc) > cfg.max_dup_line_fraction:
        return "gopher_dup_lines"
    return None


@rule(DUP_PARAGRAPHS)
def dup_paragraphs(doc: DocumentView, cfg: GopherRepetitionConfig) -> str | None:
    """Over 30% of paragraphs repeating an earlier paragraph."""
    if DUP_PARAGRAPHS(doc) > cfg.max_dup_para_fraction:
        return "gopher_dup_paragraphs"
    return None


@rule(DUP_LINE_CHARS)
def dup_line_chars(doc: DocumentView, cfg: GopherRepetitionConfig) -> str | None:
    """Over 20% of characters inside repeated lines."""
    if DUP_LINE_CHARS(doc) > cfg.max_dup_line_char_fraction:
        return "gopher_dup_line_chars"
    return None


@rule(DUP_PARA_CHARS)
def dup_para_chars(doc: DocumentView, cfg: GopherRepetitionConfig) -> str | None:
    """Over 20% of characters inside repeated paragraphs."""
    if DUP_PARA_CHARS(doc) > cfg.max_dup_para_char_fraction:
        return "gopher_dup_para_chars"
    return None


@rule(per_config=lambda section: [top_ngram(n) for n in sorted(section.max_top_ngram_char_fraction)])
def top_ngrams(doc: DocumentView, cfg: GopherRepetitionConfig) -> str | None:
    """One 2-4-word phrase covering 16-20% of the text: a line or slogan said over and over."""
    for n, limit in sorted(cfg.max_top_ngram_char_fraction.items()):
        if top_ngram(n)(doc) > limit:
            return f"gopher_top_{n}_gram"
    return None


@rule(per_config=lambda section: [dup_ngram(n) for n in sorted(section.max_dup_ngram_char_fraction)])
def dup_ngrams(doc: DocumentView, cfg: GopherRepetitionConfig) -> str | None:
    """Repeated 5-10-word passages covering 10-15% of the text: copy-paste spam."""
    for n, limit in sorted(cfg.max_dup_ngram_char_fraction.items()):
        if dup_ngram(n)(doc) > limit:
            return f"gopher_dup_{n}_gram"
    return None


# ---------------------------------------------------------------- code rules
# The Stack (Kocetkov et al. 2022, section 3.3) and StarCoder (Li et al. 2023, section 3): files
# with very long lines or a high mean line length (minified or data), a low share of letters and
# digits (encoded blobs, tables), or a note that a tool generated them, are not code people wrote.
GENERATED = re.compile(r"auto-?generated|automatically generated|generated by|do not edit", re.IGNORECASE)

MAX_LINE_LENGTH = Signal("quality_code_max_line_length", I32, lambda doc: max(map(len, doc.raw_lines), default=0))
MEAN_LINE_LENGTH = Signal(
    "quality_code_mean_line_length", F32, lambda doc: sum(map(len, doc.raw_lines)) / max(len(doc.raw_lines), 1)
)
ALNUM_FRACTION = Signal(
    "quality_code_alnum_fraction", F32, lambda doc: sum(c.isalnum() for c in doc.text) / max(len(doc.text), 1)
)


def _generated(doc: DocumentView, lines: int) -> bool:
    return any(GENERATED.search(line) for line in doc.raw_lines[:lines])


@cache
def generated_notice(lines: int) -> Signal:
    """Whether one of the first `lines` lines says a tool wrote the file."""
    return Signal("quality_code_autogenerated", pa.bool_(), partial(_generated, lines=lines))


@rule(MAX_LINE_LENGTH)
def long_lines(doc: DocumentView, cfg: CodeConfig) -> str | None:
    """A line over 1,000 characters: minified code or embedded data."""
    if MAX_LINE_LENGTH(doc) > cfg.max_line_length:
        return "code_long_lines"
    return None


@rule(MEAN_LINE_LENGTH)
def mean_line_length(doc: DocumentView, cfg: CodeConfig) -> str | None:
    """A mean line over 100 characters: generated or data files."""
    if MEAN_LINE_LENGTH(doc) > cfg.max_mean_line_length:
        return "code_mean_line_length"
    return None


@rule(ALNUM_FRACTION)
def alnum_fraction(doc: DocumentView, cfg: CodeConfig) -> str | None:
    """Under 25% letters and digits: base64 blobs, hex dumps, ASCII-art tables."""
    if ALNUM_FRACTION(doc) < cfg.min_alnum_fraction:
        return "code_alnum_fraction"
    return None


@rule(per_config=lambda cfg: [generated_notice(cfg.autogenerated_lines)])
def autogenerated(doc: DocumentView, cfg: CodeConfig) -> str | None:
    """Its first lines say a tool wrote it: not what a model should learn to write."""
    if cfg.autogenerated_lines and generated_notice(cfg.autogenerated_lines)(doc):
        return "code_autogenerated"
    return None


# Each family runs its rules in order, on one config section; the first rule failed is the reason.
QUALITY_RULES: tuple[Rule, ...] = (
    word_count,
    mean_word_length,
    symbol_ratio,
    bullet_lines,
    ellipsis_lines,
    alpha_words,
    stop_words,
)
REPETITION_RULES: tuple[Rule, ...] = (
    dup_lines,
    dup_paragraphs,
    dup_line_chars,
    dup_para_chars,
    top_ngrams,
    dup_ngrams,
)
CODE_RULES: tuple[Rule, ...] = (long_lines, mean_line_length, alnum_fraction, autogenerated)
# (config section of QualityConfig, its rules), in the order they run.
FAMILIES: tuple[tuple[str, tuple[Rule, ...]], ...] = (
    ("gopher", QUALITY_RULES),
    ("repetition", REPETITION_RULES),
    ("code", CODE_RULES),
)


def rules_reason(doc: DocumentView, cfg: QualityConfig) -> str | None:
    """The first rule of the enabled families (Gopher quality, Gopher repetition, code) the
    document fails, or None."""
    for section_name, rules in FAMILIES:
        section = getattr(cfg, section_name)
        if section.enabled:
            for check in rules:
                if reason := check(doc, section):
                    return reason
    return None
