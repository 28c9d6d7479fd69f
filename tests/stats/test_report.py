"""The statistics report: built from a small, self-consistent build directory (manifest + metrics)."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import BuildConfig
from pipeline.errors import InputError
from pipeline.stats.html import sections
from pipeline.stats.report import write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CANARY_EMAIL = "ada.canary.lovelace@example.org"

# 18 languages, so the top 15 + "other" grouping is exercised.
LANG_IN = {
    "en": 3000,
    "de": 1500,
    "es": 1200,
    "fr": 1000,
    "it": 800,
    "pt": 600,
    "ru": 500,
    "pl": 400,
    "cs": 300,
    "ja": 200,
    "zh": 150,
    "nl": 120,
    "sv": 90,
    "fi": 60,
    "tr": 40,
    "ko": 20,
    "ar": 12,
    "hi": 8,
}
KEPT_LANGS = {"en", "de", "es", "fr", "it", "pt", "ru", "pl", "cs"}


def _halves(n: int) -> tuple[int, int]:
    return n // 2, n - n // 2


def _stage(
    docs_in: int, bytes_in: int, reasons: dict[str, int], bytes_removed: int, extra: dict[str, int]
) -> dict[str, Any]:
    """A filter stage's entry, with two shard records whose counts add up to its totals."""
    removed = sum(reasons.values())
    totals = {
        "docs_in": docs_in,
        "docs_kept": docs_in - removed,
        "docs_removed": removed,
        "bytes_in": bytes_in,
        "bytes_kept": bytes_in - bytes_removed,
        "bytes_removed": bytes_removed,
    }
    shards = [
        {
            "name": f"part-0000{i}",
            "input": f"in/part-0000{i}.parquet",
            "input_fingerprint": "f" * 64,
            **{k: _halves(v)[i] for k, v in totals.items()},
            "reasons": {k: _halves(v)[i] for k, v in reasons.items()},
            "extra": {},
            "seconds": 6.1,
            "skipped": i == 1,
        }
        for i in range(2)
    ]
    return {
        "status": "done",
        "seconds": 12.3,
        "config_hash": "0123456789abcdef",
        **totals,
        "reasons": reasons,
        "extra": extra,
        "shards": shards,
    }


def _manifest(build_dir: Path) -> dict[str, Any]:
    docs_in = sum(LANG_IN.values())  # 10,000
    lang_out = {k: int(v * 0.8) for k, v in LANG_IN.items() if k in KEPT_LANGS}
    quality_removed = docs_in - sum(lang_out.values())
    lang_removed = sum(v for k, v in LANG_IN.items() if k not in KEPT_LANGS)
    quality = _stage(
        docs_in,
        9_000_000,
        {
            "lang_not_kept": lang_removed,
            "gopher_short_doc": quality_removed - lang_removed - 100,
            "gopher_mean_word_length_low": 100,
        },
        2_000_000,
        {**{f"lang_in:{k}": v for k, v in LANG_IN.items()}, **{f"lang_out:{k}": v for k, v in lang_out.items()}},
    )
    dedup = _stage(
        quality["docs_kept"],
        quality["bytes_kept"],
        {"exact_duplicate": 300, "near_duplicate": 150},
        400_000,
        {"exact_duplicate_clusters": 120, "near_duplicate_clusters": 70},
    )
    privacy = _stage(
        dedup["docs_kept"],
        dedup["bytes_kept"],
        {},
        0,
        {"pii:EMAIL_ADDRESS": 12, "pii:PERSON": 40, "pii:PHONE_NUMBER": 7, "ner_documents": 5000},
    )
    return {
        "corpus_version": "0.1.0",
        "build_dir": str(build_dir),
        "input": "sample_data",
        "workers": 2,
        "versions": {"python": "3.11.7", "pyarrow": "17.0.0", "torch": "2.13.0"},
        "config": BuildConfig().model_dump(mode="json"),
        "input_shards": [
            {
                "name": f"part-0000{i}",
                "path": f"sample_data/part-0000{i}.parquet",
                "fingerprint": "ab"[i] * 64,
                "docs": _halves(docs_in)[i],
                "bytes": 4_500_000,
            }
            for i in range(2)
        ],
        "stages": {
            "quality": quality,
            "dedup": dedup,
            "privacy": privacy,
            "tokenizer": {
                "status": "done",
                "seconds": 8.1,
                "vocab_size": 8192,
                "train_docs": 6400,
                "val_docs": 337,
                "train_tokens": 1_500_000,
                "val_tokens": 80_000,
                "train_bytes": 6_000_000,
                "val_bytes": 320_000,
            },
            "pretrain": {
                "status": "done",
                "seconds": 150.0,
                "params": 1_234_567,
                "steps": 400,
                "tokens_seen": 819_200,
                "tokens_per_s": 5461.3,
                "initial_val_loss": 9.01,
                "final_val_loss": 5.2,
                "device": "cpu",
            },
        },
        "conservation": {"ok": True, "failures": []},
    }


def _metrics(steps: int = 400, every: int = 50) -> list[dict[str, Any]]:
    rows = []
    for step in range(0, steps + 1, 10):
        loss = 5.0 + 4.0 * math.exp(-step / 80)
        rows.append(
            {
                "step": step,
                "train_loss": round(loss + 0.1 * math.sin(step), 4),
                "val_loss": round(loss + 0.2, 4) if step % every == 0 else None,
                "tokens_per_s": 5400.0,
                "elapsed_s": step * 0.37,
            }
        )
    return rows


def _build_dir(tmp_path: Path, manifest: dict[str, Any] | None = None, metrics: bool = True) -> Path:
    build = tmp_path / "build"
    build.mkdir()
    (build / "manifest.json").write_text(json.dumps(manifest or _manifest(build)))
    if metrics:
        (build / "model").mkdir()
        (build / "model" / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in _metrics()))
    return build


def _images(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', html)


@pytest.fixture(scope="module")
def full_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build where every stage ran, reported once (charts take ~1 s of CPU) for the read-only tests.

    Its shard files carry a PII canary: the report reads only the manifest, so it must never show.
    """
    build = _build_dir(tmp_path_factory.mktemp("full"))
    planted = pa.table({"id": ["doc-1"], "text": [f"Write to {CANARY_EMAIL} for the minutes."]})
    for folder in ("quality", "privacy/removed"):
        (build / folder).mkdir(parents=True)
        pq.write_table(planted, build / folder / "part-00000.parquet")
    assert write_report(build) == build / "report" / "report.html"
    return build


def test_report_has_html_stats_and_every_section(full_build: Path) -> None:
    html = (full_build / "report" / "report.html").read_text()
    assert json.loads((full_build / "report" / "stats.json").read_text())
    for title, _, _ in sections():
        assert f">{title}</h2>" in html
    assert "not run" not in html  # every stage ran


def test_a_stage_the_config_switched_off_says_off_not_not_run(full_build: Path) -> None:
    # The model-based filters are off by default (BuildConfig()), so the build did not miss them.
    stats = json.loads((full_build / "report" / "stats.json").read_text())
    html = (full_build / "report" / "report.html").read_text()
    for name in ("classifier", "toxicity", "decontamination"):
        assert stats["stages"][name] == "off"
        assert f"{name}: off in this build's config" in html
    assert {r["stage"]: r["status"] for r in stats["funnel"]}["classifier"] == "off"


def test_every_image_is_a_png_and_there_is_one_per_chart(full_build: Path) -> None:
    build = full_build
    html = (build / "report" / "report.html").read_text()
    sources = _images(html)
    assert len(sources) == 5  # funnel, reasons, languages, PII, loss
    for src in sources:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix) :]).startswith(PNG_SIGNATURE)
    pngs = sorted(p.name for p in (build / "report").glob("*.png"))
    assert pngs == ["funnel.png", "languages.png", "loss.png", "pii.png", "reasons.png"]


def test_html_is_self_contained(full_build: Path) -> None:
    html = (full_build / "report" / "report.html").read_text()
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()


def test_stats_json_numbers_equal_the_manifest_counts(full_build: Path) -> None:
    manifest = json.loads((full_build / "manifest.json").read_text())
    text = (full_build / "report" / "stats.json").read_text()
    stats = json.loads(text)
    assert text == json.dumps(stats, sort_keys=True, indent=2) + "\n"

    funnel = {row["stage"]: row for row in stats["funnel"]}
    assert funnel["input"]["docs"] == sum(s["docs"] for s in manifest["input_shards"]) == 10_000
    for name in ("quality", "dedup", "privacy"):
        stage = manifest["stages"][name]
        for key in ("docs_in", "docs_kept", "docs_removed", "bytes_in", "bytes_kept", "bytes_removed"):
            assert funnel[name][key] == stage[key]
        assert funnel[name]["docs_removed_share"] == stage["docs_removed"] / stage["docs_in"]
        assert {r["reason"]: r["documents"] for r in stats["reasons"][name]} == stage["reasons"]
    assert stats["counters"] == {"dedup": {"exact_duplicate_clusters": 120, "near_duplicate_clusters": 70}}
    quality_timing = stats["run"]["timings"][0]
    assert (quality_timing["stage"], quality_timing["shards"], quality_timing["shards_skipped"]) == ("quality", 2, 1)

    langs = stats["languages"]
    assert [r["lang"] for r in langs[:3]] == ["en", "de", "es"]
    assert len(langs) == 16 and langs[-1]["lang"] == "other"
    assert langs[-1]["before"] == LANG_IN["ko"] + LANG_IN["ar"] + LANG_IN["hi"]
    assert sum(r["before"] for r in langs) == manifest["stages"]["quality"]["docs_in"]

    assert stats["pii"] == {
        "entities": [
            {"entity": "PERSON", "count": 40},
            {"entity": "EMAIL_ADDRESS", "count": 12},
            {"entity": "PHONE_NUMBER", "count": 7},
        ],
        "total": 59,
        "ner_documents": 5000,
        "documents": manifest["stages"]["privacy"]["docs_in"],
        "by_language": None,
    }
    assert stats["tokenizer"]["vocab_size"] == 8192
    assert stats["tokenizer"]["train_bytes_per_token"] == 4.0
    training = stats["training"]
    assert training["final_val_loss"] == 5.2 and training["initial_val_loss"] == 9.01
    assert training["val_bits_per_byte"] == pytest.approx(5.2 * 80_000 / 320_000 / math.log(2))
    assert training["metrics_rows"] == len(_metrics())


def test_numbers_in_the_html_are_the_manifest_counts(full_build: Path) -> None:
    manifest = json.loads((full_build / "manifest.json").read_text())
    html = (full_build / "report" / "report.html").read_text()
    for name in ("quality", "dedup"):
        assert f'<td class="num">{manifest["stages"][name]["docs_kept"]:,}</td>' in html
    assert "<td>gopher_short_doc</td>" in html


def test_missing_stages_render_as_not_run(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "build")
    for name in ("dedup", "privacy", "tokenizer", "pretrain"):
        del manifest["stages"][name]
    build = _build_dir(tmp_path, manifest, metrics=False)
    html = write_report(build).read_text()
    for title, _, _ in sections():
        assert f">{title}</h2>" in html
    for what in ("dedup: not run", "privacy: not run", "tokenizer: not run", "pretrain: not run"):
        assert what in html
    stats = json.loads((build / "report" / "stats.json").read_text())
    assert stats["stages"]["dedup"] == "not run" and stats["training"] is None
    assert sorted(p.stem for p in (build / "report").glob("*.png")) == ["funnel", "languages", "reasons"]


def test_a_manifest_with_no_stages_still_renders(tmp_path: Path) -> None:
    # Input shards as the build records them before any stage ran: no counts yet.
    shards = [{"name": "part-00000", "path": "in/part-00000.parquet", "fingerprint": "c" * 64}]
    build = _build_dir(tmp_path, {"input": "in", "input_shards": shards}, metrics=False)
    html = write_report(build).read_text()
    assert html.count("not run") >= 6 and _images(html) == []
    assert "c" * 64 in html


def test_document_text_in_shards_never_reaches_the_report(full_build: Path) -> None:
    assert CANARY_EMAIL in pq.read_table(full_build / "quality" / "part-00000.parquet")["text"][0].as_py()
    for path in (full_build / "report").iterdir():
        assert CANARY_EMAIL.encode() not in path.read_bytes(), path.name


def test_strings_from_the_manifest_are_html_escaped(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "build")
    manifest["stages"]["quality"]["reasons"] = {"<script>alert(1)</script>": 3}
    manifest["input"] = 'data/"quoted"&<b>'
    html = write_report(_build_dir(tmp_path, manifest)).read_text()
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "data/&quot;quoted&quot;&amp;&lt;b&gt;" in html


def test_report_is_byte_identical_on_rerun(full_build: Path) -> None:
    first = {p.name: p.read_bytes() for p in (full_build / "report").iterdir()}
    write_report(full_build)
    assert {p.name: p.read_bytes() for p in (full_build / "report").iterdir()} == first


def test_a_missing_manifest_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="manifest.json: no build manifest"):
        write_report(tmp_path)
