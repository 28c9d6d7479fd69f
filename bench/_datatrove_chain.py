"""The datatrove side of bench/quality_vs_datatrove.py; runs in the datatrove venv, not ours.

    .bench-venvs/datatrove/bin/python bench/_datatrove_chain.py IN.jsonl OUT.jsonl [FILTER|chain] [no_alpha]
    .bench-venvs/datatrove/bin/python bench/_datatrove_chain.py IN.jsonl OUT.jsonl languages=en,de,...

Chains GopherQualityFilter -> GopherRepetitionFilter -> C4QualityFilter -> FineWebQualityFilter
(datatrove defaults; C4 rewrites the text the next filter sees) over every document of IN, and
calls each filter's `filter()` directly, so only the rules are timed, not datatrove's readers
and writers. With FILTER (gopher_quality, gopher_repetition, c4, fineweb) only that one runs; `no_alpha`
turns off Gopher's alphabetic-words rule (max_non_alpha_words_ratio=None). `languages=...` puts
datatrove's LanguageFilter (fastText lid.176, keep-list, threshold 0.65) before the chain; it
loads lid.176 from $HF_HOME/assets/datatrove/lid/ft176/ (the caller puts the model there).
Writes one line per document (id, kept, reason, final text, CPU seconds) and prints the totals
as JSON. Imports nothing from this repository.
"""

import importlib.metadata
import json
import os
import sys
import time

from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    LanguageFilter,
)


def main(src: str, dst: str, only: str = "chain", no_alpha: str = "") -> None:
    with open(src, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    chain = [
        ("gopher_quality", GopherQualityFilter(**({"max_non_alpha_words_ratio": None} if no_alpha else {}))),
        ("gopher_repetition", GopherRepetitionFilter()),
        ("c4", C4QualityFilter()),
        ("fineweb", FineWebQualityFilter()),
    ]
    if only.startswith("languages="):
        chain.insert(0, ("language", LanguageFilter(languages=only.removeprefix("languages=").split(","))))
    elif only != "chain":
        chain = [(name, step) for name, step in chain if name == only]
    # A warm-up pass over copies of the documents, untimed (our side makes one too): spaCy's
    # tokenizer loads, and its vocabulary caches every word once, as in a long-running worker.
    # Copies, because C4QualityFilter rewrites the text it filters.
    for row in rows:
        warm = Document(text=row["text"], id=row["id"])
        for _, step in chain:
            verdict = step.filter(warm)
            if not (verdict[0] if isinstance(verdict, tuple) else verdict):
                break

    docs = [Document(text=row["text"], id=row["id"]) for row in rows]
    results = []
    cpu, wall = time.process_time(), time.perf_counter()
    for doc in docs:
        start = time.process_time()
        reason = None
        for name, step in chain:
            verdict = step.filter(doc)
            keep, why = verdict if isinstance(verdict, tuple) else (verdict, None)
            if not keep:
                reason = f"{name}:{why}"
                break
        results.append((doc, reason, time.process_time() - start))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall

    with open(dst, "w", encoding="utf-8") as f:
        for doc, reason, seconds in results:
            f.write(
                json.dumps(
                    {
                        "id": doc.id,
                        "kept": reason is None,
                        "reason": reason,
                        "text": doc.text if reason is None else None,
                        "cpu_s": seconds,
                    }
                )
                + "\n"
            )
    print(
        json.dumps(
            {
                "cpu_s": cpu,
                "wall_s": wall,
                "docs": len(docs),
                "version": importlib.metadata.version("datatrove"),
                "pid": os.getpid(),
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])
