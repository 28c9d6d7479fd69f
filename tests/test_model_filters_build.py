"""The three model-based filter stages in a real build of the sample slice: the classifier trained
in the build, toxicity scores, decontamination against a benchmark folder cut from the slice's own
plays; their counts in the manifest (conservation checked), their report sections, and a rerun
that skips them."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prefect.testing.utilities import prefect_test_harness

from flows.build import corpus_build
from tests.conftest import TEST_CONFIG

pytestmark = pytest.mark.slow

STAGES = ["quality", "classifier", "toxicity", "dedup", "decontamination", "report"]


def read(build_dir: Path, stage: str, removed: bool = False) -> pa.Table:
    folder = build_dir / stage / ("removed" if removed else "")
    return pa.concat_tables(pq.read_table(p) for p in sorted(folder.glob("part-*.parquet")))


@pytest.fixture(scope="module")
def built(sample_slice: Path, tmp_path_factory) -> tuple[Path, dict, dict, list[str]]:
    out = tmp_path_factory.mktemp("model_filters")
    plays = [
        row
        for path in sorted(sample_slice.glob("part-*.parquet"))
        for row in pq.read_table(path).to_pylist()
        if row["id"].startswith("shakespeare-") and len(row["text"].split()) > 200
    ][:5]
    folder = out.parent / f"{out.name}-benchmarks"
    folder.mkdir()
    # Each item: 30 words from the middle of a play of the slice, as a reading-comprehension passage.
    items = [{"passage": " ".join(p["text"].split()[100:130]), "question": "Who speaks?"} for p in plays]
    (folder / "plays_rc.jsonl").write_text("".join(json.dumps(item) + "\n" for item in items))
    config = TEST_CONFIG | {
        "classifier": {"enabled": True, "threshold": 0.2, "dim": 16, "bucket": 20_000},
        "toxicity": {"enabled": True},
        "decontamination": {"enabled": True, "benchmarks": str(folder), "text_fields": ["passage"]},
    }
    with prefect_test_harness(server_startup_timeout=120):
        first = corpus_build(str(sample_slice), str(out / "build"), config, STAGES, 2)
        rerun = corpus_build(str(sample_slice), str(out / "build"), config, STAGES, 2)
    return out / "build", first, rerun, [p["id"] for p in plays]


def test_each_stage_conserves_documents_and_emits_only_its_reasons(built):
    _, manifest, _, _ = built
    assert manifest["conservation"] == {"ok": True, "failures": []}
    stages = manifest["stages"]
    assert stages["classifier"]["docs_in"] == stages["quality"]["docs_kept"]
    assert set(stages["classifier"]["reasons"]) <= {"classifier_low"}
    assert set(stages["toxicity"]["reasons"]) <= {"toxic"}
    assert set(stages["decontamination"]["reasons"]) <= {"contaminated", "validation_overlap"}


def test_the_classifier_is_trained_in_the_build_and_scores_every_document(built):
    build_dir, manifest, _, _ = built
    model = manifest["stages"]["classifier"]["build_steps"]["classifier_model"]
    assert model["positives"] == model["negatives"] > 0
    assert (build_dir / model["artifact"]).exists() and (build_dir / model["training_set"]).exists()
    scores = [
        s
        for removed in (False, True)
        for s in read(build_dir, "classifier", removed)["quality_classifier_score"].to_pylist()
    ]
    assert len(scores) == manifest["stages"]["classifier"]["docs_in"] and None not in scores


def test_the_planted_benchmark_passages_are_removed_and_counted_per_benchmark(built):
    build_dir, manifest, _, planted = built
    entry = manifest["stages"]["decontamination"]
    reached = set(read(build_dir, "dedup")["id"].to_pylist()) & set(planted)
    assert reached, "some plays with a planted passage get through the earlier stages"
    removed = read(build_dir, "decontamination", removed=True)
    contaminated = set(removed.filter(pa.compute.equal(removed["reason"], "contaminated"))["id"].to_pylist())
    assert reached <= contaminated
    assert entry["extra"]["contaminated:plays_rc"] == len(contaminated)
    index = entry["build_steps"]["decontamination_index"]
    assert index["benchmarks"][0]["items"] == 5 and index["validation_docs"] > 0


def test_the_report_has_a_section_for_each_stage(built):
    build_dir, manifest, _, _ = built
    stats = json.loads((build_dir / "report" / "stats.json").read_text())
    assert [r["source"] for r in stats["classifier"]["sources"]] == ["input"]
    assert sum(stats["classifier"]["sources"][0]["histogram"]) == manifest["stages"]["classifier"]["docs_in"]
    assert stats["toxicity"]["languages"][0]["model"] > 0
    assert stats["decontamination"]["benchmarks"][0]["name"] == "plays_rc"
    html = (build_dir / "report" / "report.html").read_text()
    for title in ("Quality classifier", "Toxicity", "Decontamination", "Validation documents in training"):
        assert title in html
    assert (build_dir / "report" / "classifier.png").exists()


def test_a_rerun_skips_the_training_the_index_and_every_shard(built):
    _, _, rerun, _ = built
    stages = rerun["stages"]
    assert stages["classifier"]["build_steps"]["classifier_model"]["skipped"]
    assert stages["decontamination"]["build_steps"]["decontamination_index"]["skipped"]
    for name in ("classifier", "toxicity", "decontamination"):
        assert all(shard["skipped"] for shard in stages[name]["shards"])
