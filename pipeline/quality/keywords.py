"""Keyword filter: the share of a document's words that are on its language's blocklist.

C4 dropped every page with any word of the LDNOOBW English list; that also drops medical and
biology pages ("anal", "anus"), so here a document is dropped only when flagged words exceed a
share of its words (`keyword_share`, RedPajama-v2 keeps the same count as a signal). Lists are
`<lang>.txt` files (one word or phrase per line) in a folder; the shipped ones are LDNOOBW's
(CC BY 4.0, see blocklists/README.md).

Matching is whole-word and Unicode-aware: text and terms are case-folded and split into words
(runs of letters, combining marks and digits, with inner apostrophes), and a term matches a run
of whole words, so "ass" flags "Ass!" but not "class" or "assess", and a phrase matches across
any punctuation or spacing. A document whose language has no list gets no score (null).

The URL blocklist (optional) is a file of domains, one per line (`#` starts a comment); a
document whose `url` host is a listed domain or a subdomain of one is dropped.
"""

from __future__ import annotations

import functools
from pathlib import Path
from urllib.parse import urlsplit

import regex

SHIPPED = Path(__file__).with_name("blocklists")
WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+(?:['’][\p{L}\p{M}\p{N}]+)*")


class Blocklist:
    """One language's terms as word tuples; single words in a set, phrases by first word."""

    def __init__(self, terms: list[str]) -> None:
        self.words: set[str] = set()
        self.phrases: dict[str, list[tuple[str, ...]]] = {}
        for term in terms:
            words = tuple(WORD.findall(term.casefold()))
            if len(words) == 1:
                self.words.add(words[0])
            elif words:  # an emoji or symbol-only entry has no words and is skipped
                self.phrases.setdefault(words[0], []).append(words)
        for options in self.phrases.values():
            options.sort(key=len, reverse=True)  # longest phrase first
        self.first_words = self.words | self.phrases.keys()

    def flagged(self, words: list[str]) -> int:
        """How many of `words` belong to a listed word or phrase (a word counts once)."""
        if self.first_words.isdisjoint(words):  # most documents: one C-speed set check
            return 0
        count = i = 0
        while i < len(words):
            word = words[i]
            step = 1
            for phrase in self.phrases.get(word, ()):
                if tuple(words[i : i + len(phrase)]) == phrase:
                    step = len(phrase)
                    break
            else:
                if word not in self.words:
                    i += 1
                    continue
            count += step
            i += step
        return count


@functools.cache
def load_blocklists(folder: str = "") -> dict[str, Blocklist]:
    """`<lang>.txt` files of `folder` (empty: the shipped LDNOOBW lists), by language code."""
    path = Path(folder) if folder else SHIPPED
    if not path.is_dir():
        raise ValueError(f"quality.keywords.blocklist_dir: {path} is not a folder of <lang>.txt files")
    return {
        p.stem: Blocklist([line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()])
        for p in sorted(path.glob("*.txt"))
    }


def keyword_share(text: str, lists: dict[str, Blocklist], lang: str) -> float | None:
    """Share of the words of `text` on `lang`'s blocklist; None when `lang` has no list."""
    blocklist = lists.get(lang)
    if blocklist is None:
        return None
    words = WORD.findall(text.casefold())
    return blocklist.flagged(words) / len(words) if words else 0.0


@functools.cache
def load_domains(path: str) -> frozenset[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"quality.keywords.url_blocklist: cannot read {path} ({exc.strerror})") from None
    return frozenset(d for line in lines if (d := line.split("#", 1)[0].strip().lower().rstrip(".")))


def url_blocked(url: str | None, domains: frozenset[str]) -> bool:
    """True when the URL's host, or a parent domain of it, is listed."""
    if not url:
        return False
    host = (urlsplit(url if "//" in url else "//" + url).hostname or "").rstrip(".")
    parts = host.split(".")
    return any(".".join(parts[i:]) in domains for i in range(len(parts)))
