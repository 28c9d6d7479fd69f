"""The corpus statistics report of one build: `report/report.html`, `report/stats.json`, PNG charts.

It reads only `manifest.json` and `model/metrics.jsonl`: counts, ids, timings, never a shard. So
no document text (and no PII) can reach the report. Every number the HTML shows is in stats.json;
every string is HTML-escaped; the HTML needs nothing beyond itself (charts are PNG data URIs, and
the same PNGs are written beside it). A stage missing from the manifest renders as "not run".
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any, Callable

import yaml

from pipeline.errors import InputError
from pipeline.shards import write_bytes, write_json
from pipeline.stats import plots

FILTER_STAGES = ("quality", "dedup", "privacy")  # stages that remove documents, in order
ALL_STAGES = (*FILTER_STAGES, "tokenizer", "pretrain")
TOP_LANGUAGES = 15
NOT_RUN = "not run"
MIB = 1024 * 1024
# `extra` keys that have their own section; the rest are listed as plain stage counters.
SECTION_EXTRAS = ("lang_in:", "lang_out:", "pii:", "ner_documents")

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


def _funnel(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Documents and bytes entering the pipeline, then left after each filter stage."""
    stages = manifest.get("stages", {})
    shards = manifest.get("input_shards", [])
    # The first stage's counts measure bytes the way every later row does; shard sums are the
    # fallback when no filter stage ran.
    first_ran = next((stages[s] for s in FILTER_STAGES if "docs_in" in stages.get(s, {})), None)
    if first_ran is not None:
        rows = [{"stage": "input", "status": "done",
                 "docs": first_ran["docs_in"], "bytes": first_ran["bytes_in"]}]
    elif shards and all("docs" in s and "bytes" in s for s in shards):
        rows = [{"stage": "input", "status": "done",
                 "docs": sum(s["docs"] for s in shards), "bytes": sum(s["bytes"] for s in shards)}]
    else:
        rows = [{"stage": "input", "status": NOT_RUN}]
    for name in FILTER_STAGES:
        section = stages.get(name)
        if section is None or "docs_in" not in section:
            rows.append({"stage": name, "status": section.get("status", NOT_RUN) if section else NOT_RUN})
            continue
        counts = {k: section[k] for k in ("docs_in", "docs_kept", "docs_removed",
                                          "bytes_in", "bytes_kept", "bytes_removed")}
        rows.append({"stage": name, "status": section["status"], **counts,
                     "docs": counts["docs_kept"], "bytes": counts["bytes_kept"],
                     "docs_removed_share": _share(counts["docs_removed"], counts["docs_in"]),
                     "bytes_removed_share": _share(counts["bytes_removed"], counts["bytes_in"])})
    return rows


def _languages(extra: dict[str, int]) -> list[dict[str, Any]]:
    """Top languages by documents before quality filtering (then after), the rest as "other"."""
    before = {k.split(":", 1)[1]: v for k, v in extra.items() if k.startswith("lang_in:")}
    after = {k.split(":", 1)[1]: v for k, v in extra.items() if k.startswith("lang_out:")}
    order = sorted(before.keys() | after.keys(), key=lambda l: (-before.get(l, 0), -after.get(l, 0), l))
    rows = [{"lang": lang, "before": before.get(lang, 0), "after": after.get(lang, 0)}
            for lang in order[:TOP_LANGUAGES]]
    rest = order[TOP_LANGUAGES:]
    if rest:
        rows.append({"lang": "other", "before": sum(before.get(l, 0) for l in rest),
                     "after": sum(after.get(l, 0) for l in rest)})
    for row in rows:
        row["kept_share"] = _share(row["after"], row["before"])
    return rows


def _pii(privacy: dict[str, Any]) -> dict[str, Any] | None:
    if "extra" not in privacy:
        return None
    extra = privacy["extra"]
    entities = {k.split(":", 1)[1]: v for k, v in extra.items() if k.startswith("pii:")}
    ranked = sorted(entities.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"entities": [{"entity": e, "count": c} for e, c in ranked],
            "total": sum(entities.values()), "ner_documents": extra.get("ner_documents")}


def _tokenizer(tok: dict[str, Any]) -> dict[str, Any]:
    stats = {k: tok.get(k) for k in ("status", "seconds", "vocab_size", "train_docs", "val_docs",
                                     "train_tokens", "val_tokens", "train_bytes", "val_bytes")}
    for split in ("train", "val"):
        stats[f"{split}_bytes_per_token"] = _share(tok.get(f"{split}_bytes"), tok.get(f"{split}_tokens"))
    return stats


def _training(pretrain: dict[str, Any], tok: dict[str, Any], metrics: list[dict[str, Any]]) -> dict[str, Any]:
    val_points = [(m["step"], m["val_loss"]) for m in metrics if m.get("val_loss") is not None]
    stats = {k: pretrain.get(k) for k in ("status", "seconds", "params", "steps", "tokens_seen",
                                          "tokens_per_s", "device")}
    stats["status"] = stats["status"] or NOT_RUN
    # A build killed mid-training has a metrics file but no pretrain entry: the curve still tells.
    stats["initial_val_loss"] = pretrain.get("initial_val_loss", val_points[0][1] if val_points else None)
    stats["final_val_loss"] = pretrain.get("final_val_loss", val_points[-1][1] if val_points else None)
    stats["final_over_initial_val_loss"] = _share(stats["final_val_loss"], stats["initial_val_loss"])
    # Loss is nats per token; times tokens per byte, over ln 2, is bits per byte: comparable
    # across tokenizers, unlike loss per token.
    loss, val_tokens, val_bytes = stats["final_val_loss"], tok.get("val_tokens"), tok.get("val_bytes")
    known = loss is not None and val_tokens and val_bytes
    stats["val_bits_per_byte"] = loss * val_tokens / val_bytes / math.log(2) if known else None
    stats["metrics_rows"] = len(metrics)
    return stats


def _run_facts(manifest: dict[str, Any]) -> dict[str, Any]:
    stages = manifest.get("stages", {})
    timings = []
    for name in ALL_STAGES:
        section = stages.get(name)
        if section is None:
            timings.append({"stage": name, "status": NOT_RUN})
            continue
        shards = section.get("shards", [])
        timings.append({"stage": name, "status": section.get("status"), "seconds": section.get("seconds"),
                        "shards": len(shards) if shards else None,
                        "shards_skipped": sum(bool(s.get("skipped")) for s in shards) if shards else None,
                        "docs_per_s": _share(section.get("docs_in"), section.get("seconds"))})
    return {"corpus_version": manifest.get("corpus_version"), "build_dir": manifest.get("build_dir"),
            "input": manifest.get("input"), "workers": manifest.get("workers"),
            "input_shards": manifest.get("input_shards", []), "timings": timings,
            "versions": manifest.get("versions", {}), "conservation": manifest.get("conservation"),
            "config": manifest.get("config")}


def collect_stats(manifest: dict[str, Any], metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """Every number the report shows, from the manifest and training metrics alone."""
    stages = manifest.get("stages", {})
    quality, privacy = stages.get("quality", {}), stages.get("privacy", {})
    tok, pretrain = stages.get("tokenizer"), stages.get("pretrain")
    counters = {name: {k: v for k, v in stages[name].get("extra", {}).items()
                       if not k.startswith(SECTION_EXTRAS)}
                for name in FILTER_STAGES if name in stages}
    return {
        "stages": {name: stages[name].get("status") if name in stages else NOT_RUN for name in ALL_STAGES},
        "funnel": _funnel(manifest),
        "reasons": {name: stages[name].get("reasons", {}) for name in FILTER_STAGES if name in stages},
        "counters": {name: c for name, c in counters.items() if c},
        "languages": _languages(quality.get("extra", {})) or None,
        "pii": _pii(privacy),
        "tokenizer": _tokenizer(tok) if tok is not None else None,
        "training": _training(pretrain or {}, tok or {}, metrics) if pretrain or metrics else None,
        "run": _run_facts(manifest),
    }


# ----------------------------------------------------------------------------- charts


def render_charts(stats: dict[str, Any], metrics: list[dict[str, Any]]) -> dict[str, bytes]:
    """PNG bytes per chart name, only for the sections that have data."""
    charts: dict[str, bytes] = {}
    funnel = [r for r in stats["funnel"] if r.get("docs") is not None]
    if len(funnel) > 1:
        charts["funnel"] = plots.funnel_chart(
            [r["stage"] for r in funnel],
            [r["docs"] for r in funnel], [r.get("docs_removed_share") for r in funnel],
            [r["bytes"] / MIB for r in funnel], [r.get("bytes_removed_share") for r in funnel])
    reasons = [(s, reason, n) for s, rs in stats["reasons"].items()
               for reason, n in sorted(rs.items(), key=lambda kv: (-kv[1], kv[0]))]
    if reasons:
        charts["reasons"] = plots.reasons_chart([f"{s}: {r}" for s, r, _ in reasons],
                                                [n for *_, n in reasons], [s for s, *_ in reasons])
    if stats["languages"]:
        langs = stats["languages"]
        charts["languages"] = plots.languages_chart([r["lang"] for r in langs], [r["before"] for r in langs],
                                                    [r["after"] for r in langs])
    if stats["pii"] and stats["pii"]["entities"]:
        ents = stats["pii"]["entities"]
        charts["pii"] = plots.pii_chart([e["entity"] for e in ents], [e["count"] for e in ents])
    train = [(m["step"], m["train_loss"]) for m in metrics if m.get("train_loss") is not None]
    val = [(m["step"], m["val_loss"]) for m in metrics if m.get("val_loss") is not None]
    if train or val:
        charts["loss"] = plots.loss_chart(train, val)
    return charts


# ----------------------------------------------------------------------------- HTML

CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937;
     max-width:1000px;margin:2rem auto;padding:0 1.25rem;background:#fff}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.25rem;margin-top:2.2rem;
   border-bottom:2px solid #e5e7eb;padding-bottom:.25rem} h3{font-size:1rem;margin-bottom:.3rem}
.sub{color:#6b7280;margin-top:0}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.9rem}
th,td{padding:.3rem .7rem;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
th{background:#f9fafb;font-weight:600} td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr:hover td{background:#f9fafb}
img{max-width:100%;height:auto;display:block;margin:.6rem 0}
pre{background:#f3f4f6;padding:.8rem;border-radius:6px;overflow-x:auto;font-size:.82rem}
code{font-size:.85rem} .muted{color:#6b7280;font-style:italic}
.ok{color:#047857;font-weight:600} .bad{color:#b91c1c;font-weight:600}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem} dl.facts dt{font-weight:600}
dl.facts dd{margin:0}
"""

SECTIONS = ("Funnel", "Removal reasons", "Languages", "PII", "Tokenizer", "Training", "Run facts")


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    """Numbers with thousands separators; floats to a sensible precision; None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.2f}" if abs(value) >= 1 else f"{value:.4f}"
    return str(value)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / MIB:,.2f}"


def _table(headers: list[str], rows: list[list[Any]], numeric_from: int = 1) -> str:
    """Columns from `numeric_from` on are right-aligned; every cell is formatted and escaped."""
    def cls(i: int) -> str:
        return ' class="num"' if i >= numeric_from else ""
    head = "".join(f"<th{cls(i)}>{_esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{_esc(_fmt(c))}</td>" for i, c in enumerate(row)) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _facts(pairs: list[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(_fmt(v))}</dd>" for k, v in pairs)
    return f'<dl class="facts">{items}</dl>'


def _img(png: bytes | None, alt: str) -> str:
    if png is None:
        return ""
    return f'<img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" alt="{_esc(alt)}">'


def _not_run(what: str) -> str:
    return f'<p class="muted">{_esc(what)}: not run</p>'


def _funnel_html(stats: dict[str, Any], charts: dict[str, bytes]) -> str:
    rows = [[r["stage"], r["status"], r.get("docs_in"), r.get("docs_removed"), r.get("docs"),
             _pct(r.get("docs_removed_share")), _mib(r.get("bytes_in")), _mib(r.get("bytes_removed")),
             _mib(r.get("bytes")), _pct(r.get("bytes_removed_share"))] for r in stats["funnel"]]
    headers = ["stage", "status", "docs in", "docs removed", "docs left", "docs removed %",
               "MiB in", "MiB removed", "MiB left", "MiB removed %"]
    return _img(charts.get("funnel"), "documents and bytes per stage") + _table(headers, rows, numeric_from=2)


def _reasons_html(stats: dict[str, Any], charts: dict[str, bytes]) -> str:
    parts = [_img(charts.get("reasons"), "removed documents per reason")]
    for name in FILTER_STAGES:
        if name not in stats["reasons"]:
            parts.append(_not_run(name))
            continue
        reasons = sorted(stats["reasons"][name].items(), key=lambda kv: (-kv[1], kv[0]))
        parts.append(f"<h3>{_esc(name)}</h3>")
        parts.append(_table(["reason", "documents"], [list(kv) for kv in reasons]) if reasons
                     else '<p class="muted">no documents removed</p>')
    if stats["counters"]:
        rows = [[f"{s}: {k}", v] for s, c in stats["counters"].items() for k, v in sorted(c.items())]
        parts.append("<h3>Other stage counters</h3>" + _table(["counter", "value"], rows))
    return "".join(parts)


def _languages_html(stats: dict[str, Any], charts: dict[str, bytes]) -> str:
    if stats["languages"] is None:
        return _not_run("quality (language ID)")
    rows = [[r["lang"], r["before"], r["after"], _pct(r["kept_share"])] for r in stats["languages"]]
    return (_img(charts.get("languages"), "documents per language before and after quality")
            + _table(["language", "docs before quality", "docs after quality", "kept %"], rows))


def _pii_html(stats: dict[str, Any], charts: dict[str, bytes]) -> str:
    pii = stats["pii"]
    if pii is None:
        return _not_run("privacy")
    rows = [[e["entity"], e["count"]] for e in pii["entities"]] + [["total", pii["total"]]]
    return (_img(charts.get("pii"), "PII entities per type")
            + _table(["entity type", "entities replaced"], rows)
            + _facts([("documents through NER", pii["ner_documents"])]))


def _tokenizer_html(stats: dict[str, Any], _charts: dict[str, bytes]) -> str:
    tok = stats["tokenizer"]
    if tok is None:
        return _not_run("tokenizer")
    rows = [[split, tok[f"{split}_docs"], tok[f"{split}_tokens"], tok[f"{split}_bytes"],
             tok[f"{split}_bytes_per_token"]] for split in ("train", "val")]
    return (_facts([("status", tok["status"]), ("vocabulary size", tok["vocab_size"]),
                    ("seconds", tok["seconds"])])
            + _table(["split", "documents", "tokens", "bytes", "bytes per token"], rows))


def _training_html(stats: dict[str, Any], charts: dict[str, bytes]) -> str:
    tr = stats["training"]
    if tr is None:
        return _not_run("pretrain")
    return _img(charts.get("loss"), "training and validation loss per step") + _facts([
        ("status", tr["status"]), ("device", tr["device"]), ("parameters", tr["params"]),
        ("steps", tr["steps"]), ("tokens seen", tr["tokens_seen"]), ("tokens/s", tr["tokens_per_s"]),
        ("seconds", tr["seconds"]), ("initial val loss (nats/token)", tr["initial_val_loss"]),
        ("final val loss (nats/token)", tr["final_val_loss"]),
        ("final / initial val loss", tr["final_over_initial_val_loss"]),
        ("val bits per byte", tr["val_bits_per_byte"]), ("metrics rows", tr["metrics_rows"])])


def _run_html(stats: dict[str, Any], _charts: dict[str, bytes]) -> str:
    run = stats["run"]
    cons = run["conservation"]
    if cons is None:
        cons_html = _not_run("conservation check")
    elif cons.get("ok"):
        cons_html = '<p>Conservation (docs in = kept + removed): <span class="ok">ok</span></p>'
    else:
        items = "".join(f"<li>{_esc(f)}</li>" for f in cons.get("failures", []))
        cons_html = f'<p>Conservation: <span class="bad">FAILED</span></p><ul>{items}</ul>'
    shards = run["input_shards"]
    shard_rows = [[s.get("name"), s.get("path"), s.get("fingerprint"), s.get("docs"), s.get("bytes")]
                  for s in shards]
    timing_rows = [[t["stage"], t["status"], t.get("seconds"), t.get("shards"), t.get("shards_skipped"),
                    t.get("docs_per_s")] for t in run["timings"]]
    versions = sorted(run["versions"].items())
    config = "not recorded"
    if run["config"]:
        config = yaml.safe_dump(run["config"], sort_keys=False, allow_unicode=True)
    return "".join([
        _facts([("input", run["input"]), ("build directory", run["build_dir"]),
                ("corpus version", run["corpus_version"]), ("workers", run["workers"])]),
        cons_html,
        f"<h3>Input shards ({len(shards):,})</h3>",
        f"<details{' open' if len(shards) <= 20 else ''}><summary>paths and SHA-256 fingerprints</summary>"
        + _table(["shard", "path", "fingerprint", "documents", "bytes"], shard_rows, numeric_from=3)
        + "</details>",
        "<h3>Stage timings</h3>",
        _table(["stage", "status", "seconds", "shards", "shards skipped (resumed)", "docs/s"], timing_rows,
               numeric_from=2),
        "<h3>Versions</h3>", _table(["package", "version"], [list(v) for v in versions], numeric_from=2),
        "<h3>Config</h3>", f"<pre>{_esc(config)}</pre>",
    ])


RENDERERS: dict[str, Callable[[dict[str, Any], dict[str, bytes]], str]] = {
    "Funnel": _funnel_html, "Removal reasons": _reasons_html, "Languages": _languages_html,
    "PII": _pii_html, "Tokenizer": _tokenizer_html, "Training": _training_html, "Run facts": _run_html,
}


def render_html(stats: dict[str, Any], charts: dict[str, bytes]) -> str:
    run = stats["run"]
    status = ", ".join(f"{name} {status}" for name, status in stats["stages"].items())
    nav = " · ".join(f'<a href="#s{i}">{_esc(title)}</a>' for i, title in enumerate(SECTIONS))
    body = "".join(f'<h2 id="s{i}">{_esc(title)}</h2>{RENDERERS[title](stats, charts)}'
                   for i, title in enumerate(SECTIONS))
    title = f"Corpus build report: {run['input'] or 'unknown input'}"
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{_esc(title)}</h1><p class=\"sub\">{_esc(status)}</p><p>{nav}</p>{body}</body></html>\n")


# ----------------------------------------------------------------------------- writing


def write_report(build_dir: Path) -> Path:
    """Write report/report.html, report/stats.json and report/<chart>.png; return the HTML path."""
    build_dir = Path(build_dir)
    manifest = _read_json(build_dir / "manifest.json", "build manifest")
    metrics = load_metrics(build_dir / "model" / "metrics.jsonl")
    stats = collect_stats(manifest, metrics)
    charts = render_charts(stats, metrics)
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
    write_bytes(render_html(stats, charts).encode("utf-8"), html_path)
    return html_path


def markdown_summary(stats: dict[str, Any]) -> str:
    """The report's headline numbers as markdown, for a Prefect artifact on the flow run."""
    lines = ["# Corpus build", "", "| stage | docs in | docs kept | removed | MB kept |", "|---|---:|---:|---:|---:|"]
    for row in stats["funnel"][1:]:
        if "docs_in" in row:
            lines.append(f"| {row['stage']} | {row['docs_in']:,} | {row['docs_kept']:,} | "
                         f"{row['docs_removed']:,} | {row['bytes_kept'] / 1e6:.2f} |")
    for stage, reasons in stats["reasons"].items():
        if reasons:
            top = ", ".join(f"{reason} {count:,}" for reason, count in sorted(reasons.items(), key=lambda r: -r[1])[:5])
            lines.append(f"\n**{stage}** top removal reasons: {top}")
    training = stats.get("training") or {}
    if training.get("final_val_loss") is not None:
        lines.append(f"\n**model**: validation loss {training['initial_val_loss']:.3f} -> {training['final_val_loss']:.3f}")
    return "\n".join(lines) + "\n"
