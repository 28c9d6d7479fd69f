"""C4 cleaning (Raffel et al. 2020, "Exploring the Limits of Transfer Learning", section 2.2).

C4 cleans a page line by line and keeps the lines that read like prose; a page is dropped
only for "lorem ipsum" (placeholder text), a curly bracket (code) or, after cleaning, fewer
than five sentences. The order of checks follows the reference implementation
(tensorflow_datasets `c4_utils.clean_page`, also datatrove's `C4QualityFilter`): a line is
first judged by the line rules, and only lines that survive them are looked at for
"lorem ipsum" and "{". So a code line without terminal punctuation is simply dropped, while
`function () {` ending in a full stop marks the page as code.

`clean(text, cfg)` does the work once and returns a `C4Result`: the cleaned text, how many
lines and characters were removed (per-document columns), the sentence count and the page
flags. `reason(result, cfg)` turns it into the name of the failed rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.config import C4Config

END_PUNCTUATION = (".", "?", "!", '"', "'")  # C4: a line must end like a sentence (or a quote)
ELLIPSIS = "..."  # ...but not trail off
CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")  # Wikipedia-style markers, removed
# Cookie banners and legal footers (the reference code's list, matched in lower case).
POLICY_PHRASES = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
# spaCy's sentencizer (datatrove's sentence splitter) ends a sentence at ! ? or a full stop that
# is not part of an ellipsis or a known abbreviation (Mr., Oct., single initials), once closing
# quotes or brackets, whitespace and more text follow. Within 0.3% of its counts on our lines.
# Written to begin with the mark itself (the checks of what precedes it are lookbehinds after
# it), so the regex engine tries only the positions that hold one: ~7x faster than leading
# with the lookbehinds, same matches.
_SENTENCE_END = re.compile(
    r"(?:[!?]|\.(?<!\b[A-Z]\.)(?<!\b(?:Mr|Ms|Dr|St|Jr|Sr|No)\.)"
    r"(?<!\b(?:Mrs|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Oct|Nov|Dec|Gov|Gen|Rev)\.)(?<!\bProf\.|\bSept\.))"
    r"(?<![.!?][.!?])[!?]*(?!\.)['\"’”)\]]*\s+(?=\S)"
)


@dataclass(frozen=True, slots=True)
class C4Result:
    text: str  # the kept lines joined by "\n"
    lines_removed: int
    chars_removed: int  # characters of the original text not in the cleaned text
    sentences: int  # sentences in the kept lines
    lorem_ipsum: bool  # a surviving line contains "lorem ipsum"
    curly_bracket: bool  # a surviving line contains "{"


def count_sentences(line: str) -> int:
    """Sentences in one line: 1 + the sentence ends followed by more text."""
    return 1 + len(_SENTENCE_END.findall(line)) if line else 0


def clean(text: str, cfg: C4Config) -> C4Result:
    """Apply the C4 line rules to every line; collect the page flags and the sentence count."""
    kept: list[str] = []
    lines_removed = sentences = 0
    lorem = curly = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue  # blank lines are layout, not removed content
        limit = cfg.max_word_length
        if limit and len(line) > limit and max(map(len, line.split())) > limit:
            lines_removed += 1
            continue
        n_words = len(line.split())  # counted before citations go, as in the reference code
        if cfg.remove_citations and "[" in line:
            line = CITATION.sub("", line)
        if cfg.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS)):
            lines_removed += 1
            continue
        if n_words < cfg.min_words_per_line:
            lines_removed += 1
            continue
        lower = line.lower()
        lorem = lorem or "lorem ipsum" in lower
        if cfg.filter_javascript and "javascript" in lower:
            lines_removed += 1
            continue
        curly = curly or "{" in line
        if cfg.filter_policy and any(phrase in lower for phrase in POLICY_PHRASES):
            lines_removed += 1
            continue
        sentences += count_sentences(line)
        kept.append(line)
    cleaned = "\n".join(kept)
    return C4Result(cleaned, lines_removed, len(text) - len(cleaned), sentences, lorem, curly)


def reason(result: C4Result, cfg: C4Config) -> str | None:
    """The page-level C4 rule the cleaned document fails, or None."""
    if cfg.filter_lorem_ipsum and result.lorem_ipsum:
        return "c4_lorem_ipsum"
    if cfg.filter_curly_bracket and result.curly_bracket:
        return "c4_curly_bracket"
    if not result.text:
        return "c4_no_lines_left"
    if result.sentences < cfg.min_sentences:
        return "c4_too_few_sentences"
    return None
