"""A development set of edited partial copies: answers cut and lightly revised from real articles.

Stand-in for held-out human text reuse (people answering a question by copying from an
encyclopedia article: verbatim cuts of several passages, and light revisions with words
substituted and sentences reordered; 200-300-word answers against 500-1,000-word articles;
independent answers on the same topic are the negatives), made the same way from real text:

- Articles: the English pages of ../shared/data (trafilatura's evaluation pages, `text` field,
  and dolma's Common Crawl documents; Apache-2.0 repositories, pages (c) their publishers, used
  here for development only and never committed). A page's body is its lines of 20+ words that
  end like a sentence and occur once in the whole collection (menus, teasers and repeated blurbs
  go); consecutive body paragraphs are grouped into articles of 500-1,000 words (a length drawn for
  each), so a long page gives several articles on one topic.
- Roles: articles in page order take turns: a source (it is in the set), then a donor (never in
  the set; only a cut of it is).
- Per source, four copies: two near copies (2-4 runs of consecutive sentences, 200-300 words in
  all, in source order, verbatim) and two light revisions (other such cuts; in each passage a pair of
  neighbouring sentences swapped with odds 0.7, a share of 0.1-0.6 of its replaceable words
  replaced by a WordNet synonym of the word's most frequent sense, and the passages shuffled).
- Negatives: a 200-300-word cut of every donor, matched to the source closest in topic (tf-idf
  cosine of their words; each source first takes its closest donor), so mostly another part of
  the same page, else a page on a similar subject. A negative that shares any run of 8 words
  with a source, a copy or another negative is dropped: it is not independent text.
- Measured: the containment (shares of the answer's shingles found in the source) of every
  answer in its source, on character 7-grams (the dedup default) and word 3-grams.

What it does not reproduce: real people's edits (a person rewrites phrases, not single words, and
WordNet's first sense is sometimes the wrong one), the held-out set's encyclopedic register, and
its mix of near copies and revisions; recall is therefore reported against measured containment
as well as overall. Needs ../shared/data and Debian's `wordnet-base` (WordNet 3.0, Princeton's
WordNet licence: `apt-get install wordnet-base`).
"""

from __future__ import annotations

import gzip
import json
import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench import SHARED_DATA as SHARED
from bench import Skip, needs_data, skipping
from pipeline.dedup.exact import normalise
from pipeline.dedup.minhash import shingle_hashes

WORDNET = Path("/usr/share/wordnet")
ARTICLE_WORDS = (500, 1000)
ANSWER_WORDS = (200, 300)
COPIES_PER_KIND = 2  # near copies and light revisions per source, each from its own cut
INDEPENDENT_NGRAM = 8  # a negative sharing a run of this many words with a source is a copy
# Words a light revision leaves alone: function words have no synonym worth the name.
STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "he",
        "she",
        "they",
        "we",
        "you",
        "i",
        "me",
        "him",
        "her",
        "them",
        "us",
        "his",
        "their",
        "our",
        "your",
        "my",
        "not",
        "no",
        "so",
        "than",
        "then",
        "there",
        "here",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "some",
        "can",
        "could",
        "will",
        "would",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
    ]
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“(]?[A-Z0-9])")
_WORD = re.compile(r"[a-z]+")


def needs() -> None:
    """Skip unless the pages and WordNet are here (bench.Skip names what is missing)."""
    needs_data(SHARED / "web/trafilatura_dev.jsonl.gz", SHARED / "corpora/cc_docs.jsonl")
    if not (WORDNET / "data.noun").exists():
        raise Skip(f"needs WordNet in {WORDNET} (apt-get install wordnet-base)")


@dataclass
class EditedCopies:
    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    # answer id -> (kind, source id): kind is near_copy, light_revision or negative; a
    # negative's source is the source it was matched to by topic.
    answers: dict[str, tuple[str, str]] = field(default_factory=dict)
    # answer id -> {"char7": containment in its source, "word3": ...}
    containment: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, doc_id: str, text: str) -> None:
        self.ids.append(doc_id)
        self.texts.append(text)


def build(seed: int = 18) -> EditedCopies:
    rng = random.Random(seed)
    synonyms = wordnet_synonyms()
    articles = english_articles(rng)
    sources = [a for k, a in enumerate(articles) if k % 2 == 0]
    donors = [a for k, a in enumerate(articles) if k % 2]
    out = EditedCopies()
    for source_id, paragraphs in sources:
        cuts = [cut(_sentences(paragraphs), rng) for _ in range(COPIES_PER_KIND * 2)]
        if None in cuts:
            continue
        out.add(source_id, "\n\n".join(paragraphs))
        for k, passages in enumerate(cuts):
            kind = "near_copy" if k % 2 == 0 else "light_revision"
            if kind == "light_revision":
                passages = revise(passages, rng, synonyms)
            answer_id = f"{kind}/{k // 2}/{source_id}"
            out.add(answer_id, "\n\n".join(" ".join(p) for p in passages))
            out.answers[answer_id] = (kind, source_id)
    # Every donor gives one negative, matched to the source closest in topic: first each source
    # takes its closest donor, then the donors left go to their closest source.
    kept = [k for k, (source_id, _) in enumerate(sources) if source_id in out.ids]
    similarity = _topic_similarity([sources[k][1] for k in kept], [d[1] for d in donors])  # (sources, donors)
    match: dict[int, int] = {}
    for s in range(len(kept)):
        free = [d for d in np.argsort(-similarity[s], kind="stable") if d not in match]
        if free:
            match[int(free[0])] = s
    for d in range(len(donors)):
        match.setdefault(d, int(np.argmax(similarity[:, d])))
    seen_ngrams = set().union(*(_word_ngrams(t) for t in out.texts))
    for d, s in sorted(match.items()):
        passages = cut(_sentences(donors[d][1]), rng)
        if passages is None:
            continue
        text = "\n\n".join(" ".join(p) for p in passages)
        ngrams = _word_ngrams(text)
        if ngrams & seen_ngrams:  # shares a run of words with the set: not independent text
            continue
        seen_ngrams |= ngrams
        out.add(f"negative/{donors[d][0]}", text)
        out.answers[f"negative/{donors[d][0]}"] = ("negative", sources[kept[s]][0])
    text_of = dict(zip(out.ids, out.texts))
    for answer_id, (_, source_id) in out.answers.items():
        out.containment[answer_id] = {
            "char7": containment(text_of[answer_id], text_of[source_id], "char", 7),
            "word3": containment(text_of[answer_id], text_of[source_id], "word", 3),
        }
    return out


def _sentences(paragraphs: list[str]) -> list[str]:
    return [s for p in paragraphs for s in _SENTENCE_END.split(p)]


def english_articles(rng: random.Random) -> list[tuple[str, list[str]]]:
    """(article id, body paragraphs) of 500-1,000 words (a length drawn per article), in page order."""
    from pipeline.quality.langid import detect_languages

    with gzip.open(SHARED / "web/trafilatura_dev.jsonl.gz", "rt", encoding="utf-8") as f:
        pages = [(r["id"], r["text"]) for r in map(json.loads, f)]
    with (SHARED / "corpora/cc_docs.jsonl").open(encoding="utf-8") as f:
        pages += [(r["id"], r["text"]) for r in map(json.loads, f)]
    bodies = [(page_id, _body_lines(text)) for page_id, text in pages]
    seen = Counter(line for _, lines in bodies for line in lines)
    bodies = [(page_id, [line for line in lines if seen[line] == 1]) for page_id, lines in bodies]
    bodies = [(page_id, lines) for page_id, lines in bodies if sum(len(x.split()) for x in lines) >= ARTICLE_WORDS[0]]
    langs, _ = detect_languages(["\n".join(lines) for _, lines in bodies])
    articles = []
    for (page_id, lines), lang in zip(bodies, langs):
        if lang != "en":
            continue
        group: list[str] = []
        target = rng.randint(*ARTICLE_WORDS)
        for line in lines:
            group.append(line)
            words = sum(len(x.split()) for x in group)
            if words >= target:
                if words <= ARTICLE_WORDS[1]:
                    articles.append((f"{page_id}#{len(articles)}", group))
                group, target = [], rng.randint(*ARTICLE_WORDS)
    return articles


def _body_lines(text: str) -> list[str]:
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return [line for line in lines if len(line.split()) >= 20 and line[-1] in ".!?\"'”’)"]


def cut(sentences: list[str], rng: random.Random, tries: int = 100) -> list[list[str]] | None:
    """2-4 runs of consecutive sentences, one from each of as many equal stretches of the
    article (so they never overlap and keep the article's order), 200-300 words in all."""
    for _ in range(tries):
        k = rng.randint(2, 4)
        target = rng.randint(*ANSWER_WORDS)
        bounds = [round(len(sentences) * j / k) for j in range(k + 1)]
        passages = []
        for lo, hi in zip(bounds, bounds[1:]):
            start = rng.randrange(lo, max(hi, lo + 1))
            run, words = [], 0
            for sentence in sentences[start:hi]:
                if run and words + len(sentence.split()) > target / k * 1.3:
                    break
                run.append(sentence)
                words += len(sentence.split())
            passages.append(run)
        total = sum(len(s.split()) for p in passages for s in p)
        if all(passages) and ANSWER_WORDS[0] <= total <= ANSWER_WORDS[1]:
            return passages
    return None


def revise(passages: list[list[str]], rng: random.Random, synonyms: dict[str, list[str]]) -> list[list[str]]:
    """A light revision: neighbouring sentences swapped, words replaced by synonyms, passages shuffled."""
    rate = rng.uniform(0.1, 0.6)
    out = []
    for passage in passages:
        sentences = list(passage)
        if len(sentences) >= 2 and rng.random() < 0.7:
            i = rng.randrange(len(sentences) - 1)
            sentences[i], sentences[i + 1] = sentences[i + 1], sentences[i]
        out.append([_substitute(s, rng, rate, synonyms) for s in sentences])
    rng.shuffle(out)
    return out


def _substitute(sentence: str, rng: random.Random, rate: float, synonyms: dict[str, list[str]]) -> str:
    """Lower-case content words (and plain -s plurals of them) replaced with odds `rate`."""
    words = sentence.split(" ")
    for i, token in enumerate(words):
        core = token.strip(".,;:!?\"“”()'’")
        if not core.isalpha() or not core.islower() or core in STOP or len(core) < 3:
            continue
        choices, suffix = synonyms.get(core), ""
        if not choices and core.endswith("s"):
            choices, suffix = synonyms.get(core[:-1]), "s"
        if choices and rng.random() < rate:
            words[i] = token.replace(core, rng.choice(choices) + suffix)
    return " ".join(words)


def wordnet_synonyms() -> dict[str, list[str]]:
    """One-word lemma -> the other one-word lemmas of its most frequent sense that has any."""
    synonyms: dict[str, list[str]] = {}
    for pos in ("noun", "verb", "adj", "adv"):
        members = {}
        for line in (WORDNET / f"data.{pos}").open(encoding="latin-1"):
            if line.startswith("  "):  # the licence header
                continue
            fields = line.split()
            count = int(fields[3], 16)
            members[fields[0]] = [w.split("(")[0].lower() for w in fields[4 : 4 + 2 * count : 2]]
        for line in (WORDNET / f"index.{pos}").open(encoding="latin-1"):
            if line.startswith("  "):
                continue
            fields = line.split()
            lemma = fields[0]
            if "_" in lemma or lemma in synonyms:
                continue
            pointers = int(fields[3])
            for offset in fields[6 + pointers :]:  # synset offsets, most frequent sense first
                others = [w for w in members[offset] if w != lemma and w.isalpha()]
                if others:
                    synonyms[lemma] = others
                    break
    return synonyms


def _topic_similarity(a: list[list[str]], b: list[list[str]]) -> np.ndarray:
    """tf-idf cosine of the content words of each article of a against each of b: (len(a), len(b))."""
    counts = [
        Counter(w for p in paragraphs for w in _WORD.findall(p.lower()) if w not in STOP and len(w) > 2)
        for paragraphs in a + b
    ]
    df = Counter(w for c in counts for w in c)
    vocab = {w: i for i, w in enumerate(sorted(df))}
    matrix = np.zeros((len(counts), len(vocab)))
    for row, c in enumerate(counts):
        for w, n in c.items():
            matrix[row, vocab[w]] = n * math.log(len(counts) / df[w])
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-12
    return matrix[: len(a)] @ matrix[len(a) :].T


def _word_ngrams(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return set(zip(*(words[k:] for k in range(INDEPENDENT_NGRAM))))


def containment(part: str, whole: str, shingle: str, n: int) -> float:
    """Share of part's distinct shingles (dedup's own, after its normalisation) found in whole."""
    x = shingle_hashes(normalise(part), n, True, shingle)
    y = shingle_hashes(normalise(whole), n, True, shingle)
    return len(np.intersect1d(x, y)) / max(len(x), 1)


def main() -> None:
    needs()
    made = build()
    kinds = Counter(kind for kind, _ in made.answers.values())
    print(f"{len(made.ids) - len(made.answers)} sources, " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    for kind in sorted(kinds):
        values = np.array([made.containment[a]["char7"] for a, (k, _) in made.answers.items() if k == kind])
        print(f"{kind}: char 7-gram containment 5/50/95th percentile {np.percentile(values, [5, 50, 95]).round(2)}")


if __name__ == "__main__":
    with skipping("edited_copies"):
        main()
