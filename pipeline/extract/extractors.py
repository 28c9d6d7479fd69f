"""HTML to main text: trafilatura (default) or resiliparse (fast), then line rules of our own.

Both libraries keep some of what surrounds an article: calls to subscribe, follow or share, "read
also" teasers, bare section labels. The rules below drop such lines, in any of the languages
listed, and only lines short enough to be that and nothing else; the fast mode adds rules for
the navigation that resiliparse's main-content heuristic leaves in (short lines without a
sentence's punctuation, runs of link-like lines). They were chosen on the development half of
trafilatura's evaluation pages and are measured on the other half (bench/extract_quality.py,
bench/results/extract_quality.md).
"""

from __future__ import annotations

import re

import trafilatura
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

# A boilerplate line is short: article sentences that mention a newsletter are longer.
MAX_BOILERPLATE_CHARS = 200
# Calls to act (subscribe, follow, share, download the app, support us) and teaser markers, as
# the start of a line, case-insensitive.
BOILERPLATE_START = re.compile(
    r"^\W*(?:"
    r"(?:lesen sie (?:auch|mehr)|auch interessant|das könnte sie (?:auch )?interessieren|mehr zum thema|"
    r"weitere (?:artikel|beiträge|informationen)|beiträge aus|auch auf|teilen mit|wird geladen|"
    r"read (?:more|also|next)|see also|related(?: articles| posts| stories)?|you (?:may|might) also like|"
    r"more (?:from|on|about)|recommended|"
    r"le puede interesar|te puede interesar|puedes ver|lea también|lee también|más sobre|mire|"
    r"lire aussi|à lire aussi|voir aussi|leia também|veja também|saiba mais)\b"
    r"|(?:subscribe|sign up|signup|follow|join|download|support|submit|never miss|don'?t miss|"
    r"abonniere|abonnieren sie|folgen sie|folge uns|melden sie sich|"
    r"suscríbete|síguenos|siguenos|únete|abonnez|suivez|inscreva|siga)\b"
    r"|(?:if you (?:enjoyed|liked)|do you want to be informed|¿ya sabías|gefällt (?:dir|ihnen))"
    r")",
    re.IGNORECASE,
)
# The things those calls point at: without one of them a line that starts like a call is text.
CALL_TARGETS = re.compile(
    r"newsletter|subscri|abonn|suscri|sign(?:ing)? up|inscr|follow|folg|sígu|sigu|twitter|facebook|instagram|"
    r"telegram|whatsapp|youtube|tiktok|linkedin|podcast|\bapps?\b|edition|support|unterstütz|apoy|letter to the editor",
    re.IGNORECASE,
)
TEASER_START = re.compile(
    r"^\W*(?:lesen sie (?:auch|mehr)|auch interessant|das könnte sie (?:auch )?interessieren|mehr zum thema|"
    r"weitere (?:artikel|beiträge)|beiträge aus|auch auf|teilen mit|wird geladen|read (?:more|also|next)|see also|"
    r"related|you (?:may|might) also like|le puede interesar|te puede interesar|puedes ver|lea también|"
    r"lee también|más sobre|mire:|lire aussi|à lire aussi|voir aussi|leia também|veja também|saiba mais)",
    re.IGNORECASE,
)
# Section labels that stand alone on a line.
LABELS = frozenset(
    [
        "inhaltsverzeichnis",
        "inhalt",
        "themen",
        "temas",
        "tags",
        "schlagworte",
        "schlagwörter",
        "teilen",
        "share",
        "drucken",
        "print",
        "anzeige",
        "werbung",
        "advertisement",
        "publicidad",
        "publicité",
        "loading",
        "menü",
        "menu",
        "navigation",
    ]
)
# Fast mode: resiliparse keeps menus and link lists; a line this short that does not end like a
# sentence, in a run of such lines, is navigation.
NAV_MAX_CHARS = 40
NAV_RUN = 3
SENTENCE_END = tuple(".!?:;\"'”“»«)…")


def _boilerplate(line: str) -> bool:
    text = line.strip()
    if not text:
        return False
    if text.lower().rstrip(":").strip() in LABELS:
        return True
    if len(text) > MAX_BOILERPLATE_CHARS:
        return False
    if TEASER_START.match(text):
        return True
    return bool(BOILERPLATE_START.match(text) and CALL_TARGETS.search(text))


def drop_boilerplate_lines(text: str) -> str:
    """The text without call-to-act, teaser and label lines."""
    return "\n".join(line for line in text.split("\n") if not _boilerplate(line))


def drop_navigation_runs(text: str) -> str:
    """The text without runs of NAV_RUN or more short lines that do not end like a sentence."""
    lines = text.split("\n")
    short = [0 < len(s := line.strip()) <= NAV_MAX_CHARS and not s.endswith(SENTENCE_END) for line in lines]
    keep = [True] * len(lines)
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and (short[j] or not lines[j].strip()):
            j += 1
        if sum(short[i:j]) >= NAV_RUN:
            keep[i:j] = [False] * (j - i)
        i = max(j, i + 1)
    return "\n".join(line for line, k in zip(lines, keep) if k)


def _tidy(text: str) -> str:
    """Blank-line runs collapsed, ends trimmed."""
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def trafilatura_text(page: str, url: str | None = None) -> str:
    """trafilatura's main text (as its evaluation runs it: tables in, comments out), then the rules."""
    text = trafilatura.extract(page, url=url, include_comments=False, include_tables=True) or ""
    return _tidy(drop_boilerplate_lines(text))


def resiliparse_text(page: str, url: str | None = None) -> str:
    """resiliparse's main-content text, without alt texts, bullets, comments or post metadata,
    then the rules and the navigation runs."""
    text = extract_plain_text(
        HTMLTree.parse(page), main_content=True, alt_texts=False, list_bullets=False, comments=False, post_meta=False
    )
    return _tidy(drop_navigation_runs(drop_boilerplate_lines(text)))


EXTRACTORS = {"trafilatura": trafilatura_text, "resiliparse": resiliparse_text}
