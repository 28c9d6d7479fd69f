"""The fastText quality classifier on real sample text: trained the same way every time, it scores
held-out reference text above held-out junk, a published model drops in by path and label, and
GPT-3's Pareto rule keeps some low scores by a seeded draw."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pipeline.classifier import model
from pipeline.classifier.stage import SCORE, run_shard
from pipeline.config import ClassifierConfig, load_config
from pipeline.errors import InputError
from pipeline.stage import ShardContext
from tests.conftest import SAMPLE

SMALL = ClassifierConfig(enabled=True, dim=16, bucket=20_000, epoch=10)


@pytest.fixture(scope="module")
def reference() -> list[str]:
    """English and German reference documents (lingua sentences, UDHR paragraphs)."""
    return [
        line
        for lang in ("en", "de")
        for line in (SAMPLE / "reference" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


@pytest.fixture(scope="module")
def junk(sample_table: pa.Table, ground_truth: dict) -> list[str]:
    """The sample's planted junk that is not real prose: word lists and short fragments (a line
    repeated is the same words as prose, which no bag of words tells apart)."""
    ids = {doc for doc, kind in ground_truth["junk"].items() if kind in ("word_list", "short_fragment")}
    return [row["text"] for row in sample_table.to_pylist() if row["id"] in ids]


def trained(tmp_path: Path, positives: list[str], negatives: list[str], cfg: ClassifierConfig = SMALL) -> Path:
    data, out = tmp_path / "train.txt", tmp_path / "model.bin"
    model.write_training_set(positives, negatives, cfg.positive_label, data, seed=1)
    model.train(data, cfg, 1, out)
    return out


def test_the_installed_fasttext_can_train():
    model.check_binding()  # the full binding's files won over fasttext-predict's (Makefile)


def test_training_twice_gives_the_same_model_bytes(tmp_path, reference, junk):
    first = trained(tmp_path / "a", reference[:200], junk[:200])
    second = trained(tmp_path / "b", reference[:200], junk[:200])
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()


def test_held_out_reference_text_scores_above_held_out_junk(tmp_path, reference, junk):
    path = trained(tmp_path, reference[::2], junk[::2])
    scorer = model.scorer(path, SMALL.positive_label)
    good, bad = scorer.score(reference[1::2]), scorer.score(junk[1::2])
    # AUC: the chance that a held-out reference document outscores a held-out junk one.
    auc = (good[:, None] > bad[None, :]).mean() + 0.5 * (good[:, None] == bad[None, :]).mean()
    assert auc > 0.9, auc
    assert good.min() >= 0 and good.max() <= 1


def test_the_shard_step_scores_every_row_and_removes_below_the_threshold(tmp_path, reference, junk):
    path = trained(tmp_path, reference[::2], junk[::2])
    texts = reference[1:40:2] + junk[1:40:2]
    table = pa.table({"id": [f"d{i}" for i in range(len(texts))], "text": texts})
    cfg = SMALL.model_copy(update={"threshold": 0.5})
    result = run_shard(table, ShardContext(cfg, stage="classifier", artifacts={"classifier_model": path}))
    assert result.kept.num_rows + result.removed.num_rows == table.num_rows
    assert min(result.kept[SCORE].to_pylist()) >= 0.5 > max(result.removed[SCORE].to_pylist())
    assert set(result.removed["reason"].to_pylist()) == {"classifier_low"}


def test_the_pareto_rule_keeps_some_low_scores_by_a_seeded_draw_per_document():
    rng = np.random.default_rng(0)
    uniforms, scores = rng.random(20_000), np.full(20_000, 0.5)
    keep = model.pareto_keep(uniforms, scores, alpha=9.0)
    # P(pareto(9) > 0.5) = 1.5^-9 = 2.6%: GPT-3 keeps a few low-scoring pages for diversity.
    assert abs(keep.mean() - 1.5**-9) < 0.005
    assert model.pareto_keep(uniforms, np.ones(20_000), 9.0).all()  # a perfect score always stays
    assert np.array_equal(keep, model.pareto_keep(uniforms, scores, 9.0))


def test_a_published_model_drops_in_by_path_with_its_own_label(tmp_path, reference, junk):
    cfg = SMALL.model_copy(update={"positive_label": "__label__wiki"})
    path = trained(tmp_path, reference[::2], junk[::2], cfg)
    user = ClassifierConfig(enabled=True, model=str(path), positive_label="__label__wiki")
    table = pa.table({"id": ["a", "b"], "text": [reference[1], junk[1]]})
    result = run_shard(table, ShardContext(user, artifacts={"classifier_model": path}))
    assert result.kept["id"].to_pylist() == ["a"]
    wrong = ClassifierConfig(enabled=True, model=str(path), positive_label="__label__hq")
    with pytest.raises(InputError, match=r"has no label '__label__hq' \(its labels: __label__"):
        run_shard(table, ShardContext(wrong, artifacts={"classifier_model": path}))


def test_positive_source_must_name_one_of_the_sources(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "sources: [{name: web, input: x}, {name: wiki, input: y}]\nclassifier: {enabled: true, positive_source: books}\n"
    )
    with pytest.raises(InputError, match="positive_source names 'books', which is none of the sources"):
        load_config(config)


def test_line_unit_trains_on_lines_and_scores_a_document_by_its_lines_weighted_mean(tmp_path, reference, junk):
    text = "Thou art a king.\n\n  \nWherefore art thou Romeo, the Montague?\n"
    assert model.examples("d", text, "line") == [("d#0", "Thou art a king."), ("d#3", text.splitlines()[3])]
    assert model.examples("d", text, "document") == [("d", text)]
    cfg = SMALL.model_copy(update={"unit": "line"})
    # Documents of five reference lines each, against the junk documents' lines.
    documents = ["\n".join(reference[i : i + 5]) for i in range(0, 100, 5)]
    positives = [t for i, doc in enumerate(documents) for _, t in model.examples(f"p{i}", doc, cfg.unit)]
    negatives = [t for i, doc in enumerate(junk[::2]) for _, t in model.examples(f"n{i}", doc, cfg.unit)]
    path = trained(tmp_path, positives, negatives, cfg)
    assert len(positives) == 100 and len((tmp_path / "train.txt").read_text().splitlines()) == 100 + len(negatives)
    texts = [documents[0] + "\n" + junk[1], junk[3], "   \n"]
    scorer = model.scorer(path, cfg.positive_label)
    scores = model.document_scores(scorer, texts, "line")
    lines = [line for line in texts[0].splitlines() if line.strip()]
    assert scores[0] == pytest.approx(np.average(scorer.score(lines), weights=[len(line) for line in lines]), abs=1e-6)
    assert scores[2] == 0.0
    table = pa.table({"id": ["a", "b", "c"], "text": texts})
    result = run_shard(table, ShardContext(cfg, stage="classifier", artifacts={"classifier_model": path}))
    by_id = dict(
        zip(
            result.kept["id"].to_pylist() + result.removed["id"].to_pylist(),
            result.kept[SCORE].to_pylist() + result.removed[SCORE].to_pylist(),
        )
    )
    assert [by_id[i] for i in "abc"] == pytest.approx(scores.tolist(), abs=1e-6)
