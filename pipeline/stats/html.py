"""The report page: one self-contained HTML file (inline CSS, charts as PNG data URIs, no script).

Every string from a build (reasons, paths, ids, boilerplate lines) is HTML-escaped; numbers are
formatted here and nowhere else, so the page and stats.json cannot disagree on a value. Sections:
the funnel, removal reasons and document lengths of every stage, then each registered stage's
own sections (`languages`, `signals`, ... below), then the run facts.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from pipeline.stages import registry

MIB = 1024 * 1024

CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937;
     max-width:1000px;margin:2rem auto;padding:0 1.25rem;background:#fff}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.25rem;margin-top:2.2rem;
   border-bottom:2px solid #e5e7eb;padding-bottom:.25rem} h3{font-size:1rem;margin-bottom:.3rem}
.sub{color:#6b7280;margin-top:0}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.9rem;display:block;max-width:100%;overflow-x:auto}
th,td{padding:.3rem .7rem;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
th{background:#f9fafb;font-weight:600} td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr:hover td{background:#f9fafb}
img{max-width:100%;height:auto;display:block;margin:.6rem 0}
pre{background:#f3f4f6;padding:.8rem;border-radius:6px;overflow-x:auto;font-size:.82rem}
code{font-size:.85rem;white-space:pre-wrap} .muted{color:#6b7280;font-style:italic}
.ok{color:#047857;font-weight:600} .bad{color:#b91c1c;font-weight:600}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem} dl.facts dt{font-weight:600}
dl.facts dd{margin:0}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:.8rem} .pair figure{margin:0}
figcaption{font-size:.8rem;color:#6b7280;overflow-wrap:anywhere}
td.delta-up{color:#047857} td.delta-down{color:#b91c1c}
details summary{cursor:pointer;color:#374151;margin:.4rem 0}
"""


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


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / MIB:,.2f}"


def _table(headers: list[str], rows: list[list[Any]], numeric_from: int = 1, numeric_to: int | None = None) -> str:
    """Columns numeric_from .. numeric_to (exclusive) are right-aligned; every cell is formatted and escaped."""

    def cls(i: int) -> str:
        return ' class="num"' if numeric_from <= i < (numeric_to or len(headers)) else ""

    head = "".join(f"<th{cls(i)}>{_esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{_esc(_fmt(c))}</td>" for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _facts(pairs: list[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(_fmt(v))}</dd>" for k, v in pairs)
    return f'<dl class="facts">{items}</dl>'


def _img(png: bytes | None, alt: str) -> str:
    if png is None:
        return ""
    return f'<img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" alt="{_esc(alt)}">'


@dataclass
class Other:
    """The build compared against: its directory and its charts."""

    build_dir: str
    charts: dict[str, bytes]


@dataclass
class Figures:
    """Draws a chart, or with a comparison, this build's and the other's side by side."""

    charts: dict[str, bytes]
    other: Other | None = None

    def __call__(self, name: str, alt: str) -> str:
        if self.other is None:
            return _img(self.charts.get(name), alt)
        if name not in self.charts and name not in self.other.charts:
            return ""
        cells = [(self.charts.get(name), "this build"), (self.other.charts.get(name), self.other.build_dir)]
        figures = "".join(
            f"<figure><figcaption>{_esc(caption)}</figcaption>{_img(png, alt) or '<p class=muted>no data</p>'}</figure>"
            for png, caption in cells
        )
        return f'<div class="pair">{figures}</div>'


def _not_run(what: str) -> str:
    return f'<p class="muted">{_esc(what)}: not run</p>'


def _absent(stats: dict[str, Any], stage: str) -> str:
    """A stage with nothing to show: switched off by the build's config, or not run."""
    if stats["stages"].get(stage) == "off":
        return f'<p class="muted">{_esc(stage)}: off in this build\'s config</p>'
    return _not_run(stage)


def _missing(stats: dict[str, Any], stage: str) -> str:
    """A section drawn from a stage's shards: off, not run, or ran but its shards are gone."""
    if stats["stages"].get(stage) in (None, "not run", "off"):
        return _absent(stats, stage)
    return f'<p class="muted">{_esc(stage)}: no shards to read in this build directory</p>'


def _funnel_html(stats: dict[str, Any], fig: Figures) -> str:
    rows = [
        [
            r["stage"],
            r["status"],
            r.get("docs_in"),
            r.get("docs_removed"),
            r.get("docs"),
            _pct(r.get("docs_removed_share")),
            _mib(r.get("bytes_in")),
            _mib(r.get("bytes_removed")),
            _mib(r.get("bytes")),
            _pct(r.get("bytes_removed_share")),
            r.get("tokens"),
        ]
        for r in stats["funnel"]
    ]
    headers = [
        "stage",
        "status",
        "docs in",
        "docs removed",
        "docs left",
        "docs removed %",
        "MiB in",
        "MiB removed",
        "MiB left",
        "MiB removed %",
        "tokens",
    ]
    return fig("funnel", "documents and bytes per stage") + _table(headers, rows, numeric_from=2)


def _reasons_html(stats: dict[str, Any], fig: Figures) -> str:
    parts = [fig("reasons", "removed documents per reason")]
    # The filter stages the report shows (stats["stages"]: a skipped raw-input stage is not there).
    for name in (stage.name for stage in registry.filters() if stage.name in stats["stages"]):
        if name not in stats["reasons"]:
            parts.append(_absent(stats, name))
            continue
        reasons = stats["reasons"][name]
        parts.append(f"<h3>{_esc(name)}</h3>")
        rows = [[r["reason"], r["documents"], r["example_id"]] for r in reasons]
        parts.append(
            _table(["reason", "documents", "example document id"], rows, numeric_from=1, numeric_to=2)
            if reasons
            else '<p class="muted">no documents removed</p>'
        )
    if stats["counters"]:
        rows = [[f"{s}: {k}", v] for s, c in stats["counters"].items() for k, v in sorted(c.items())]
        parts.append("<h3>Other stage counters</h3>" + _table(["counter", "value"], rows))
    return "".join(parts)


def languages(stats: dict[str, Any], fig: Figures) -> str:
    if stats["languages"] is None:
        return _not_run("quality (language ID)")
    rows = [[r["lang"], r["before"], r["after"], _pct(r["kept_share"])] for r in stats["languages"]]
    return fig("languages", "documents per language before and after quality") + _table(
        ["language", "docs before quality", "docs after quality", "kept %"], rows
    )


def _sources_html(stats: dict[str, Any], fig: Figures) -> str:
    rows = stats.get("sources")
    if not rows:
        return '<p class="muted">one source, not named</p>'
    parts = [fig("mixture", "target and realised share of training tokens per source")]
    mixed = [r for r in rows if r["mixture"]]
    if mixed:
        parts.append(
            _table(
                [
                    "source",
                    "documents",
                    "tokens available",
                    "tokens used",
                    "repeats",
                    "target %",
                    "planned %",
                    "realised %",
                    "capped",
                    "val bits/byte",
                ],
                [
                    [
                        r["source"],
                        m["documents"],
                        m["tokens_available"],
                        m["tokens_used"],
                        m["repeats"],
                        _pct(m["target_share"]),
                        _pct(m.get("planned_share")),
                        _pct(m["realised_share"]),
                        m["capped"],
                        r["val_bits_per_byte"],
                    ]
                    for r in mixed
                    for m in [r["mixture"]]
                ],
            )
        )
    for r in rows:
        parts.append(f"<h3>{_esc(r['source'])}</h3>")
        funnel_rows = [
            [f["stage"], f["docs_in"], f["docs_removed"], f["docs_kept"], _mib(f["bytes_in"]), _mib(f["bytes_kept"])]
            for f in r["funnel"]
        ]
        parts.append(
            _table(["stage", "docs in", "docs removed", "docs left", "MiB in", "MiB left"], funnel_rows)
            if funnel_rows
            else '<p class="muted">no filter stage ran</p>'
        )
        reasons = [[f"{stage}: {reason}", n] for stage, counts in r["reasons"].items() for reason, n in counts.items()]
        if reasons:
            parts.append(_table(["removal reason", "documents"], reasons))
        if r["languages"]:
            top = ", ".join(f"{lang['lang']} {lang['before']:,} → {lang['after']:,}" for lang in r["languages"][:8])
            parts.append(f"<p>Languages (documents before → after quality): {_esc(top)}</p>")
    return "".join(parts)


def _lengths_html(stats: dict[str, Any], fig: Figures) -> str:
    lengths = stats["lengths"]
    if lengths is None:
        return _missing(stats, "quality")
    rows = [
        [f"{unit}, {label}", d["documents"], d.get("mean"), d.get("p10"), d.get("median"), d.get("p90"), d.get("max")]
        for unit in ("chars", "words")
        for label, d in (
            (lengths["before_stage"], lengths["before"][unit]),
            (lengths["after_stage"], lengths["after"][unit]),
        )
    ]
    return fig("lengths", "document length distributions before and after filtering") + _table(
        ["length", "documents", "mean", "p10", "median", "p90", "max"], rows
    )


def signals(stats: dict[str, Any], fig: Figures) -> str:
    signals = stats["signals"]
    if signals is None:
        return _missing(stats, "quality")
    rows = [
        [
            s["signal"],
            s["label"],
            ", ".join(f"{t['kind']} {t['value']}" for t in s["thresholds"]),
            s["documents"],
            s["beyond_threshold"],
            s["p10"],
            s["median"],
            s["p90"],
        ]
        for s in signals
    ]
    return fig("signals", "quality signal distributions with thresholds") + _table(
        ["column", "signal", "threshold", "documents", "beyond threshold", "p10", "median", "p90"], rows, numeric_from=3
    )


def duplicates(stats: dict[str, Any], fig: Figures) -> str:
    dup = stats["duplicates"]
    if dup is None:
        return _not_run("dedup")
    parts = [
        fig("clusters", "duplicate cluster sizes"),
        _facts(
            [
                ("exact duplicates removed", dup["exact_duplicates"]),
                ("near duplicates removed", dup["near_duplicates"]),
                ("contained in a longer document", dup["contained"]),
                ("already in an earlier build (dedup.index)", dup["earlier_builds"]),
                ("duplicate clusters", dup.get("clusters")),
                ("documents in clusters", dup.get("documents_in_clusters")),
                ("largest cluster", dup.get("largest_cluster")),
                ("boilerplate lines removed", dup["boilerplate_lines_removed"]),
            ]
        ),
    ]
    lines = dup["top_boilerplate_lines"]
    if lines:
        parts.append("<h3>Most widespread boilerplate lines removed (PII scrubbed)</h3>")
        parts.append(
            _table(["line", "kept documents that had it"], [[line["line"], line["documents"]] for line in lines])
        )
    return "".join(parts)


def classifier(stats: dict[str, Any], fig: Figures) -> str:
    found = stats["classifier"]
    if found is None:
        return _missing(stats, "classifier")
    cut = found["cut"]
    rule = (
        f"removed below {_fmt(cut['threshold'])}"
        if cut["mode"] == "threshold"
        else f"GPT-3's Pareto rule, alpha {_fmt(cut['pareto_alpha'])}: kept when a seeded draw exceeds 1 - score"
    )
    rows = [
        [
            r["source"],
            r["documents"],
            r["removed"],
            _pct(_share(r["removed"], r["documents"])),
            r["mean"],
            r["p10"],
            r["median"],
            r["p90"],
        ]
        for r in found["sources"]
    ]
    return "".join(
        [
            _facts(
                [
                    ("model", found["model"]),
                    ("positive label", found["positive_label"]),
                    ("trained on (positives / negatives)", f"{_fmt(found['positives'])} / {_fmt(found['negatives'])}"),
                    ("cut", rule),
                ]
            ),
            fig("classifier", "classifier score distribution per source"),
            _table(["source", "documents", "removed", "removed %", "mean", "p10", "median", "p90"], rows),
        ]
    )


def toxicity(stats: dict[str, Any], fig: Figures) -> str:
    found = stats["toxicity"]
    if found is None:
        return _missing(stats, "toxicity")
    rows = [[r["lang"], r["model"], r["keywords"], r["none"]] for r in found["languages"]]
    return "".join(
        [
            _facts(
                [
                    ("languages the model scores", ", ".join(found["model_languages"])),
                    ("a line is flagged above", found["line_threshold"]),
                    ("a document is removed above this share of flagged lines", found["max_flagged_share"]),
                    ("flagged lines", found["flagged_lines"]),
                    ("documents removed as toxic", found["toxic"]),
                ]
            ),
            "<h3>Documents by what scored them, per language</h3>",
            _table(["language", "model", "keyword list (quality stage)", "neither"], rows),
        ]
    )


def decontamination(stats: dict[str, Any], fig: Figures) -> str:
    found = stats["decontamination"]
    if found is None:
        return _missing(stats, "decontamination")
    rows = [[b["name"], b["items"], b["short_items"], b["documents"]] for b in found["benchmarks"]]
    parts = [
        _facts(
            [
                ("n-gram (words)", found["ngram"]),
                ("documents removed (contaminated)", found["removed"]),
                ("documents with benchmark spans cut out", found["cut"]),
            ]
        )
    ]
    if rows:
        parts.append(
            _table(
                [
                    "benchmark",
                    "items",
                    f"items under {found['ngram']} words (not checked)",
                    "documents sharing an n-gram",
                ],
                rows,
            )
        )
    else:
        parts.append('<p class="muted">no benchmarks configured (decontamination.benchmarks)</p>')
    parts.append("<h3>Validation documents in training</h3>")
    if found["validation"] == "off":
        parts.append('<p class="muted">not checked (decontamination.validation: off)</p>')
    else:
        parts.append(
            _facts(
                [
                    ("validation documents", found["validation_docs"]),
                    ("training documents checked", found["training_docs"]),
                    (
                        "training documents sharing an n-gram with a validation document",
                        found["validation_overlap_docs"],
                    ),
                    ("of them removed (validation: remove)", found["validation_overlap_removed"]),
                ]
            )
        )
    return "".join(parts)


def extraction(stats: dict[str, Any], fig: Figures) -> str:
    found = stats["extraction"]
    if found is None:  # text input skips the stage; raw input cannot go on without it
        return '<p class="muted">extract: the input was text shards, nothing to extract</p>'

    records = sorted(found["records"].items(), key=lambda kv: (-kv[1], kv[0]))
    return "".join(
        [
            _facts(
                [
                    ("extractor", found["extractor"]),
                    ("documents (response / conversion records, table rows)", found["documents"]),
                    ("kept with text", found["kept"]),
                    ("HTML MiB in", _mib(found["html_bytes"])),
                    ("text MiB out", _mib(found["text_bytes"])),
                    ("text share of HTML bytes", _pct(found["text_share_of_html"])),
                    ("extractor CPU ms per page", found["extract_cpu_ms_per_page"]),
                    ("domains of kept pages", found["domains"]),
                ]
            ),
            "<h3>Records by type</h3>",
            fig("records", "input records per WARC record type"),
            _table(["record type", "records"], [[kind, n] for kind, n in records]),
            "<h3>Removed, by reason</h3>",
            _table(["reason", "documents"], [[r["reason"], r["documents"]] for r in found["reasons"]]),
            "<h3>Top domains (kept pages)</h3>",
            _table(["domain", "documents"], [[d["domain"], d["documents"]] for d in found["top_domains"]]),
        ]
    )


def pii(stats: dict[str, Any], fig: Figures) -> str:
    pii = stats["pii"]
    if pii is None:
        return _not_run("privacy")
    rows = [[e["entity"], e["count"]] for e in pii["entities"]] + [["total", pii["total"]]]
    parts = [
        fig("pii", "PII entities per type"),
        _table(["entity type", "entities replaced"], rows),
        _facts([("documents scrubbed", pii["documents"]), ("documents through NER", pii["ner_documents"])]),
    ]
    by_language = pii["by_language"]
    if by_language:
        entities = sorted({e for counts in by_language.values() for e in counts})
        lang_rows = [
            [lang, *(counts.get(e, 0) for e in entities), sum(counts.values())]
            for lang, counts in sorted(by_language.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        ]
        parts += [
            "<h3>Per language</h3>",
            fig("pii_languages", "PII entities per language"),
            _table(["language", *entities, "total"], lang_rows),
        ]
    return "".join(parts)


def tokenizer(stats: dict[str, Any], fig: Figures) -> str:
    tok = stats["tokenizer"]
    if tok is None:
        return _not_run("tokenizer")
    rows = [
        [split, tok[f"{split}_docs"], tok[f"{split}_tokens"], tok[f"{split}_bytes"], tok[f"{split}_bytes_per_token"]]
        for split in ("train", "val")
    ]
    lang_rows = [
        [r["lang"], r["docs"], r["bytes"], r["tokens"], r["bytes_per_token"], r["tokens_per_word"]]
        for r in tok["languages"]
    ]
    longest = ", ".join(repr(t) for t in tok["longest_tokens"] or [])
    return "".join(
        [
            _facts(
                [
                    ("status", tok["status"]),
                    ("vocabulary size", tok["vocab_size"]),
                    ("vocabulary used", tok["vocab_used"]),
                    ("vocabulary used %", _pct(tok["vocab_used_share"])),
                    ("bytes per token", tok["bytes_per_token"]),
                    ("tokens per word", tok["tokens_per_word"]),
                    ("byte-fallback rate", tok["byte_fallback_rate"]),
                    ("unknown rate", tok["unknown_rate"]),
                    ("seconds", tok["seconds"]),
                ]
            ),
            _table(["split", "documents", "tokens", "bytes", "bytes per token"], rows),
            fig("tokenizer", "bytes per token and tokens per word per language"),
            _table(["language", "documents", "bytes", "tokens", "bytes per token", "tokens per word"], lang_rows)
            if lang_rows
            else "",
            f"<h3>Longest tokens</h3><p><code>{_esc(longest)}</code></p>" if longest else "",
        ]
    )


def training(stats: dict[str, Any], fig: Figures) -> str:
    tr = stats["training"]
    if tr is None:
        return _not_run("pretrain")
    sample = (
        f"<h3>Sample from the model</h3><pre>{_esc(tr['sample'])}</pre>"
        if tr["sample"]
        else '<p class="muted">no model/sample.txt</p>'
    )
    return (
        fig("loss", "loss and bits per byte per step")
        + _facts(
            [
                ("status", tr["status"]),
                ("device", tr["device"]),
                ("parameters", tr["params"]),
                ("steps", tr["steps"]),
                ("tokens seen", tr["tokens_seen"]),
                ("tokens/s", tr["tokens_per_s"]),
                ("seconds", tr["seconds"]),
                ("initial val loss (nats/token)", tr["initial_val_loss"]),
                ("final val loss (nats/token)", tr["final_val_loss"]),
                ("final / initial val loss", tr["final_over_initial_val_loss"]),
                ("final val bits per byte", tr["val_bits_per_byte"]),
                ("metrics rows", tr["metrics_rows"]),
            ]
        )
        + sample
    )


def model_card(stats: dict[str, Any], fig: Figures) -> str:
    card = stats.get("model_card")
    if card is None:
        return '<p class="muted">no model/card.json (the pretrain stage writes it)</p>'
    survey = [
        [
            card["category"],
            card["parameters"],
            card["normalisation"],
            card["positional_embedding"],
            card["activation"],
            "yes" if card["bias"] else "no",
            card["layers"],
            card["heads"],
            card["hidden_size"],
            card["max_context_length"],
        ]
    ]
    headers = ["category", "size", "normalisation", "PE", "activation", "bias", "#L", "#H", "d_model", "MCL"]
    mixture = [[name, _pct(m["realised_share"]), m["tokens_used"], m["repeats"]] for name, m in card["mixture"].items()]
    return "".join(
        [
            _table(headers, survey, numeric_from=6),
            _facts(
                [
                    ("vocabulary", card["vocab_size"]),
                    ("MLP hidden size", card["mlp_hidden_size"]),
                    ("tied embeddings", card["tied_embeddings"]),
                    ("objective", card["objective"]),
                    ("steps", card["steps"]),
                    ("tokens seen", card["tokens_seen"]),
                    ("seed", card["seed"]),
                    ("validation bits per byte", card["val_bpb"]),
                ]
                + [(f"bits per byte: {name}", bpb) for name, bpb in card["val_bpb_by_source"].items()]
            ),
            _table(["source", "share of training tokens", "tokens", "repeats"], mixture) if mixture else "",
        ]
    )


def ablations(stats: dict[str, Any], fig: Figures) -> str:
    results = stats.get("ablations")
    if results is None:
        return '<p class="muted">no ablations: run <code>corpus ablate BUILD_DIR</code></p>'

    def versus(d: dict[str, Any] | None) -> str:
        if d is None:
            return "—"
        return f"{d['diff']:+.4f} vs {d['to']}" + (" (exceeds seed spread)" if d["exceeds_seed_spread"] else "")

    rows = [
        [
            name,
            v["spec"],
            v["documents"],
            v["train_tokens"],
            v["bpb_mean"],
            v["bpb_std"],
            versus(v["vs_raw"]),
            versus(v["vs_baseline"]),
            v["tokens_per_s"],
            _pct(v["mfu"]),
        ]
        for name in results["order"]
        for v in [results["variants"][name]]
    ]
    return "".join(
        [
            fig("ablations", "bits per byte per corpus variant, mean and spread over seeds"),
            _facts(
                [
                    ("scored on", results["eval"]["text"]),
                    ("evaluation tokens", results["eval"]["tokens"]),
                    ("training tokens per run", results["tokens"]),
                    ("seeds", ", ".join(map(str, results["seeds"]))),
                    ("model", f"{results['preset']} preset, {results['params']:,} parameters, {results['objective']}"),
                    ("device", results["device"]),
                    ("seconds", results["seconds"]),
                ]
            ),
            _table(
                [
                    "variant",
                    "spec",
                    "training documents",
                    "training tokens",
                    "bits/byte",
                    "std",
                    "vs raw",
                    "vs baseline",
                    "tokens/s",
                    "MFU",
                ],
                rows,
                numeric_from=2,
                numeric_to=6,
            ),
            f'<p class="muted">{_esc(results["spread_rule"])}</p>',
        ]
    )


def _run_html(stats: dict[str, Any], _fig: Figures) -> str:
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
    shard_rows = [[s.get("name"), s.get("path"), s.get("fingerprint"), s.get("docs"), s.get("bytes")] for s in shards]
    timing_rows = [
        [t["stage"], t["status"], t.get("seconds"), t.get("shards"), t.get("shards_skipped"), t.get("docs_per_s")]
        for t in run["timings"]
    ]
    versions = sorted(run["versions"].items())
    config = "not recorded"
    if run["config"]:
        config = yaml.safe_dump(run["config"], sort_keys=False, allow_unicode=True)
    return "".join(
        [
            _facts(
                [("input", run["input"])]
                + ([("published at", run["out"])] if run["out"] != run["build_dir"] else [])  # a URL
                + [
                    ("build directory", run["build_dir"]),
                    ("corpus version", run["corpus_version"]),
                    ("workers", run["workers"]),
                ]
            ),
            cons_html,
            f"<h3>Input shards ({len(shards):,})</h3>",
            f"<details{' open' if len(shards) <= 20 else ''}><summary>paths and SHA-256 fingerprints</summary>"
            + _table(["shard", "path", "fingerprint", "documents", "bytes"], shard_rows, numeric_from=3)
            + "</details>",
            "<h3>Stage timings</h3>",
            _table(
                ["stage", "status", "seconds", "shards", "shards skipped (resumed)", "docs/s"],
                timing_rows,
                numeric_from=2,
            ),
            "<h3>Versions</h3>",
            _table(["package", "version"], [list(v) for v in versions], numeric_from=2),
            "<h3>Config</h3>",
            f"<pre>{_esc(config)}</pre>",
        ]
    )


def _deltas_html(rows: list[dict[str, Any]], other: str) -> str:
    """This build, the other, and the difference, for every number of a section."""
    if not rows:
        return ""
    body = []
    for r in rows:
        delta = r["delta"]
        cls = "num" if not delta else ("num delta-up" if delta > 0 else "num delta-down")
        sign = "+" if delta and delta > 0 else ""
        body.append(
            f'<tr><td><code>{_esc(r["path"])}</code></td><td class="num">{_esc(_fmt(r["this"]))}</td>'
            f'<td class="num">{_esc(_fmt(r["other"]))}</td>'
            f'<td class="{cls}">{_esc(sign + _fmt(delta) if delta is not None else "—")}</td></tr>'
        )
    changed = sum(1 for r in rows if r["delta"] != 0)
    return (
        f"<details><summary>{changed:,} of {len(rows):,} numbers differ from {_esc(other)}</summary>"
        f'<table><thead><tr><th>number</th><th class="num">this build</th><th class="num">other build</th>'
        f'<th class="num">Δ</th></tr></thead><tbody>{"".join(body)}</tbody></table></details>'
    )


def sections() -> list[tuple[str, str, Callable[[dict[str, Any], Figures], str]]]:
    """(title, stats key, renderer) of every section in page order; the key names the numbers
    a comparison shows beneath the section (compare.py)."""
    own = [(section.title, section.key, section.render) for stage in registry for section in stage.report]
    return [
        ("Funnel", "funnel", _funnel_html),
        ("Removal reasons", "reasons", _reasons_html),
        ("Sources", "sources", _sources_html),
        ("Document lengths", "lengths", _lengths_html),
        *own,
        ("Run facts", "run", _run_html),
    ]


def render(stats: dict[str, Any], charts: dict[str, bytes], other: Other | None = None) -> str:
    """The whole report page; with `other`, each section also shows that build and the deltas."""
    run = stats["run"]
    fig = Figures(charts, other)
    deltas = stats.get("compare", {}).get("deltas", {})
    status = ", ".join(f"{name} {status}" for name, status in stats["stages"].items())
    page = sections()
    nav = " · ".join(f'<a href="#s{i}">{_esc(title)}</a>' for i, (title, _, _) in enumerate(page))
    body = "".join(
        f'<h2 id="s{i}">{_esc(title)}</h2>{render_section(stats, fig)}'
        + (_deltas_html(deltas.get(title, []), other.build_dir) if other else "")
        for i, (title, _, render_section) in enumerate(page)
    )
    title = f"Corpus build report: {run['input'] or 'unknown input'}"
    compared = f'<p class="sub">compared with {_esc(other.build_dir)}</p>' if other else ""
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>"
        f'<h1>{_esc(title)}</h1><p class="sub">{_esc(status)}</p>{compared}<p>{nav}</p>{body}</body></html>\n'
    )
