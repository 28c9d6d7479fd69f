"""The report of a real (small) build: every section, valid PNGs, the manifest's numbers, no PII.

One build of ~150 sample_data documents (planted PII, duplicates and junk among them) runs once
for the module under Prefect's test harness, with a tiny tokenizer and model and a boilerplate
threshold low enough that lines shared by a few documents, PII included, are removed as
boilerplate: the report must show those lines only scrubbed.
"""

from __future__ import annotations

import base64
import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prefect.testing.utilities import prefect_test_harness

from flows.build import corpus_build
from pipeline.stats.html import sections
from pipeline.stats.report import write_report
from tests.conftest import TEST_CONFIG

pytestmark = pytest.mark.slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CONFIG = {
    **TEST_CONFIG,
    "quality": {"lingua": {"enabled": False}},  # fastText alone: no 15 s lingua load
    "dedup": {"lines": {"max_documents": 2}},  # a line in 3+ documents is boilerplate
    "pretrain": {**TEST_CONFIG["pretrain"], "max_steps": 20, "eval_interval": 10},
}
# Planted values of the types the privacy stage replaces (TITLE, DOMAIN_NAME, ... are not PII).
SCRUBBED_TYPES = {
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "US_SSN",
    "PERSON",
    "STREET_ADDRESS",
}


@pytest.fixture(scope="module")
def small_build(tmp_path_factory, sample_table: pa.Table, ground_truth: dict) -> Path:
    rng = random.Random(9)
    wanted = set(rng.sample(sorted(ground_truth["pii"]), 40))
    for copy, original in rng.sample(sorted(ground_truth["exact_duplicates"].items()), 10):
        wanted |= {copy, original}
    for copy, info in rng.sample(sorted(ground_truth["near_duplicates"].items()), 10):
        wanted |= {copy, info["original"]}
    wanted |= set(rng.sample(sorted(ground_truth["junk"]), 10))
    wanted |= set(rng.sample(sorted(set(sample_table["id"].to_pylist()) - wanted), 50))
    rows = [row for row in sample_table.to_pylist() if row["id"] in wanted]
    source = tmp_path_factory.mktemp("report_input")
    for shard in range(2):
        pq.write_table(
            pa.Table.from_pylist(rows[shard::2], schema=sample_table.schema), source / f"part-{shard:05d}.parquet"
        )
    out = tmp_path_factory.mktemp("report_build")
    with prefect_test_harness(server_startup_timeout=120):  # a loaded 2-core machine needs more than 60 s
        corpus_build(str(source), str(out), CONFIG, None, 2)
    return out


@pytest.fixture(scope="module")
def planted_pii(small_build: Path, ground_truth: dict) -> list[str]:
    """Planted PII values of the documents that went into this build."""
    manifest = json.loads((small_build / "manifest.json").read_text())
    ids = set()
    for shard in manifest["input_shards"]:
        ids |= set(pq.read_table(shard["path"], columns=["id"])["id"].to_pylist())
    return sorted(
        {
            span["value"]
            for doc, spans in ground_truth["pii"].items()
            if doc in ids
            for span in spans
            if span["type"] in SCRUBBED_TYPES and len(span["value"]) >= 6
        }
    )


def test_report_of_a_build_has_every_section_and_no_not_run(small_build: Path) -> None:
    html = (small_build / "report" / "report.html").read_text()
    for title, _, _ in sections():
        assert f">{title}</h2>" in html
    assert "not run" not in html


def test_every_image_is_an_embedded_png_also_written_beside_the_html(small_build: Path) -> None:
    report = small_build / "report"
    html = (report / "report.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', html)
    pngs = sorted(report.glob("*.png"))
    assert len(sources) == len(pngs) >= 10
    embedded = set()
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1])
        assert data.startswith(PNG_SIGNATURE)
        embedded.add(data)
    assert embedded == {p.read_bytes() for p in pngs}
    assert not re.search(r"https?://", html) and "<script" not in html


def test_stats_json_numbers_equal_the_manifest_counts(small_build: Path) -> None:
    manifest = json.loads((small_build / "manifest.json").read_text())
    stats = json.loads((small_build / "report" / "stats.json").read_text())
    funnel = {row["stage"]: row for row in stats["funnel"]}
    assert funnel["input"]["docs"] == sum(s["docs"] for s in manifest["input_shards"])
    for name in ("quality", "dedup", "privacy"):
        stage = manifest["stages"][name]
        for key in ("docs_in", "docs_kept", "docs_removed", "bytes_in", "bytes_kept", "bytes_removed"):
            assert funnel[name][key] == stage[key]
        assert {r["reason"]: r["documents"] for r in stats["reasons"][name]} == stage["reasons"]
        removed = pq.read_table(small_build / name / "removed", columns=["id", "reason"]).to_pylist()
        for r in stats["reasons"][name]:
            assert {"id": r["example_id"], "reason": r["reason"]} in removed
    tok = manifest["stages"]["tokenizer"]
    assert funnel["tokenizer"]["tokens"] == tok["train_tokens"] + tok["val_tokens"]
    assert stats["tokenizer"]["vocab_used"] == tok["stats"]["vocab_used"]
    lengths = stats["lengths"]
    assert lengths["before"]["chars"]["documents"] == manifest["stages"]["quality"]["docs_in"]
    assert lengths["after"]["words"]["documents"] == manifest["stages"]["privacy"]["docs_kept"]
    assert sum(lengths["before"]["chars"]["histogram"]["counts"]) == manifest["stages"]["quality"]["docs_in"]
    pii = stats["pii"]
    assert pii["total"] == sum(v for k, v in manifest["stages"]["privacy"]["extra"].items() if k.startswith("pii:"))
    assert sum(sum(c.values()) for c in pii["by_language"].values()) == pii["total"]
    dup = stats["duplicates"]
    assert dup["exact_duplicates"] == manifest["stages"]["dedup"]["reasons"].get("exact_duplicate", 0)
    assert dup["top_boilerplate_lines"], "the low boilerplate threshold removes some lines"
    training = stats["training"]
    assert training["final_val_loss"] == manifest["stages"]["pretrain"]["final_val_loss"]
    assert len(training["curves"]["val_bpb"]) == len(training["curves"]["val_loss"]) >= 2


def test_no_planted_pii_value_appears_anywhere_in_the_report(small_build: Path, planted_pii: list[str]) -> None:
    assert len(planted_pii) >= 20, "the build holds planted PII"
    for path in (small_build / "report").iterdir():
        content = path.read_bytes()
        leaked = [value for value in planted_pii if value.encode() in content]
        assert not leaked, f"{path.name} shows {len(leaked)} planted PII values"


def test_compare_shows_both_builds_side_by_side_with_deltas(small_build: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(small_build, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["stages"]["quality"]["docs_kept"] -= 7  # a build that kept 7 documents fewer
    (other / "manifest.json").write_text(json.dumps(manifest))
    html = write_report(small_build, compare_to=other).read_text()
    stats = json.loads((small_build / "report" / "stats.json").read_text())
    rows = {r["path"]: r for r in stats["compare"]["deltas"]["Funnel"]}
    assert rows["funnel.quality.docs_kept"]["delta"] == 7
    assert html.count('<div class="pair">') >= 10 and str(other) in html
    write_report(small_build)  # leave the plain report for the other tests


@pytest.mark.browser
def test_report_renders_in_headless_chromium(small_build: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("needs Debian's chromium for the headless render (apt-get install chromium)")
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--hide-scrollbars",
            "--window-size=1100,3000",
            f"--screenshot={shot}",
            (small_build / "report" / "report.html").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    data = shot.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 50_000  # a blank page is a few kB
