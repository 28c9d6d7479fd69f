"""Write the Gopher stop-word lists: per language, the 8 spaCy stop words most frequent in text.

Gopher's rule asks for at least two of eight very frequent English function words (the, be, to,
of, and, that, have, with). For other languages we take the same shape of list: the 8 words of
spaCy's stop-word list (spacy.lang.<code>.stop_words, MIT) that occur most often in lingua-py's
test sentences and the UDHR paragraphs of that language (../shared/data/langid). A language gets
no list unless each of its 8 words occurs at least 10 times as a whole word and together they are
at least 5% of its words (Gopher's eight are 23% of English): scripts written without spaces
(zh, ja, th, ...) and languages with too little text fail that. English keeps the paper's list. Deterministic (ties alphabetical); run from the repository root:

    .venv/bin/python pipeline/quality/stopwords/make_lists.py [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import importlib
import json
from collections import Counter
from pathlib import Path

from pipeline.quality.rules import WORD

HERE = Path(__file__).resolve().parent
GOPHER_ENGLISH = ("the", "be", "to", "of", "and", "that", "have", "with")
LIST_SIZE = 8
MIN_COUNT = 10  # occurrences of the rarest listed word
MIN_SHARE = 0.05  # of all words, for the 8 together
TO_FASTTEXT = {"nb": "no"}  # lingua / BCP 47 code -> the fastText label the rule sees
SPACY_CODES = {"no": "nb"}  # fastText label -> spaCy module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=HERE.parents[3] / "shared" / "data")
    args = ap.parse_args()
    texts: dict[str, list[str]] = {}
    with (args.shared / "langid/lingua_dev.jsonl").open(encoding="utf-8") as f:
        for r in map(json.loads, f):
            if r["kind"] == "sentence":
                texts.setdefault(TO_FASTTEXT.get(r["lang"], r["lang"]), []).append(r["text"])
    with (args.shared / "langid/udhr_paragraphs_dev.jsonl").open(encoding="utf-8") as f:
        for r in map(json.loads, f):
            lang = r["bcp47"].split("-")[0]
            texts.setdefault(TO_FASTTEXT.get(lang, lang), []).append(r["text"])
    for old in HERE.glob("*.txt"):
        old.unlink()
    (HERE / "en.txt").write_text("\n".join(GOPHER_ENGLISH) + "\n", encoding="utf-8")
    for lang in sorted(set(texts) - {"en"}):
        try:
            module = importlib.import_module(f"spacy.lang.{SPACY_CODES.get(lang, lang)}.stop_words")
        except ModuleNotFoundError:
            continue
        stop = {w.lower() for w in module.STOP_WORDS}
        words = [w for t in texts[lang] for w in WORD.findall(t.lower())]
        counts = Counter(w for w in words if w in stop)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:LIST_SIZE]
        share = sum(n for _, n in ranked) / max(len(words), 1)
        if len(ranked) == LIST_SIZE and ranked[-1][1] >= MIN_COUNT and share >= MIN_SHARE:
            (HERE / f"{lang}.txt").write_text("\n".join(w for w, _ in ranked) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
