"""HTML to main text: trafilatura (default) or resiliparse (fast), then checks of our own.

Both libraries keep some of what surrounds an article. Two kinds of checks follow them:
- on the page's tree, through resiliparse's `minimal_html` output with links (one line per block,
  its links marked): a line that is mostly link text is a teaser, a menu or a link list, and
  goes; in default mode only a line of LINK_LINE_MIN_CHARS or more (a headline's length), as a
  shorter one is as often a link in the article's own text (a name, "the event on Facebook", a
  solution's label). In fast mode, so does a heading left with nothing under it (the label of
  such a list: "Most read", "Weitere Informationen"; not a lead set in a heading tag). The fast
  mode reads what resiliparse takes for post metadata too, which often holds the article's
  opening. In default mode, the article's lead paragraph, which trafilatura often leaves out
  because pages set it outside the article's container, is taken back from resiliparse's main
  content: the sentence-like block just before the first line trafilatura kept (above the
  headline) and the one just before its first line that is no heading (between the headline and
  the body);
- on the text's lines: calls to subscribe, follow or share, "read also" teasers, bare section
  labels and photo captions or credits, in any of the languages listed, and only lines short
  enough to be that and nothing else; the fast mode adds the navigation that resiliparse's
  main-content heuristic leaves in (two or more short lines together without a sentence's
  punctuation, in any script).
Where the result is next to nothing (MIN_TEXT_CHARS), the heuristic missed the page: the default
mode takes the fast mode's text, and the fast mode the whole page's text, checked alike.
They were first chosen on the development half of trafilatura's evaluation pages, then kept,
narrowed or dropped by their effect on each half on its own (a check must not lose on either):
bench/extract_quality.py, bench/results/extract_quality.md.
"""

from __future__ import annotations

import html
import re
from typing import NamedTuple

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
# Captions and credits under pictures, in the languages of the line rules.
CAPTION = re.compile(
    r"^\W*(?:foto|fotos|bild|photo|image|credit|crédito|quelle|source)\s*:"
    r"|\([^()]*(?:foto|photo|bild|crédito|credit|symbolbild|getty|imago|dpa)[^()]*\)\s*$",
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
# sentence (in any script: the ideographic full stops too), next to another such line, is
# navigation: on the development half two such lines together held boilerplate three times as
# often as article text (a run of three let nine more boilerplate snippets through, for three).
NAV_MAX_CHARS = 40
NAV_RUN = 2
SENTENCE_END = tuple(".!?:;\"'”“»«)…。！？")


def _boilerplate(line: str) -> bool:
    text = line.strip()
    if not text:
        return False
    if text.lower().rstrip(":").strip() in LABELS:
        return True
    if len(text) > MAX_BOILERPLATE_CHARS:
        return False
    if TEASER_START.match(text) or CAPTION.search(text):
        return True
    return bool(BOILERPLATE_START.match(text) and CALL_TARGETS.search(text))


def drop_boilerplate_lines(text: str) -> str:
    """The text without call-to-act, teaser, label and caption lines."""
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


class Block(NamedTuple):
    """One line of resiliparse's block-per-line output: its text, the share of it that is link
    text, and whether it is a heading."""

    text: str
    links: float
    heading: bool


# resiliparse's options shared by both modes: no alt texts, bullets, comments or post metadata.
RESILIPARSE_OPTIONS = {"alt_texts": False, "list_bullets": False, "comments": False, "post_meta": False}
# The fast mode keeps what resiliparse takes for post metadata: its heuristic takes article text
# too (teasers, standfirsts, first paragraphs: 12 of the snippets marked to keep on the development
# half), and the checks after it remove most of the bylines and dates. The default mode's blocks
# only check trafilatura's lines and find the lead, where it did not help.
FAST_OPTIONS = RESILIPARSE_OPTIONS | {"post_meta": True}
TAG = re.compile(r"<(/?)([a-zA-Z0-9]+)[^>]*>")
HEADING_TAGS = tuple(f"<h{n}" for n in range(1, 7))
# A line with at least this share of link text is there to send the reader elsewhere.
MAX_LINK_SHARE = 0.5
# Default mode: the teasers and link lists trafilatura keeps are headlines; a shorter linked line
# is as often a link in the article's text. Dropping the shorter ones too took 4 snippets to keep
# and no boilerplate out of the held-out half of the evaluation pages, and changed nothing on the
# development half.
LINK_LINE_MIN_CHARS = 40
# The lead paragraph taken back in default mode: a sentence, not a headline or a caption.
LEAD_MIN_CHARS = 80
LEAD_END = tuple('.!"”»…')
# Text this short is a page the extractor's heuristic missed (its article outside what the
# heuristic takes for main content), seldom a page with that little to say: the next-best text
# is taken instead (default mode: the fast mode's; fast mode: the whole page's, checked).
MIN_TEXT_CHARS = 100


def blocks(tree: HTMLTree, main_content: bool, options: dict = RESILIPARSE_OPTIONS) -> list[Block]:
    """The page as resiliparse's lines, each with its share of link text.

    `minimal_html` keeps `<a>` (with `links=True`) and headings; the text between the tags is
    what the plain-text output would say. Links are counted within a line: resiliparse leaves a
    bare `<a href="">` (a named anchor) unclosed, which would otherwise mark the rest of the page.
    """
    out = extract_plain_text(tree, preserve_formatting="minimal_html", links=True, main_content=main_content, **options)
    result = []
    for line in out.split("\n"):
        parts, link, in_link, pos = [], 0, False, 0
        for tag in TAG.finditer(line):
            part = html.unescape(line[pos : tag.start()])
            parts.append(part)
            link += len(part) if in_link else 0
            if tag.group(2).lower() == "a" and 'href=""' not in tag.group(0):
                in_link = not tag.group(1)
            pos = tag.end()
        part = html.unescape(line[pos:])
        parts.append(part)
        link += len(part) if in_link else 0
        text = "".join(parts)
        size = len(text.strip())
        # A table row (cells joined by tabs) is data even where its cells link: not counted.
        share = min(link / size, 1.0) if size and "\t" not in text.strip() else 0.0
        result.append(Block(text, share, line.lstrip().startswith(HEADING_TAGS)))
    return result


def _key(line: str) -> str:
    """A line as compared across extractors: whitespace collapsed, list markers off."""
    return " ".join(line.split()).lstrip("-•*| ").strip()


def drop_link_lines(text: str, page: list[Block]) -> str:
    """The text without lines of LINK_LINE_MIN_CHARS or more that are mostly link text wherever
    they stand on the page (an article's title is also a link in its breadcrumb or a "most read"
    list: it stays)."""
    share: dict[str, float] = {}
    for block in page:
        if key := _key(block.text):
            share[key] = min(share.get(key, 1.0), block.links)
    return "\n".join(line for line in text.split("\n") if not _link_line(line, share))


def _link_line(line: str, share: dict[str, float]) -> bool:
    """A line of a headline's length or more that is mostly link text wherever it stands."""
    return len(line.strip()) >= LINK_LINE_MIN_CHARS and share.get(_key(line), 0.0) >= MAX_LINK_SHARE


def _lead_like(block: Block) -> bool:
    """A block that reads like an article's lead: a sentence of LEAD_MIN_CHARS or more, not mostly
    links."""
    text = " ".join(block.text.split())
    return len(text) >= LEAD_MIN_CHARS and text.endswith(LEAD_END) and block.links < MAX_LINK_SHARE


def _lead_places(lines: list[str], main: list[Block]) -> set[tuple[int, int]]:
    """Where a lead may have been left out: (line, block) numbers of the text's first line found
    among the blocks (the headline, often) and of its first such line that is no heading (the
    body). Lines are matched whole: a short block ("Anzeige", a section name) is part of many."""
    position: dict[str, int] = {}
    for number, block in enumerate(main):
        if key := _key(block.text):
            position.setdefault(key, number)
    found = [(n, position[key]) for n, line in enumerate(lines) if (key := _key(line)) in position]
    body = [(n, number) for n, number in found if not main[number].heading]
    return set(found[:1] + body[:1])


def with_lead(text: str, main: list[Block]) -> str:
    """The text with the block just before its first line and the one just before its first body
    line in `main`, each where it reads like a lead and the text lacks it: pages set the lead
    above the headline or between it and the body, outside the container trafilatura reads."""
    filled = [block for block in main if block.text.strip()]
    lines = text.split("\n")
    found = " ".join(text.split())
    for line, number in sorted(_lead_places(lines, filled), reverse=True):
        lead = filled[number - 1] if number else None
        if lead and _lead_like(lead) and " ".join(lead.text.split()) not in found:
            lines.insert(line, lead.text.strip())
            found += " " + " ".join(lead.text.split())
    return "\n".join(lines)


def _main_text(main: list[Block]) -> str:
    """Fast mode: resiliparse's main content without link lines and orphaned headings. A heading
    that reads like a lead is one, set in a heading tag: it is no list's label."""
    drop = [bool(block.text.strip()) and block.links >= MAX_LINK_SHARE for block in main]
    filled = [i for i, block in enumerate(main) if block.text.strip()]
    for n, i in enumerate(filled):
        if main[i].heading and not drop[i] and not _lead_like(main[i]):
            after = filled[n + 1] if n + 1 < len(filled) else None
            drop[i] = after is None or drop[after] or main[after].heading
    return "\n".join(block.text for block, dropped in zip(main, drop) if not dropped)


def _resiliparse(tree: HTMLTree, main_content: bool) -> str:
    """resiliparse's text without link lines and orphaned headings, then the line rules and the
    navigation runs."""
    text = _main_text(blocks(tree, main_content=main_content, options=FAST_OPTIONS))
    return _tidy(drop_navigation_runs(drop_boilerplate_lines(text)))


def _fast(tree: HTMLTree) -> str:
    """The fast mode's text: the main content, or the whole page's text where the main-content
    heuristic found next to nothing."""
    text = _resiliparse(tree, main_content=True)
    return text if len(text) >= MIN_TEXT_CHARS else max(text, _resiliparse(tree, main_content=False), key=len)


def trafilatura_text(page: str, url: str | None = None) -> str:
    """trafilatura's main text (as its evaluation runs it: tables in, comments out) without link
    lines, with the lead paragraph, then the line rules; the fast mode's text where trafilatura
    found next to nothing."""
    tree = HTMLTree.parse(page)
    text = trafilatura.extract(page, url=url, include_comments=False, include_tables=True) or ""
    if text:
        text = with_lead(drop_link_lines(text, blocks(tree, main_content=False)), blocks(tree, main_content=True))
        text = _tidy(drop_boilerplate_lines(text))
    return text if len(text) >= MIN_TEXT_CHARS else max(text, _fast(tree), key=len)


def resiliparse_text(page: str, url: str | None = None) -> str:
    """resiliparse's main content, checked (`_resiliparse`), or the whole page's where the main
    content is next to nothing."""
    return _fast(HTMLTree.parse(page))


EXTRACTORS = {"trafilatura": trafilatura_text, "resiliparse": resiliparse_text}
