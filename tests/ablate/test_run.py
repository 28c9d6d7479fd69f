"""`corpus ablate` end to end on a real build: every run of every variant sees the same number of
training tokens with the same seeds, results.json has what the issue asks of it, and a rerun
trains only what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.ablate.run import ablate
from pipeline.ablate.variants import ABLATIONS
from pipeline.stats.report import write_report

pytestmark = pytest.mark.slow

# 4 optimizer steps of 8 x 64 tokens a run (the test build's model): the budget, not the model, is tested.
BUDGET = ["ablate.tokens=2048", "ablate.seeds=2", "ablate.variants=[raw, quality, dedup]"]


def run_results(build_dir: Path) -> dict[Path, float]:
    """Each run's result.json and when it was written."""
    return {p: p.stat().st_mtime_ns for p in sorted((build_dir / ABLATIONS).glob("*/seed-*/result.json"))}


@pytest.fixture(scope="module")
def ablated(ablation_build: Path) -> dict:
    return ablate(ablation_build, BUDGET, workers=2)


def test_every_variant_trains_on_the_same_token_budget_with_the_same_seeds(ablated, ablation_build):
    assert set(ablated["variants"]) == {"raw", "quality", "dedup"}  # keyed by name
    assert ablated["order"] == ["raw", "quality", "dedup"]
    for variant in ablated["variants"].values():
        assert variant["seeds"] == [1337, 1338] == ablated["seeds"]
        assert variant["tokens"] == 2048 and variant["tokens_per_run"] == [2048, 2048]
        assert len(variant["bpb"]) == 2 and variant["bpb_mean"] > 0 and variant["bpb_std"] >= 0
    # Fewer documents after each filter, the same budget of tokens drawn from them.
    docs = [ablated["variants"][name]["documents"] for name in ablated["order"]]
    assert docs[0] > docs[1] >= docs[2]
    assert json.loads((ablation_build / ABLATIONS / "results.json").read_text())["variants"] == ablated["variants"]
    assert (ablation_build / ABLATIONS / "bpb.png").read_bytes().startswith(b"\x89PNG")


def test_each_difference_is_judged_against_the_seed_spread(ablated):
    quality = ablated["variants"]["quality"]
    raw, dedup = ablated["variants"]["raw"], ablated["variants"]["dedup"]
    assert raw["vs_raw"] is None and quality["vs_baseline"]["to"] == "raw" and dedup["vs_baseline"]["to"] == "quality"
    diff = quality["vs_raw"]
    assert diff["diff"] == pytest.approx(quality["bpb_mean"] - raw["bpb_mean"], abs=1e-5)
    assert diff["spread"] == pytest.approx(quality["bpb_std"] + raw["bpb_std"], abs=1e-5)
    assert diff["exceeds_seed_spread"] == (abs(diff["diff"]) > diff["spread"])


def test_the_report_shows_the_ablations_beside_the_model_card(ablated, ablation_build):
    html = write_report(ablation_build).read_text()
    assert ">Model card</h2>" in html
    section = html.split(">Ablations</h2>", 1)[1]
    assert all(f">{name}<" in section for name in ablated["order"])
    assert "data:image/png;base64," in section and "seed spread" in section
    assert (ablation_build / "report" / "ablations.png").exists()


def test_a_rerun_skips_finished_runs_and_trains_only_the_missing_one(ablated, ablation_build):
    written = run_results(ablation_build)
    assert len(written) == 6
    again = ablate(ablation_build, BUDGET, workers=2)
    assert run_results(ablation_build) == written  # nothing trained again
    assert again["variants"] == ablated["variants"]

    missing = ablation_build / ABLATIONS / "dedup" / "seed-1338" / "result.json"
    missing.unlink()
    third = ablate(ablation_build, BUDGET, workers=2)
    rewritten = run_results(ablation_build)
    assert [p for p in rewritten if rewritten[p] != written.get(p)] == [missing]
    # The run resumed from its final checkpoint: the same model, the same score.
    assert third["variants"]["dedup"]["bpb"] == ablated["variants"]["dedup"]["bpb"]
