"""Main-text extraction quality and cost: the extract stage beside plain trafilatura and resiliparse.

Data: ../shared/data/web/trafilatura_dev.jsonl.gz, 449 of trafilatura's evaluation pages with
human-marked `must_keep` / `must_remove` snippets (development use only, never committed). They
are split in two by a fixed hash of their ids: the development half, on which the checks of
pipeline/extract/extractors.py (link share, lead paragraph, line rules) were chosen, and the
held-out half, the result. The stage's figures on the development half are written beside, for
reference only: the gap between the halves is how much of a check's gain was the half's own.

Scoring is trafilatura's own (tests/eval_common.py there): output and snippets whitespace-
normalised; a `must_keep` snippet found is a true positive, one missing a false negative; a
`must_remove` snippet found is a false positive. P = TP/(TP+FP), R = TP/(TP+FN), F1 = 2TP/(2TP+FP+FN).

In one run, on the same held-out pages:
- plain trafilatura as its evaluation runs it (`extract(html, include_comments=False,
  include_tables=True)`), and plain resiliparse (`extract_plain_text(main_content=True)`);
- the extract stage itself, default (trafilatura) and fast (resiliparse) mode: its steps run on an
  HTML table of the pages (with drop_duplicate_urls off: some pages share a URL), and the `text`
  column of its output is scored (a page it removes scores as empty); CPU ms per page is the
  extractor time the stage counts (`extract_cpu_ms`);
- CPU ms per page of each library call, one page after another in this process.
And WARC reading: records per CPU second over the committed dolma WARC fixtures (payloads read and
HTTP-decoded), fastwarc (the stage's reading, pipeline/extract/stage.py `fetches`) vs warcio.

Run: .venv/bin/python -m bench.extract_quality  ->  bench/results/extract_quality.{json,md}
(about three minutes)
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import trafilatura
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

from bench import SHARED_DATA, needs_data, skipping, write_results
from pipeline import steps
from pipeline.config import BuildConfig
from pipeline.jobs import run_job
from pipeline.shards import RawPart, prepare_inputs
from pipeline.sources import build_sources
from pipeline.stage import ShardStep
from pipeline.stages import EXTRACT

DATA = SHARED_DATA / "web" / "trafilatura_dev.jsonl.gz"
WARCS = sorted((Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "web").glob("*.warc.gz"))
WARC_ROUNDS = 20


def held_out(page: dict) -> bool:
    """The fixed split: half the pages by a hash of their id."""
    return int(hashlib.sha256(page["id"].encode()).hexdigest(), 16) % 2 == 1


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def score(pages: list[dict], outputs: list[str]) -> dict:
    tp = fn = fp = 0
    for page, output in zip(pages, outputs):
        found = _norm(output or "")
        for snippet in page["must_keep"]:
            if _norm(snippet) in found:
                tp += 1
            else:
                fn += 1
        fp += sum(_norm(snippet) in found for snippet in page["must_remove"])
    return {
        "precision": round(tp / (tp + fp), 3),
        "recall": round(tp / (tp + fn), 3),
        "f1": round(2 * tp / (2 * tp + fp + fn), 3),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def library(pages: list[dict], extract) -> dict:
    start = time.process_time()
    outputs = [extract(page["html"]) or "" for page in pages]
    ms = (time.process_time() - start) * 1000 / len(pages)
    return score(pages, outputs) | {"cpu_ms_per_page": round(ms, 2)}


def stage(pages: list[dict], extractor: str) -> dict:
    """The extract stage's steps, as a build runs them, on an HTML table of the pages."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        table = pa.table({"url": [p["url"] for p in pages], "html": [p["html"] for p in pages]})
        pq.write_table(table, folder / "pages.parquet")
        # Some evaluation pages share a URL (captures of one page at different times): the stage
        # would keep one of them as duplicate_url, which is right in a build but not a score.
        cfg = BuildConfig.model_validate({"extract": {"extractor": extractor, "drop_duplicate_urls": False}})
        build = Path(tmp) / "build"
        inputs = prepare_inputs(str(folder), build / "input")
        ctx = steps.build_context(build, EXTRACT, inputs, cfg, build_sources(cfg, str(folder)))
        for step in EXTRACT.steps:
            if isinstance(step, ShardStep):
                ctx.records[step.name] = [run_job(job) for job in steps.shard_jobs(EXTRACT, step, ctx)]
            elif step.when(ctx.config):
                ctx.artifacts[step.name] = step.run(ctx)
        kept = pq.read_table(build / "extract" / "part-00000.parquet")
        texts = dict(zip(kept["id"].to_pylist(), kept["text"].to_pylist()))
        record = ctx.records["extract"][0]
    outputs = [texts.get(f"pages/{i}", "") for i in range(len(pages))]
    extracted = record["docs_kept"] + record["reasons"].get("empty_extraction", 0)
    return score(pages, outputs) | {
        "cpu_ms_per_page": round(record["extra"]["extract_cpu_ms"] / extracted, 2),
        "kept": record["docs_kept"],
        "removed": record["reasons"],
    }


def warc_reading() -> dict:
    """Records per CPU second, payloads read: fastwarc through the stage's reader vs warcio."""
    from warcio.archiveiterator import ArchiveIterator as WarcioIterator

    from pipeline.extract.stage import fetches
    from pipeline.extract.warc import scan

    parts = [(path, scan(path, 1 << 30)[0]) for path in WARCS]

    def ours() -> int:
        n = 0
        for path, found in parts:
            part = RawPart(str(path), "warc", found.docs, found.payload_bytes)
            for fetch in fetches(part):
                fetch.read()
                n += 1
        return n

    def warcio() -> int:
        n = 0
        for path in WARCS:
            with open(path, "rb") as f:
                for record in WarcioIterator(f):
                    if record.rec_type == "response":
                        record.content_stream().read()
                        n += 1
        return n

    times = {"fastwarc (extract stage)": 0.0, "warcio": 0.0}
    counts = {}
    for _ in range(WARC_ROUNDS):  # interleaved: the machine is shared and noisy
        for name, read in (("fastwarc (extract stage)", ours), ("warcio", warcio)):
            start = time.process_time()
            counts[name] = read()
            times[name] += time.process_time() - start
    rates = {name: round(counts[name] * WARC_ROUNDS / seconds) for name, seconds in times.items()}
    return {
        "documents_per_pass": counts,
        "records_per_cpu_s": rates,
        "fastwarc_over_warcio": round(rates["fastwarc (extract stage)"] / rates["warcio"], 2),
    }


def main() -> dict:
    needs_data(DATA)
    with gzip.open(DATA, "rt", encoding="utf-8") as f:
        pages = [json.loads(line) for line in f]
    held = [page for page in pages if held_out(page)]
    development = [page for page in pages if not held_out(page)]
    load = os.getloadavg()
    results = {
        "data": str(DATA.name),
        "pages": len(pages),
        "held_out_pages": len(held),
        "loadavg_start": load,
        "held_out": {
            "trafilatura (plain)": library(
                held, lambda h: trafilatura.extract(h, include_comments=False, include_tables=True)
            ),
            "resiliparse (plain)": library(held, lambda h: extract_plain_text(HTMLTree.parse(h), main_content=True)),
            "extract stage, default (trafilatura + checks)": stage(held, "trafilatura"),
            "extract stage, fast (resiliparse + checks)": stage(held, "resiliparse"),
        },
        "development_half_for_reference": {
            "extract stage, default (trafilatura + checks)": stage(development, "trafilatura"),
            "extract stage, fast (resiliparse + checks)": stage(development, "resiliparse"),
        },
        "warc_reading": warc_reading(),
        "loadavg_end": os.getloadavg(),
    }
    write_results("extract_quality", results, markdown(results))
    return results


def markdown(results: dict) -> str:
    lines = [
        "# extract_quality",
        "",
        f"Held-out half of {results['data']} ({results['held_out_pages']} of {results['pages']} pages; the checks "
        "were chosen on the other half). Scoring as trafilatura's evaluation; CPU ms per page on this machine, same run.",
        "",
        "| extractor | precision | recall | F1 | CPU ms/page |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in results["held_out"].items():
        lines.append(f"| {name} | {row['precision']} | {row['recall']} | {row['f1']} | {row['cpu_ms_per_page']} |")
    lines += ["", "For reference only, the stage on the development half (where its checks were chosen):", ""]
    lines += ["| extractor | precision | recall | F1 |", "|---|---:|---:|---:|"]
    for name, row in results["development_half_for_reference"].items():
        lines.append(f"| {name} | {row['precision']} | {row['recall']} | {row['f1']} |")
    warc = results["warc_reading"]
    lines += ["", "WARC reading (committed dolma fixtures, payloads read), records per CPU second:", ""]
    lines += [f"- {name}: {rate:,}" for name, rate in warc["records_per_cpu_s"].items()]
    lines += [f"- fastwarc / warcio: {warc['fastwarc_over_warcio']}x", ""]
    lines += [f"loadavg {results['loadavg_start']} -> {results['loadavg_end']}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    with skipping("extract_quality"):
        print(json.dumps(main()["held_out"], indent=2))
