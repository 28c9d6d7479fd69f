"""The datatrove side of bench/classifier.py; runs in the datatrove venv, not ours.

    .bench-venvs/datatrove/bin/python bench/_datatrove_fasttext.py MODEL.bin LABEL IN.jsonl ROUNDS

datatrove's FastTextClassifierFilter (DOCUMENT mode, newlines as spaces, as our stage feeds
fastText) with keep_labels=(LABEL, 0.5) over every document of IN, calling `filter()` directly so
that only the scoring is timed, not datatrove's readers and writers; one untimed warm-up pass
(the model loads), then ROUNDS timed passes. Prints the CPU seconds of each pass and each
document's score as JSON. Imports nothing from this repository.
"""

import importlib.metadata
import json
import sys
import time

from datatrove.data import Document
from datatrove.pipeline.filters import FastTextClassifierFilter


def main(model: str, label: str, src: str, rounds: str) -> None:
    with open(src, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    step = FastTextClassifierFilter(model, keep_labels=(label.removeprefix("__label__"), 0.5), newline_replacement=" ")
    for row in rows:  # warm-up: the model loads
        step.filter(Document(text=row["text"], id=row["id"]))
    seconds, scores = [], []
    for _ in range(int(rounds)):
        docs = [Document(text=row["text"], id=row["id"]) for row in rows]
        start = time.process_time()
        for doc in docs:
            step.filter(doc)
        seconds.append(time.process_time() - start)
        scores = [doc.metadata.get(label, 0.0) for doc in docs]
    print(json.dumps({"cpu_s": seconds, "scores": scores, "version": importlib.metadata.version("datatrove")}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
