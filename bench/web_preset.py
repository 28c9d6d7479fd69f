"""What the `web` source kind does to the boilerplate of real web pages, against `other`.

Pages: trafilatura's evaluation pages of ../shared/data/web/trafilatura_dev.jsonl.gz (development
data, never committed), as their naive WET-like `text` (every visible text node, block tags as
newlines: what a text-level filter sees in Common Crawl's WET files), each with human-marked
`must_keep` (main content) and `must_remove` (navigation, footers, teasers) snippets.

Each kind's settings (pipeline/sources.py) run the quality stage and dedup's boilerplate-line
removal on all the pages, as a build does; a snippet is found when its whitespace-normalised text
is in the page's output (a removed page outputs nothing). Scores: the share of must_remove
snippets gone, and of must_keep snippets kept, per kind, in one run.

Needs ../shared/data/web/trafilatura_dev.jsonl.gz; skips without it.
Run: .venv/bin/python -m bench.web_preset (a few minutes); writes bench/results/web_preset.json and .md.
"""

from __future__ import annotations

import gzip
import json
import os
import time

import pyarrow as pa

from bench import SHARED_DATA, needs_data, skipping, write_results
from pipeline.config import BuildConfig
from pipeline.dedup.methods import find_duplicates, signatures
from pipeline.dedup.stage import apply_decisions
from pipeline.quality.stage import run_shard
from pipeline.stage import ShardContext

PAGES = SHARED_DATA / "web" / "trafilatura_dev.jsonl.gz"
KINDS = ("other", "web")


def pages() -> list[dict]:
    with gzip.open(PAGES, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def normalised(text: str) -> str:
    return " ".join(text.split())


def outputs(rows: list[dict], kind: str) -> dict[str, str]:
    """Each kept page's text after the quality stage and dedup's line removal, under `kind`."""
    cfg = BuildConfig.model_validate({"sources": [{"name": kind, "input": str(PAGES), "kind": kind}]})
    source = cfg.for_source(kind)
    table = pa.table({"id": [r["id"] for r in rows], "text": [r["text"] for r in rows]})
    kept = run_shard(table, ShardContext(source.quality, stage="quality")).kept
    decisions = find_duplicates([signatures(kept, source.dedup)], source.dedup)
    deduped = apply_decisions(kept, decisions, source.dedup.lines).kept
    return dict(zip(deduped["id"].to_pylist(), deduped["text"].to_pylist()))


def score(rows: list[dict], out: dict[str, str]) -> dict:
    removed = kept = keep_total = remove_total = 0
    for row in rows:
        text = normalised(out.get(row["id"], ""))
        keep_total += len(row["must_keep"])
        remove_total += len(row["must_remove"])
        kept += sum(normalised(s) in text for s in row["must_keep"] if normalised(s)) if text else 0
        removed += sum(not text or normalised(s) not in text for s in row["must_remove"])
    return {
        "pages": len(rows),
        "pages_kept": len(out),
        "must_remove_gone": round(removed / remove_total, 4),
        "must_keep_kept": round(kept / keep_total, 4),
        "must_remove_snippets": remove_total,
        "must_keep_snippets": keep_total,
    }


def main() -> dict:
    needs_data(PAGES)
    start = time.perf_counter()
    rows = pages()
    results = {"loadavg": os.getloadavg(), "kinds": {kind: score(rows, outputs(rows, kind)) for kind in KINDS}}
    results["seconds"] = round(time.perf_counter() - start, 1)
    write_results("web_preset", results, markdown(results))
    return results


def markdown(results: dict) -> str:
    lines = [
        "# web preset on real pages (`.venv/bin/python -m bench.web_preset`)",
        "",
        "trafilatura's development pages as WET-like text; quality stage + dedup's boilerplate lines per source kind.",
        "",
        "| kind | pages kept | must_remove gone | must_keep kept |",
        "|---|---:|---:|---:|",
    ]
    for kind, s in results["kinds"].items():
        lines.append(
            f"| {kind} | {s['pages_kept']} / {s['pages']} | {s['must_remove_gone']:.1%} | {s['must_keep_kept']:.1%} |"
        )
    return "\n".join(lines) + f"\n\nload average at start: {results['loadavg'][0]:.2f}; {results['seconds']} s\n"


if __name__ == "__main__":
    with skipping("web_preset"):
        print(markdown(main()))
