"""The tokenizer trains on a bounded, seeded sample split over the sources by their weights.

Text: sample_data/'s four sources as `make run` builds them (sources.yaml: web 0.2, books 0.4,
other 0.3, wiki 0.1; 10.4 MB of text in all, web the smallest at 0.23 MB).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.shards import write_json
from pipeline.stage import ShardContext
from pipeline.tokenizer.sample import sample_step
from pipeline.tokenizer.train import plan_sample, text_bytes_estimate, train_tokenizer
from tests.conftest import SAMPLE
from tests.tokenizer.conftest import TEST_CFG

WEIGHTS = {"web": 0.2, "books": 0.4, "other": 0.3, "wiki": 0.1}
SHARDS = {path: path.parent.name for path in sorted(SAMPLE.glob("*/part-*.parquet"))}
BOUND = 1_000_000  # about a ninth of the text


def lengths(source: str) -> list[int]:
    """UTF-8 bytes of each of a source's documents."""
    return [
        n
        for p, s in SHARDS.items()
        if s == source
        for n in pc.binary_length(pq.read_table(p, columns=["text"])["text"]).to_pylist()
    ]


def text_bytes(source: str) -> int:
    return sum(lengths(source))


def assert_fills(stats: dict, source: str, quota: float) -> None:
    """The source brings its quota to within one of its documents, never more."""
    assert quota - max(lengths(source)) < stats["sample"][source]["bytes"] <= quota, (source, stats["sample"][source])


def train(tmp_path: Path, name: str, sample_bytes: int, seed: int = 0, weights=WEIGHTS, shards=SHARDS) -> dict:
    cfg = TEST_CFG.model_copy(update={"sample_bytes": sample_bytes})
    return train_tokenizer(list(shards), cfg, tmp_path / f"{name}.json", shards, weights, seed)


@pytest.fixture(scope="module")
def bounded(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("sample")
    return folder, train(folder, "bounded", BOUND)


def test_a_corpus_larger_than_the_bound_trains_on_at_most_the_bound(bounded):
    _, stats = bounded
    assert sum(text_bytes(s) for s in WEIGHTS) > 8 * BOUND
    assert stats["bytes"] <= BOUND
    assert stats["bytes"] == sum(s["bytes"] for s in stats["sample"].values())


def test_each_source_brings_its_weight_share_of_the_bound_to_within_one_document(bounded):
    _, stats = bounded
    for source, weight in WEIGHTS.items():
        assert_fills(stats, source, weight * BOUND)
        assert 0 < stats["sample"][source]["rate"] < 1


def test_a_source_smaller_than_its_share_gives_all_it_has_and_the_others_fill_the_rest(tmp_path):
    weights = WEIGHTS | {"web": 7.0}  # 7/7.8 of the bound: far more than web's 0.23 MB
    stats = train(tmp_path, "web_heavy", BOUND, weights=weights)
    web = stats["sample"]["web"]
    assert web["rate"] == 1.0 and web["bytes"] == text_bytes("web")
    others = sum(w for s, w in weights.items() if s != "web")
    for source in ("books", "other", "wiki"):
        # The plan spreads web's shortfall by the footer estimate of web's size, within 1%.
        quota = (BOUND - web["estimated_bytes"]) * weights[source] / others
        assert_fills(stats, source, quota)
    assert stats["bytes"] <= BOUND


def test_the_same_seed_gives_a_byte_identical_tokenizer_and_another_seed_another_sample(bounded, tmp_path):
    folder, stats = bounded
    again = train(tmp_path, "again", BOUND)
    assert (tmp_path / "again.json").read_bytes() == (folder / "bounded.json").read_bytes()
    assert again["sample"] == stats["sample"]
    other = train(tmp_path, "seed1", BOUND, seed=1)
    assert other["sample"] != stats["sample"]
    assert (tmp_path / "seed1.json").read_bytes() != (folder / "bounded.json").read_bytes()


def test_a_corpus_under_the_bound_trains_exactly_as_with_no_bound(tmp_path):
    shards = {p: s for p, s in SHARDS.items() if s in ("web", "books")}  # 1.7 MB
    weights = {"web": 0.2, "books": 0.4}
    capped = train(tmp_path, "default", TEST_CFG.sample_bytes, weights=weights, shards=shards)
    whole = train(tmp_path, "whole", 0, weights=weights, shards=shards)
    assert (tmp_path / "default.json").read_bytes() == (tmp_path / "whole.json").read_bytes()
    assert capped["bytes"] == whole["bytes"] == text_bytes("web") + text_bytes("books")


def test_the_footer_estimate_of_text_bytes_is_within_two_percent(tmp_path):
    for path in SHARDS:
        actual = pc.sum(pc.binary_length(pq.read_table(path, columns=["text"])["text"])).as_py()
        assert abs(text_bytes_estimate(path) - actual) <= 0.02 * actual, path


def test_the_workers_candidates_give_the_same_tokenizer_and_training_reads_a_bounded_share(bounded, tmp_path):
    folder, stats = bounded
    cfg = TEST_CFG.model_copy(update={"sample_bytes": BOUND})
    shards = [(path, source) for path, source in SHARDS.items()]
    plan = tmp_path / "_sample" / "plan.json"
    write_json(asdict(plan_sample(shards, WEIGHTS, cfg, 0)), plan)
    files = {}
    for path, source in shards:  # as the tokenizer_sample shard step runs on each worker
        ctx = ShardContext(cfg, "tokenizer", path.stem + source, source, 0, {"tokenizer_sample_plan": plan}, tmp_path)
        written = sample_step(pq.read_table(path), ctx).files
        if written:
            files[path] = written[0]

    again = train_tokenizer(list(SHARDS), cfg, tmp_path / "from_candidates.json", SHARDS, WEIGHTS, 0, files)
    assert (tmp_path / "from_candidates.json").read_bytes() == (folder / "bounded.json").read_bytes()
    assert again["sample"] == stats["sample"]
    # What training reads: the candidates, and web's shard (its share is 88% of it: all are candidates).
    assert {SHARDS[p] for p in files} == {"books", "other", "wiki"}
    read = sum(text_bytes_estimate(f) for f in files.values()) + text_bytes("web")
    assert read < 2.5 * BOUND < sum(text_bytes(s) for s in WEIGHTS) / 3
