"""The perplexity filter: a Kneser-Ney byte n-gram model per language and CCNet-style buckets.

Texts: the shipped reference set (sample_data/reference: lingua-py sentences and UDHR
paragraphs), the committed sample shards with their planted junk (sample_data/ground_truth.json),
and lingua-py sentences (../shared/data) for a language without reference text.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pipeline.config import LinguaConfig, PerplexityConfig, QualityConfig
from pipeline.quality import perplexity
from pipeline.quality.stage import run_shard
from pipeline.stage import ShardContext

REFERENCE = perplexity.DEFAULT_REFERENCE


def _reference_docs(lang: str) -> list[str]:
    return [line for line in (REFERENCE / f"{lang}.txt").read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def reference() -> perplexity.Reference:
    return perplexity.train_reference(PerplexityConfig())


def test_kneser_ney_next_byte_probabilities_sum_to_one_for_seen_and_unseen_contexts() -> None:
    model = perplexity.NgramModel.train(_reference_docs("en"), order=5)
    # A frequent context, a rare one, one never seen, one in another script, and the document start.
    for context in ("of th", "declaration", "qxzjv", "права", ""):
        probs = model.next_byte_probs(context)
        assert probs.min() > 0  # smoothing leaves no byte impossible
        assert probs.sum() == pytest.approx(1.0, abs=1e-9)


def test_kneser_ney_prefers_the_continuation_the_reference_uses() -> None:
    model = perplexity.NgramModel.train(_reference_docs("en"), order=5)
    probs = model.next_byte_probs("human righ")
    assert probs[ord("t")] > 0.5


@pytest.mark.parametrize("order", [1, 3, 5, 8])
def test_scoring_each_distinct_ngram_once_gives_the_bits_of_scoring_every_byte(sample_table, order) -> None:
    """perplexities() scores each distinct n-gram once; the result must equal, bit for bit, the
    definition: every byte's log-probability where it stands, summed in text order."""
    model = perplexity.NgramModel.train(_reference_docs("de") + _reference_docs("en"), order=order)
    texts = sample_table.column("text").to_pylist()[:300] + ["", "a", "   "]
    data, ends, lengths = perplexity._encode(texts, order)
    doc = np.repeat(np.arange(len(texts)), lengths)
    nll = -np.bincount(doc, weights=model.log_probs(data, ends), minlength=len(texts))
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.exp(nll / lengths)
    assert np.array_equal(model.perplexities(texts), expected, equal_nan=True)


def test_planted_word_lists_score_above_the_median_of_unseen_reference_prose(sample_table, ground_truth) -> None:
    """Prose the model has not seen (one fold held out) is more probable than word salad."""
    word_lists = {}
    for row in sample_table.select(["id", "text"]).to_pylist():
        if ground_truth["junk"].get(row["id"]) == "word_list":
            word_lists.setdefault(ground_truth["languages"][row["id"]], []).append(row["text"])
    checked = 0
    for lang in sorted(word_lists):
        if not (REFERENCE / f"{lang}.txt").exists():
            continue
        docs = _reference_docs(lang)
        model = perplexity.NgramModel.train([d for i, d in enumerate(docs) if i % 5], order=5)
        prose = np.median(model.perplexities(docs[::5]))
        junk = model.perplexities(word_lists[lang])
        assert (junk > prose).all(), (lang, prose, junk)
        checked += 1
    assert checked >= 5


def test_buckets_follow_the_reference_cutoffs_and_repeat_exactly(reference, sample_table, ground_truth) -> None:
    rows = sample_table.take(list(range(0, sample_table.num_rows, 22))).select(["id", "text"]).to_pylist()
    texts = [r["text"] for r in rows]
    langs = [(ground_truth["languages"][r["id"]] or "en").split("-")[0] for r in rows]
    ppl, buckets = reference.score(texts, langs)
    again = perplexity.train_reference(PerplexityConfig()).score(texts, langs)
    assert (ppl, buckets) == again
    assert set(buckets) == {"head", "middle", "tail", None}
    for value, bucket, lang in zip(ppl, buckets, langs):
        if value is None:
            assert lang not in reference.models and bucket is None
            continue
        head, tail = reference.cutoffs[lang]
        assert bucket == ("head" if value <= head else "tail" if value > tail else "middle")


def test_saved_model_scores_exactly_like_the_trained_one(reference, tmp_path) -> None:
    path = tmp_path / "lm.npz"
    reference.save(path)
    loaded = perplexity.Reference.load(path)
    texts = _reference_docs("pl")[:20] + _reference_docs("ru")[:20]
    langs = ["pl"] * 20 + ["ru"] * 20
    assert loaded.cutoffs == reference.cutoffs
    assert loaded.score(texts, langs) == reference.score(texts, langs)


def test_drop_tail_removes_tail_documents_and_leaves_languages_without_reference_unscored(
    sample_table, shared_data: Path
) -> None:
    with (shared_data / "langid" / "lingua_dev.jsonl").open(encoding="utf-8") as f:
        dutch = " ".join(r["text"] for r in map(json.loads, f) if r["lang"] == "nl" and r["kind"] == "sentence")
    rows = sample_table.filter(pa.compute.starts_with(sample_table["id"], "shakespeare-")).slice(0, 40)
    table = pa.table({"id": rows["id"].to_pylist() + ["nl"], "text": rows["text"].to_pylist() + [dutch[:3000]]})
    cfg = QualityConfig(
        languages=["en", "nl"], lingua=LinguaConfig(enabled=False), perplexity=PerplexityConfig(drop_tail=True)
    )
    result = run_shard(table, ShardContext(cfg, stage="quality"))
    removed = result.removed.to_pylist()
    tails = [r for r in removed if r["reason"] == "perplexity_tail"]
    # Shakespeare's verse is far from the modern prose of the English reference: all tail.
    assert tails and all(r["perplexity_bucket"] == "tail" and r["perplexity"] > 6 for r in tails)
    assert all(b != "tail" for b in result.kept["perplexity_bucket"].to_pylist())
    dutch_row = next(r for r in result.kept.to_pylist() + removed if r["id"] == "nl")
    assert dutch_row["lang"] == "nl" and dutch_row["perplexity"] is None and dutch_row["perplexity_bucket"] is None


def test_a_reference_file_with_too_few_documents_is_refused(tmp_path) -> None:
    (tmp_path / "en.txt").write_text("One line.\nTwo lines.\n", encoding="utf-8")
    with pytest.raises(ValueError, match="en.txt: 2 reference documents"):
        perplexity.train_reference(PerplexityConfig(reference_dir=str(tmp_path)))
