"""The corpus statistics report of one build: `report/report.html`, `report/stats.json`, PNG charts.

Numbers come from `manifest.json`, `model/metrics.jsonl` and the per-document columns of the
stage shards (lengths, quality signals, clusters, PII counts, ids: see shard_stats.py). No
document text reaches the report; the one exception, boilerplate lines, goes through the privacy
scrubber first (boilerplate.py). Every number the HTML shows is in stats.json; the HTML
(html.py) needs nothing beyond itself: charts are PNG data URIs, the same PNGs are written
beside it. `--compare` adds the other build's figures side by side and the deltas (compare.py).

The funnel, the removal reasons, the document lengths and the run facts cover every registered
stage; each stage adds its own sections (its `report` in pipeline/stages.py), whose numbers,
charts and HTML are the functions below and in html.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline import manifest as manifests
from pipeline.ablate.variants import ABLATIONS, RAW
from pipeline.config import BuildConfig
from pipeline.errors import InputError
from pipeline.shards import write_bytes, write_json
from pipeline.stage import BuildContext, ReportSection, Stage
from pipeline.stages import registry
from pipeline.stats import boilerplate, compare, html, plots, shard_stats

TOP_LANGUAGES = 15
NOT_RUN = "not run"
OFF = "off"  # a stage the build's config switched off (for every source): not a run that is missing
MIB = 1024 * 1024
# `extra` keys that have their own section; the rest are listed as plain stage counters.
SECTION_EXTRAS = (
    "lang_in:",
    "lang_out:",
    "pii:",
    "ner_documents",
    "records:",
    "extract_cpu_ms",
    "scored_by:",
    "contaminated:",
)
TOP_DOMAINS = 15
TOP_TOKENIZER_LANGUAGES = 20

# ----------------------------------------------------------------------------- reading


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no {what}. Run the build first, or pass the build directory.") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: {what} is not valid JSON ({exc.msg}, line {exc.lineno}).") from None


def load_metrics(path: Path) -> list[dict[str, Any]]:
    """One dict per line of model/metrics.jsonl; [] when training never wrote one."""
    if not path.exists():
        return []
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: line {lineno} is not valid JSON ({exc.msg}).") from None
    return rows


# ----------------------------------------------------------------------------- numbers


def _share(part: int | float | None, whole: int | float | None) -> float | None:
    return part / whole if part is not None and whole else None


def _ran(manifest: dict[str, Any], stage: str) -> bool:
    """Whether a filter stage finished in this build (its documents can be read)."""
    return "docs_in" in manifest.get("stages", {}).get(stage, {})


def _status(stage: Stage, manifest: dict[str, Any]) -> str:
    """A stage's status: its manifest entry's, else off (the config switched it off, as the
    optional filter stages are by default) or not run."""
    entry = manifest.get("stages", {}).get(stage.name)
    if entry is not None:
        return entry.get("status", NOT_RUN)
    try:
        config = BuildConfig.model_validate(manifest.get("config") or {})
    except ValidationError:  # a manifest of another version: say no more than "not run"
        return NOT_RUN
    return NOT_RUN if config.runs(stage.name) else OFF


def _shown(stage: Stage, manifest: dict[str, Any]) -> bool:
    """Whether a stage has a place in the report: a raw-input stage (extract) only when it ran,
    since text input skips it rather than leaving it to run."""
    return not stage.raw_input or stage.name in manifest.get("stages", {})


def funnel(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Documents and bytes entering the pipeline, then left after each stage (its funnel row)."""
    stages = manifest.get("stages", {})
    shards = manifest.get("input_shards", [])
    # The first stage's counts measure bytes the way every later row does; shard sums are the
    # fallback when no filter stage ran.
    first_ran = next((stages[s.name] for s in registry.filters() if _ran(manifest, s.name)), None)
    if first_ran is not None:
        rows = [{"stage": "input", "status": "done", "docs": first_ran["docs_in"], "bytes": first_ran["bytes_in"]}]
    elif shards and all("docs" in s and "bytes" in s for s in shards):
        rows = [
            {
                "stage": "input",
                "status": "done",
                "docs": sum(s["docs"] for s in shards),
                "bytes": sum(s["bytes"] for s in shards),
            }
        ]
    else:
        rows = [{"stage": "input", "status": NOT_RUN}]
    for stage in registry:
        section = stages.get(stage.name)
        row = manifests.funnel_row(stage, section) if section is not None else None
        if row is not None:
            rows.append({"stage": stage.name, "status": section.get("status"), **row})
        elif stage.filters and _shown(stage, manifest):  # a filter stage that did not run keeps its place
            rows.append({"stage": stage.name, "status": _status(stage, manifest)})
    return rows


def _languages(extra: dict[str, int]) -> list[dict[str, Any]]:
    """Top languages by documents before quality filtering (then after), the rest as "other"."""
    before = {k.split(":", 1)[1]: v for k, v in extra.items() if k.startswith("lang_in:")}
    after = {k.split(":", 1)[1]: v for k, v in extra.items() if k.startswith("lang_out:")}
    order = sorted(before.keys() | after.keys(), key=lambda lang: (-before.get(lang, 0), -after.get(lang, 0), lang))
    rows = [
        {"lang": lang, "before": before.get(lang, 0), "after": after.get(lang, 0)} for lang in order[:TOP_LANGUAGES]
    ]
    rest = order[TOP_LANGUAGES:]
    if rest:
        rows.append(
            {
                "lang": "other",
                "before": sum(before.get(lang, 0) for lang in rest),
                "after": sum(after.get(lang, 0) for lang in rest),
            }
        )
    for row in rows:
        row["kept_share"] = _share(row["after"], row["before"])
    return rows


def _pii(privacy: dict[str, Any], by_language: dict[str, dict[str, int]] | None) -> dict[str, Any] | None:
    if "extra" not in privacy:
        return None
    extra = privacy["extra"]
    entities = {k.split(":", 1)[1]: v for k, v in extra.items() if k.startswith("pii:")}
    ranked = sorted(entities.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "entities": [{"entity": e, "count": c} for e, c in ranked],
        "total": sum(entities.values()),
        "ner_documents": extra.get("ner_documents"),
        "documents": privacy.get("docs_in"),
        "by_language": by_language,
    }


def _reasons(stages: dict[str, Any], build_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Per filter stage: each reason's count and one removed document's id, most frequent first."""
    result = {}
    for stage in registry.filters():
        if stage.name not in stages:
            continue
        examples = shard_stats.reason_examples(build_dir, stage.out)
        ranked = sorted(stages[stage.name].get("reasons", {}).items(), key=lambda kv: (-kv[1], kv[0]))
        result[stage.name] = [{"reason": r, "documents": n, "example_id": examples.get(r)} for r, n in ranked]
    return result


def _tokenizer(tok: dict[str, Any]) -> dict[str, Any]:
    stats = {
        k: tok.get(k)
        for k in (
            "status",
            "seconds",
            "vocab_size",
            "train_docs",
            "val_docs",
            "train_tokens",
            "val_tokens",
            "train_bytes",
            "val_bytes",
        )
    }
    for split in ("train", "val"):
        stats[f"{split}_bytes_per_token"] = _share(tok.get(f"{split}_bytes"), tok.get(f"{split}_tokens"))
    found = tok.get("stats", {})
    for key in (
        "text_tokens",
        "bytes_per_token",
        "tokens_per_word",
        "vocab_used",
        "vocab_used_share",
        "unknown_rate",
        "byte_fallback_rate",
        "longest_tokens",
    ):
        stats[key] = found.get(key)
    langs = sorted(found.get("languages", {}).items(), key=lambda kv: (-kv[1].get("bytes", 0), kv[0]))
    stats["languages"] = [
        {
            "lang": lang,
            **{k: v.get(k) for k in ("docs", "bytes", "tokens", "words", "bytes_per_token", "tokens_per_word")},
        }
        for lang, v in langs[:TOP_TOKENIZER_LANGUAGES]
    ]
    return stats


def _bits_per_byte(loss: float | None, tokens: int | None, nbytes: int | None) -> float | None:
    """Loss is nats per token; times tokens per byte, over ln 2, it is bits per byte: comparable
    across tokenizers, unlike loss per token."""
    return loss * tokens / nbytes / math.log(2) if loss is not None and tokens and nbytes else None


def _curves(metrics: list[dict[str, Any]], tok: dict[str, Any]) -> dict[str, list[list[float]]]:
    """[step, value] points per curve; bits per byte from the metrics when training logged them,
    else derived from the loss and the split's tokens per byte."""
    curves: dict[str, list[list[float]]] = {}
    for split in ("train", "val"):
        curves[f"{split}_loss"] = [
            [m["step"], m[f"{split}_loss"]] for m in metrics if m.get(f"{split}_loss") is not None
        ]
        logged = [[m["step"], m[f"{split}_bpb"]] for m in metrics if m.get(f"{split}_bpb") is not None]
        derived = [
            [step, _bits_per_byte(loss, tok.get(f"{split}_tokens"), tok.get(f"{split}_bytes"))]
            for step, loss in curves[f"{split}_loss"]
        ]
        curves[f"{split}_bpb"] = logged or [p for p in derived if p[1] is not None]
    curves["tokens_per_s"] = [[m["step"], m["tokens_per_s"]] for m in metrics if m.get("tokens_per_s") is not None]
    return curves


def _training(
    pretrain: dict[str, Any], tok: dict[str, Any], metrics: list[dict[str, Any]], sample: str | None
) -> dict[str, Any]:
    val_points = [(m["step"], m["val_loss"]) for m in metrics if m.get("val_loss") is not None]
    stats = {
        k: pretrain.get(k) for k in ("status", "seconds", "params", "steps", "tokens_seen", "tokens_per_s", "device")
    }
    stats["status"] = stats["status"] or NOT_RUN
    # A build killed mid-training has a metrics file but no pretrain entry: the curve still tells.
    stats["initial_val_loss"] = pretrain.get("initial_val_loss", val_points[0][1] if val_points else None)
    stats["final_val_loss"] = pretrain.get("final_val_loss", val_points[-1][1] if val_points else None)
    stats["final_over_initial_val_loss"] = _share(stats["final_val_loss"], stats["initial_val_loss"])
    curves = _curves(metrics, tok)
    logged = [m["val_bpb"] for m in metrics if m.get("val_bpb") is not None]
    stats["val_bits_per_byte"] = (
        logged[-1] if logged else _bits_per_byte(stats["final_val_loss"], tok.get("val_tokens"), tok.get("val_bytes"))
    )
    stats["metrics_rows"] = len(metrics)
    stats["curves"] = curves
    stats["sample"] = sample
    return stats


def _run_facts(manifest: dict[str, Any]) -> dict[str, Any]:
    stages = manifest.get("stages", {})
    timings = []
    for stage in registry:
        section = stages.get(stage.name)
        if section is None:
            if stage.summarised and _shown(stage, manifest):
                timings.append({"stage": stage.name, "status": _status(stage, manifest)})
            continue
        shards = section.get("shards", [])
        timings.append(
            {
                "stage": stage.name,
                "status": section.get("status"),
                "seconds": section.get("seconds"),
                "shards": len(shards) if shards else None,
                "shards_skipped": sum(bool(s.get("skipped")) for s in shards) if shards else None,
                "docs_per_s": _share(section.get("docs_in"), section.get("seconds")),
            }
        )
    return {
        "corpus_version": manifest.get("corpus_version"),
        "build_dir": manifest.get("build_dir"),
        "out": manifest.get("out", manifest.get("build_dir")),
        "input": manifest.get("input"),
        "workers": manifest.get("workers"),
        "input_shards": manifest.get("input_shards", []),
        "timings": timings,
        "versions": manifest.get("versions", {}),
        "conservation": manifest.get("conservation"),
        "config": manifest.get("config"),
    }


def stage_sections() -> list[tuple[Stage, ReportSection]]:
    """Every registered stage's own report sections, in build order."""
    return [(stage, section) for stage in registry for section in stage.report]


def collect_stats(build_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Every number the report shows: from the manifest, the training metrics and the shards' columns."""
    stages = manifest.get("stages", {})
    ran = [stage.name for stage in registry.filters() if _ran(manifest, stage.name)]
    config = manifest.get("config") or BuildConfig().model_dump(mode="json")
    counters = {
        name: {k: v for k, v in stages[name].get("extra", {}).items() if not k.startswith(SECTION_EXTRAS)}
        for name in ran
    }
    stats = {
        "stages": {
            stage.name: _status(stage, manifest) for stage in registry if stage.summarised and _shown(stage, manifest)
        },
        "funnel": funnel(manifest),
        "reasons": _reasons(stages, build_dir),
        "counters": {name: c for name, c in counters.items() if c},
        "lengths": shard_stats.length_distributions(build_dir, [registry.get(name).out for name in ran]),
        "sources": sources(manifest),
    }
    for _, section in stage_sections():
        stats[section.key] = section.collect(build_dir, manifest, config)
    return stats | {"run": _run_facts(manifest)}


def sources(manifest: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Per source, in the build's order: documents and bytes in and out of each filter stage, its
    removal reasons, its languages, its place in the mixture and its validation bits per byte."""
    stages = manifest.get("stages", {})
    names = list(dict.fromkeys(shard.get("source") for shard in manifest.get("input_shards", [])))
    if not names or names == [None]:
        return None
    mixture = stages.get("tokenizer", {}).get("mixture", {}).get("sources", {})
    bpb = (stages.get("pretrain") or {}).get("final_val_bpb_by_source") or {}
    rows = []
    for name in names:
        per_stage = {
            stage.name: stages[stage.name]["sources"].get(name)
            for stage in registry.filters()
            if "sources" in stages.get(stage.name, {})
        }
        funnel_rows = [
            {"stage": stage, **{k: counts[k] for k in manifests.COUNT_KEYS}}
            for stage, counts in per_stage.items()
            if counts is not None
        ]
        quality = per_stage.get("quality") or {}
        rows.append(
            {
                "source": name,
                "funnel": funnel_rows,
                "reasons": {
                    stage: counts["reasons"] for stage, counts in per_stage.items() if counts and counts["reasons"]
                },
                "languages": _languages(quality.get("extra", {})) if quality else None,
                "mixture": mixture.get(name),
                "val_bits_per_byte": bpb.get(name),
            }
        )
    return rows


def mixture_charts(rows: list[dict[str, Any]]) -> dict[str, bytes]:
    mixed = [r for r in rows if r["mixture"]]
    if not mixed:
        return {}
    return {
        "mixture": plots.mixture_chart(
            [r["source"] for r in mixed],
            [r["mixture"]["target_share"] for r in mixed],
            [r["mixture"]["realised_share"] for r in mixed],
        )
    }


# ----------------------------------------------------------------------------- stage sections
# Each: (build_dir, manifest, config) -> the section's numbers, or None when its stage did not run.


def extraction(build_dir: Path, manifest: dict[str, Any], config: dict[str, Any]) -> dict[str, Any] | None:
    """The extraction funnel: records by type, documents kept and removed by reason, the extractor
    and its CPU time, HTML bytes in and text bytes out, and the domains of the kept pages."""
    if not _ran(manifest, "extract"):
        return None
    entry = manifest["stages"]["extract"]
    extra = entry.get("extra", {})
    reasons = entry.get("reasons", {})
    # Pages the extractor ran on: kept ones and those it found nothing in.
    extracted = entry["docs_kept"] + reasons.get("empty_extraction", 0)
    kept = shard_stats.read_columns(shard_stats.stage_files(build_dir, registry.get("extract").out), ["domain"])
    domains = []
    if kept is not None and "domain" in kept.column_names and kept.num_rows:
        counts = kept.group_by("domain").aggregate([("domain", "count")]).to_pylist()
        domains = sorted(((r["domain"] or "(none)", r["domain_count"]) for r in counts), key=lambda d: (-d[1], d[0]))
    return {
        "extractor": config.get("extract", {}).get("extractor", "trafilatura"),
        "records": {k.split(":", 1)[1]: v for k, v in sorted(extra.items()) if k.startswith("records:")},
        "documents": entry["docs_in"],
        "kept": entry["docs_kept"],
        "reasons": [{"reason": r, "documents": n} for r, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))],
        "html_bytes": entry["bytes_in"],
        "text_bytes": entry["bytes_kept"],
        "text_share_of_html": _share(entry["bytes_kept"], entry["bytes_in"]),
        "extract_cpu_ms_per_page": _share(extra.get("extract_cpu_ms"), extracted),
        "domains": len(domains),
        "top_domains": [{"domain": d, "documents": n} for d, n in domains[:TOP_DOMAINS]],
    }


def languages(build_dir: Path, manifest: dict[str, Any], config: dict[str, Any]) -> list[dict[str, Any]] | None:
    return _languages(manifest.get("stages", {}).get("quality", {}).get("extra", {})) or None


def signals(build_dir: Path, manifest: dict[str, Any], config: dict[str, Any]) -> list[dict[str, Any]] | None:
    return shard_stats.quality_signals(build_dir, config) if _ran(manifest, "quality") else None


def duplicates(build_dir: Path, manifest: dict[str, Any], config: dict[str, Any]) -> dict[str, Any] | None:
    if not _ran(manifest, "dedup"):
        return None
    dedup = manifest["stages"]["dedup"]
    reasons = dedup.get("reasons", {})
    clusters = dedup.get("build_steps", {}).get("dedup_clusters", {})
    decisions = build_dir / clusters["artifact"] if "artifact" in clusters else None
    privacy = BuildConfig.model_validate({"privacy": config.get("privacy", {})}).privacy
    return {
        "exact_duplicates": reasons.get("exact_duplicate", 0),
        "near_duplicates": reasons.get("near_duplicate", 0),
        "contained": reasons.get("contained_in", 0),
        "earlier_builds": reasons.get("duplicate_of_earlier_build", 0),
        "boilerplate_lines_removed": dedup.get("extra", {}).get("boilerplate_lines_removed"),
        **(shard_stats.duplicate_clusters(decisions) or {}),
        "top_boilerplate_lines": boilerplate.top_lines(build_dir, manifest, decisions, privacy),
    }


def pii(build_dir: Path, manifest: dict[str, Any], config: dict[str, Any]) -> dict[str, Any] | None:
    privacy = manifest.get("stages", {}).get("privacy", {})
    return _pii(privacy, shard_stats.pii_by_language(build_dir) if _ran(manifest, "privacy") else None)


def tokenizer(build_dir: Path, manifest: dict[str, Any], config: dict[str, Any]) -> dict[str, Any] | None:
    tok = manifest.get("stages", {}).get("tokenizer")
    return _tokenizer(tok) if tok is not None else None


def training(build_dir: Path, manifest: dict[str, Any], config: dict[str, Any]) -> dict[str, Any] | None:
    stages = manifest.get("stages", {})
    pretrain, tok = stages.get("pretrain"), stages.get("tokenizer")
    model_dir = build_dir / registry.get("pretrain").out
    metrics = load_metrics(model_dir / "metrics.jsonl")
    sample_path = model_dir / "sample.txt"
    sample = sample_path.read_text(encoding="utf-8") if sample_path.exists() else None
    return _training(pretrain or {}, tok or {}, metrics, sample) if pretrain or metrics else None


def model_card(build_dir: Path, manifest: dict[str, Any], config: dict[str, Any]) -> dict[str, Any] | None:
    """model/card.json as the pretrain stage wrote it."""
    path = build_dir / registry.get("pretrain").out / "card.json"
    return _read_json(path, "model card") if path.exists() else None


def ablations(build_dir: Path, manifest: dict[str, Any], config: dict[str, Any]) -> dict[str, Any] | None:
    """ablations/results.json of `corpus ablate`, when it ran on this build."""
    path = build_dir / ABLATIONS / "results.json"
    return _read_json(path, "ablation results") if path.exists() else None


# ----------------------------------------------------------------------------- charts


def _color(stage: str) -> str:
    return plots.INPUT_COLOR if stage == "input" else registry.get(stage).color


def render_charts(stats: dict[str, Any]) -> dict[str, bytes]:
    """PNG bytes per chart name, only for the sections that have data."""
    charts: dict[str, bytes] = {}
    # Documents and bytes only: a row counting tokens (the tokenizer's) is a table row, not a bar.
    funnel = [r for r in stats["funnel"] if r.get("docs") is not None and "tokens" not in r]
    if len(funnel) > 1:
        charts["funnel"] = plots.funnel_chart(
            [r["stage"] for r in funnel],
            [_color(r["stage"]) for r in funnel],
            [r["docs"] for r in funnel],
            [r.get("docs_removed_share") for r in funnel],
            [r["bytes"] / MIB for r in funnel],
            [r.get("bytes_removed_share") for r in funnel],
        )
    reasons = [(s, r["reason"], r["documents"]) for s, rs in stats["reasons"].items() for r in rs]
    if reasons:
        charts["reasons"] = plots.reasons_chart(
            [f"{s}: {r}" for s, r, _ in reasons], [n for *_, n in reasons], [_color(s) for s, *_ in reasons]
        )
    if stats.get("sources"):
        charts |= mixture_charts(stats["sources"])
    if stats["lengths"]:
        lengths = stats["lengths"]
        charts["lengths"] = plots.lengths_chart(
            lengths["before"], lengths["after"], lengths["before_stage"], lengths["after_stage"]
        )
    for stage, section in stage_sections():
        if stats.get(section.key):
            charts |= section.charts(stats[section.key], stage.color)
    return charts


# Each stage section's charts: (its numbers, its stage's colour) -> {chart name: PNG}.


def extraction_charts(extraction: dict[str, Any], color: str) -> dict[str, bytes]:
    records = extraction["records"]
    if not records:
        return {}
    ranked = sorted(records.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"records": plots.records_chart([k for k, _ in ranked], [n for _, n in ranked], color)}


def languages_charts(langs: list[dict[str, Any]], color: str) -> dict[str, bytes]:
    return {
        "languages": plots.languages_chart(
            [r["lang"] for r in langs], [r["before"] for r in langs], [r["after"] for r in langs]
        )
    }


def signals_charts(signals: list[dict[str, Any]], color: str) -> dict[str, bytes]:
    return {"signals": plots.signals_chart(signals, color)}


def classifier_charts(classifier: dict[str, Any], color: str) -> dict[str, bytes]:
    rows = [r for r in classifier["sources"] if r["documents"]]
    if not rows:
        return {}
    cut = classifier["cut"]
    return {
        "classifier": plots.scores_chart(
            classifier["edges"],
            {r["source"]: r["histogram"] for r in rows},
            cut["threshold"] if cut["mode"] == "threshold" else None,
        )
    }


def duplicates_charts(duplicates: dict[str, Any], color: str) -> dict[str, bytes]:
    if not duplicates.get("clusters"):
        return {}
    return {"clusters": plots.clusters_chart(duplicates["clusters_by_size"], color)}


def pii_charts(pii: dict[str, Any], color: str) -> dict[str, bytes]:
    charts = {}
    if pii["entities"]:
        ents = pii["entities"]
        charts["pii"] = plots.pii_chart([e["entity"] for e in ents], [e["count"] for e in ents], color)
    if pii["by_language"]:
        charts["pii_languages"] = plots.pii_languages_chart(pii["by_language"])
    return charts


def tokenizer_charts(tok: dict[str, Any], color: str) -> dict[str, bytes]:
    if not tok["languages"]:
        return {}
    langs = tok["languages"]
    return {
        "tokenizer": plots.tokenizer_chart(
            [r["lang"] for r in langs], [r["bytes_per_token"] for r in langs], [r["tokens_per_word"] for r in langs]
        )
    }


def training_charts(training: dict[str, Any], color: str) -> dict[str, bytes]:
    curves = training.get("curves")
    if not curves or not (curves["train_loss"] or curves["val_loss"]):
        return {}
    return {"loss": plots.loss_chart(curves["train_loss"], curves["val_loss"], curves["train_bpb"], curves["val_bpb"])}


def ablations_charts(results: dict[str, Any], color: str) -> dict[str, bytes]:
    """Bits per byte per variant, each in the colour of the stage it starts from."""
    variants = [results["variants"][name] for name in results["order"]]
    colors = [plots.INPUT_COLOR if v["stage"] == RAW else _color(v["stage"]) for v in variants]
    return {"ablations": plots.ablation_chart(results["order"], [v["bpb"] for v in variants], colors)}


# ----------------------------------------------------------------------------- writing


def build_stats(build_dir: Path) -> dict[str, Any]:
    """Read one build directory and return its report numbers."""
    return collect_stats(build_dir, _read_json(build_dir / "manifest.json", "build manifest"))


def write_report(build_dir: Path, compare_to: Path | None = None) -> Path:
    """Write report/report.html, report/stats.json and report/<chart>.png; return the HTML path.

    With compare_to, every figure of that build is drawn beside this one's and every number gets
    its delta (in stats.json under "compare")."""
    build_dir = Path(build_dir)
    stats = build_stats(build_dir)
    charts = render_charts(stats)
    other = None
    if compare_to is not None:
        other_stats = build_stats(Path(compare_to))
        stats["compare"] = {"build_dir": str(compare_to), "deltas": compare.deltas(stats, other_stats)}
        other = html.Other(str(compare_to), render_charts(other_stats))
    out = build_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.png"):  # a chart whose section has no data now must not linger
        if stale.stem not in charts:
            stale.unlink()
    for name, png in charts.items():
        write_bytes(png, out / f"{name}.png")
    write_json(stats, out / "stats.json")
    # The HTML goes last: its presence means the whole report is written.
    html_path = out / "report.html"
    write_bytes(html.render(stats, charts, other).encode("utf-8"), html_path)
    return html_path


def report_step(ctx: BuildContext) -> dict:
    """Build step of the report stage: the report of the build as its manifest stands now."""
    path = write_report(ctx.build_dir)
    return {"note": str(path)}


def funnel_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The funnel as rows of plain columns, for a Prefect table artifact."""
    return [
        {
            "stage": r["stage"],
            "docs": r.get("docs"),
            "docs_removed": r.get("docs_removed"),
            "docs_removed_share": r.get("docs_removed_share"),
            "bytes": r.get("bytes"),
            "bytes_removed_share": r.get("bytes_removed_share"),
            "tokens": r.get("tokens"),
        }
        for r in rows
        if r.get("docs") is not None
    ]


def markdown_summary(stats: dict[str, Any]) -> str:
    """The report's headline numbers as markdown, for a Prefect artifact on the flow run."""
    lines = ["# Corpus build", "", "| stage | docs | removed | MiB | tokens |", "|---|---:|---:|---:|---:|"]
    for row in stats["funnel"]:
        if row.get("docs") is None:
            continue
        removed = f"{row['docs_removed']:,} ({row['docs_removed_share']:.1%})" if "docs_removed" in row else ""
        tokens = f"{row['tokens']:,}" if "tokens" in row else ""
        lines.append(f"| {row['stage']} | {row['docs']:,} | {removed} | {row['bytes'] / MIB:,.2f} | {tokens} |")
    for stage, reasons in stats["reasons"].items():
        if reasons:
            top = ", ".join(f"`{r['reason']}` {r['documents']:,}" for r in reasons[:5])
            lines.append(f"\n**{stage}** top removal reasons: {top}")
    if stats.get("languages"):
        top = ", ".join(f"{r['lang']} {r['before']:,} → {r['after']:,}" for r in stats.get("languages")[:8])
        lines.append(f"\n**languages** (docs before → after quality): {top}")
    dup = stats.get("duplicates")
    if dup:
        lines.append(
            f"\n**dedup**: {dup['exact_duplicates']:,} exact, {dup['near_duplicates']:,} near, "
            f"{dup['contained']:,} contained, {dup['earlier_builds']:,} in earlier builds; "
            f"{dup.get('clusters', 0):,} clusters"
        )
    pii = stats.get("pii")
    if pii:
        top = ", ".join(f"{e['entity']} {e['count']:,}" for e in pii["entities"] if e["count"])
        lines.append(f"\n**PII replaced**: {pii['total']:,} ({top}); NER on {pii['ner_documents'] or 0:,} documents")
    tok = stats.get("tokenizer")
    if tok and tok.get("bytes_per_token"):
        lines.append(
            f"\n**tokenizer**: vocab {tok['vocab_size']:,}, {tok['bytes_per_token']:.2f} bytes/token, "
            f"{tok['vocab_used_share']:.1%} of the vocabulary used"
        )
    training = stats.get("training") or {}
    if training.get("final_val_loss") is not None:
        bpb = training["val_bits_per_byte"]
        lines.append(
            f"\n**model**: validation loss {training['initial_val_loss']:.3f} → "
            f"{training['final_val_loss']:.3f} nats/token"
            + (f", {bpb:.3f} bits/byte" if bpb is not None else "")
            + (f", {training['tokens_per_s']:,.0f} tokens/s" if training.get("tokens_per_s") else "")
        )
    return "\n".join(lines) + "\n"
