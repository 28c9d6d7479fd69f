"""Shard jobs start longest first: by the step's cost of the shard (privacy: its NER documents),
else by the shard file's size."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.config import PrivacyConfig
from pipeline.jobs import ShardJob
from pipeline.privacy.cost import shard_cost
from pipeline.stage import ShardContext
from pipeline.stages import registry
from pipeline.steps import longest_first


def _shards(sample_table: pa.Table, folder: Path) -> dict[str, Path]:
    """Two shards of real sample text with the `lang` labels quality gives: a smaller one of
    English passages (Tiny Shakespeare) and a larger one of German and Russian fortunes."""
    english = sample_table.filter(pc.starts_with(sample_table["id"], "shakespeare")).slice(0, 20)
    others = sample_table.filter(pc.match_substring_regex(sample_table["id"], "^fortune-(de|ru)-")).slice(0, 400)
    langs = [i.split("-")[1] for i in others["id"].to_pylist()]
    paths = {}
    for name, table, lang in (("part-00000", english, ["en"] * english.num_rows), ("part-00001", others, langs)):
        paths[name] = folder / f"{name}.parquet"
        pq.write_table(table.select(["id", "text"]).append_column("lang", pa.array(lang)), paths[name])
    return paths


def _jobs(step, paths: dict[str, Path], config) -> list[ShardJob]:
    return [ShardJob(step, path, ShardContext(config, shard=name), fingerprint="") for name, path in paths.items()]


def test_privacy_starts_the_shard_of_english_documents_first_though_it_is_smaller(sample_table, tmp_path):
    paths = _shards(sample_table, tmp_path)
    english, others = paths["part-00000"], paths["part-00001"]
    assert english.stat().st_size < others.stat().st_size / 2
    assert shard_cost(english, PrivacyConfig()) > shard_cost(others, PrivacyConfig())

    privacy = registry.get("privacy").steps[0]
    assert [job.name for job in longest_first(_jobs(privacy, paths, PrivacyConfig()))] == ["part-00000", "part-00001"]
    # With no NER language, the English shard is only its bytes.
    no_ner = PrivacyConfig(ner_languages=[])
    assert [job.name for job in longest_first(_jobs(privacy, paths, no_ner))] == ["part-00001", "part-00000"]


def test_a_step_without_a_cost_starts_the_larger_shard_first(sample_table, tmp_path):
    paths = _shards(sample_table, tmp_path)
    quality = registry.get("quality").steps[-1]
    assert quality.cost is None
    config = registry.get("quality").config()
    assert [job.name for job in longest_first(_jobs(quality, paths, config))] == ["part-00001", "part-00000"]
