"""Decontamination on real sample text: benchmark passages planted in documents are found, clean
documents are left alone, spans are cut as lm-eval's Janitor cuts them, and the index is the same
whatever its partitioning."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.config import BuildConfig, DecontaminationConfig
from pipeline.decontamination import benchmarks, ngrams
from pipeline.decontamination.index import IndexWriter, NgramIndex
from pipeline.decontamination.stage import build_index, cut, run_shard
from pipeline.errors import InputError
from pipeline.stage import BuildContext, ShardContext
from pipeline.tokenizer.encode import is_val


@pytest.fixture(scope="module")
def plays(sample_table: pa.Table) -> list[dict]:
    """Tiny Shakespeare documents of the sample (books source), as rows."""
    rows = [r for r in sample_table.to_pylist() if r["id"].startswith("shakespeare-")]
    return sorted(rows, key=lambda r: r["id"])[:200]


def passage(text: str, words: int, rng: random.Random) -> str:
    tokens = text.split()
    start = rng.randrange(0, len(tokens) - words)
    return " ".join(tokens[start : start + words])


def index_of(tmp_path: Path, texts: list[str], n: int = 13, partitions: int = 4) -> NgramIndex:
    writer = IndexWriter(tmp_path / "index", partitions)
    grams, _ = ngrams.document_ngrams(texts, n)
    writer.add(grams, np.zeros(len(grams), dtype=np.uint16))
    writer.finish()
    return NgramIndex(tmp_path / "index")


def built_index(tmp_path: Path, docs: list[dict], folder: Path, **section) -> Path:
    """The stage's build step over one shard of `docs`; returns the index.json it wrote."""
    shard = tmp_path / "part-00000.parquet"
    pq.write_table(pa.Table.from_pylist(docs), shard)
    cfg = BuildConfig.model_validate({"decontamination": {"enabled": True, "benchmarks": str(folder), **section}})
    ctx = BuildContext(
        build_dir=tmp_path,
        stage="decontamination",
        folder=tmp_path / "decontamination",
        config=cfg.decontamination,
        config_hash=cfg.section_hash("decontamination"),
        seed=cfg.seed,
        shards=[("part-00000", shard)],
        build_config=cfg,
    )
    return tmp_path / build_index(ctx)["artifact"]


def test_gpt3_normalisation_lowercases_and_deletes_punctuation():
    assert ngrams.words("Thou art — the KING’s man, «art thou?»") == [
        "thou",
        "art",
        "the",
        "kings",
        "man",
        "art",
        "thou",
    ]


def test_word_spans_point_at_each_normalised_word():
    text = "O Romeo, — Romeo! wherefore art thou"
    spans = ngrams.word_spans(text)
    assert [text[s:e] for s, e in spans] == ["O", "Romeo,", "Romeo!", "wherefore", "art", "thou"]
    assert len(spans) == len(ngrams.words(text))


def test_every_planted_13_word_passage_is_found_and_no_clean_play_is_flagged(tmp_path, plays):
    rng = random.Random(3)
    planted = rng.sample(range(len(plays)), 30)
    # The benchmark item is the passage recased and repunctuated, as a question set would print it.
    items = [{"question": passage(plays[i]["text"], 14, rng).upper() + "?"} for i in planted]
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "plays_qa.jsonl").write_text("".join(json.dumps(item) + "\n" for item in items))
    meta = built_index(tmp_path, plays, folder, validation="off")
    table = pa.Table.from_pylist(plays)
    result = run_shard(
        table, ShardContext(DecontaminationConfig(enabled=True), artifacts={"decontamination_index": meta})
    )
    removed = set(result.removed["id"].to_pylist())
    assert removed >= {plays[i]["id"] for i in planted}  # recall 1.0
    # Others may share a planted passage (a line repeated across speeches), never many.
    assert len(removed - {plays[i]["id"] for i in planted}) <= 2
    assert set(result.removed["contaminated_by"].to_pylist()) == {"plays_qa"}
    assert result.extra["contaminated:plays_qa"] == len(removed)
    assert set(result.kept["contaminated_by"].to_pylist()) == {None}


def test_a_passage_shorter_than_the_ngram_cannot_be_checked_and_is_counted(tmp_path, plays):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    short = " ".join(plays[0]["text"].split()[:12])
    (folder / "tiny.jsonl").write_text(json.dumps({"text": short}) + "\n")
    meta = json.loads(built_index(tmp_path, plays[:5], folder, validation="off").read_text())
    assert meta["benchmarks"] == [{"name": "tiny", "file": str(folder / "tiny.jsonl"), "items": 1, "short_items": 1}]
    assert meta["benchmark_ngrams"] == 0


def test_cut_takes_the_span_and_200_characters_around_it_and_keeps_the_rest(tmp_path, plays):
    long_doc = "\n\n".join(p["text"] for p in plays[:6])
    words = long_doc.split()
    middle = " ".join(words[len(words) // 2 : len(words) // 2 + 13])
    index = index_of(tmp_path, [middle])
    cfg = DecontaminationConfig(action="cut")
    left = cut(long_doc, 13, index, cfg)
    assert left is not None and middle not in " ".join(left.split())
    assert len(long_doc) - len(left) >= len(middle) + 2 * 200 - 10  # the window on both sides
    assert left.split("\n")[0] == long_doc[: len(left.split("\n")[0])]  # the head is kept as it was


def test_cut_removes_a_document_left_too_short(tmp_path, plays):
    text = plays[0]["text"]
    index = index_of(tmp_path, [text])  # the whole document is benchmark text
    assert cut(text, 13, index, DecontaminationConfig(action="cut", max_spans=1000)) is None


def test_training_documents_sharing_text_with_validation_documents_are_counted(tmp_path, plays):
    seed = BuildConfig().seed
    val = next(p for p in plays if is_val(p["id"], seed, 0.05))
    copy = {"id": "copy-of-val", "text": plays[1]["text"] + "\n\n" + val["text"][:400]}
    assert not is_val(copy["id"], seed, 0.05)
    docs = plays[:40] + [val, copy]
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "none.jsonl").write_text(json.dumps({"text": "a b c"}) + "\n")
    meta = built_index(tmp_path, docs, folder, validation="remove")
    table = pa.Table.from_pylist(docs)
    result = run_shard(
        table,
        ShardContext(
            DecontaminationConfig(enabled=True, validation="remove"), artifacts={"decontamination_index": meta}
        ),
    )
    assert "copy-of-val" in result.removed["id"].to_pylist()
    assert result.removed.filter(pc.equal(result.removed["id"], "copy-of-val"))["reason"].to_pylist() == [
        "validation_overlap"
    ]
    assert val["id"] in result.kept["id"].to_pylist()  # a validation document is not checked against itself
    assert result.extra["validation_overlap_docs"] >= 1


def test_the_index_is_the_same_sorted_array_whatever_its_partitions(tmp_path, plays):
    texts = [p["text"] for p in plays[:50]]
    one = index_of(tmp_path / "one", texts, partitions=1)
    many = index_of(tmp_path / "many", texts, partitions=16)
    assert np.array_equal(one.keys, many.keys) and np.all(np.diff(one.keys.astype(np.float64)) >= 0)
    grams, _ = ngrams.document_ngrams(texts, 13)
    assert many.contains(grams).all()


def test_a_bad_benchmark_line_is_one_error_naming_the_file_and_row(tmp_path):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "broken.jsonl").write_text('{"text": "fine"}\n{"text": unterminated\n')
    with pytest.raises(InputError, match=r"broken\.jsonl: row 2 is not JSON"):
        list(benchmarks.item_texts(benchmarks.benchmark_files(str(folder))["broken"], []))


def test_a_text_field_no_item_has_is_an_error_naming_the_file(tmp_path):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "qa.jsonl").write_text('{"query": "what is it"}\n')
    with pytest.raises(InputError, match=r"qa\.jsonl: no item has the field 'question'"):
        list(benchmarks.item_texts(folder / "qa.jsonl", ["question"]))


def test_parquet_benchmarks_read_like_jsonl(tmp_path, plays):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    rows = [{"question": p["text"][:300], "choices": ["yes", "no"], "label": 1} for p in plays[:3]]
    pq.write_table(pa.Table.from_pylist(rows), folder / "pq.parquet")
    (folder / "js.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    files = benchmarks.benchmark_files(str(folder))
    assert list(benchmarks.item_texts(files["pq"], [])) == list(benchmarks.item_texts(files["js"], []))
