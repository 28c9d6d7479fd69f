"""The whole dedup stage at 100k-1M documents: time and peak memory of each step.

Documents are generated from real text with planted duplicates: a word stream of sample_data/,
Tiny Shakespeare, the Debian fortunes and the Common Crawl pages (../shared/data/corpora), cut
into 12-word windows; a document is 5 random windows, one per line (~60 words, ~350 characters:
short, so that 1M documents fit this 2-core machine's time). Of every 10 documents, 8 are such
originals, 1 an exact copy of an earlier one (re-cased, whitespace changed) and 1 a near copy (one
word replaced, or one window appended: Jaccard of character 7-grams ~0.94 and ~0.83, so some
appended copies fall below 0.8). 2% carry one of 20 footer lines.

Per size, as the flow runs it (without Prefect): the `dedup_signatures` jobs over shards of 10k
documents in a 2-process pool, then the dedup stage's clustering step (band keys grouped per band,
candidates verified, union-find, boilerplate lines) in a fresh process of its own, so its peak
RSS (`ru_maxrss`) is the global step's alone; bytes per document = (peak RSS - RSS after imports)
/ documents. Containment is off (`containment: false`; the default skips it above 200k
documents anyway; docs/dedup.md). The per-shard apply step (step 3) is not timed.

Needs ../shared/data/corpora/{tinyshakespeare.txt,fortunes_multilingual.jsonl,cc_docs.jsonl};
skips without them.
Run: .venv/bin/python -m bench.dedup_scale [--sizes 100000,300000,1000000]
(100k: ~30 s, 1M: ~3.5 min on this 2-core machine at load ~2; generated shards go to
$TMPDIR/dedup_scale_*, removed after)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench import REPO, SHARED_DATA, needs_data, skipping, write_results

SHARED = SHARED_DATA / "corpora"
TEXTS = [SHARED / name for name in ("tinyshakespeare.txt", "fortunes_multilingual.jsonl", "cc_docs.jsonl")]
SHARD_DOCS = 10_000
WINDOW, WINDOWS = 12, 5
WORKERS = 2


def word_stream() -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = (
        pa.concat_tables(
            pq.read_table(p, columns=["text"]) for p in sorted((REPO / "sample_data").rglob("part-*.parquet"))
        )
        .column("text")
        .to_pylist()
    )
    texts.append((SHARED / "tinyshakespeare.txt").read_text(encoding="utf-8"))
    for name in ("fortunes_multilingual.jsonl", "cc_docs.jsonl"):
        with (SHARED / name).open(encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f]
    return " ".join(texts).split()


def generate(n: int, out: Path, seed: int = 0) -> dict:
    """n documents in shards of SHARD_DOCS under out/; returns the planted copies' counts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    words = word_stream()
    footers = [" ".join(words[i : i + 8]) + " | all rights reserved" for i in range(0, 20 * 1000, 1000)]
    ids, texts, planted = [], [], {"exact": 0, "near": 0}
    originals: list[int] = []

    def window() -> str:
        start = rng.randrange(len(words) - WINDOW)
        return " ".join(words[start : start + WINDOW])

    for i in range(n):
        kind = "original" if i < 10 or i % 10 < 8 else ("exact" if i % 10 == 8 else "near")
        if kind == "original":
            text = "\n".join(window() for _ in range(WINDOWS))
            if rng.random() < 0.02:
                text += "\n" + rng.choice(footers)
            originals.append(i)
            ids.append(f"d{i:07d}")
        else:
            source_index = rng.choice(originals[-1000:])
            source = texts[source_index]
            if kind == "exact":
                text = "  ".join(source.upper().split("\n"))
            elif rng.random() < 0.5:
                tokens = source.split(" ")
                tokens[rng.randrange(len(tokens))] = rng.choice(words)
                text = " ".join(tokens)
            else:
                text = source + "\n" + window()
            planted[kind] += 1
            ids.append(f"d{source_index:07d}-{kind}-{i:07d}")  # starts with its original's id
        texts.append(text)
    out.mkdir(parents=True, exist_ok=True)
    for s in range(0, n, SHARD_DOCS):
        table = pa.table({"id": ids[s : s + SHARD_DOCS], "text": texts[s : s + SHARD_DOCS]})
        pq.write_table(table, out / f"part-{s // SHARD_DOCS:05d}.parquet")
    return planted


def global_step(ctx, result: multiprocessing.Queue) -> None:
    """In a fresh process: the dedup clustering step, with its wall and CPU time and peak RSS."""
    from pipeline.dedup import minhash, stage  # noqa: F401  (imports counted in the base RSS)

    base = rss_bytes()
    wall, cpu = time.perf_counter(), time.process_time()
    record = stage.cluster(ctx)
    path = ctx.build_dir / record["artifact"]
    result.put(
        {
            "wall_s": time.perf_counter() - wall,
            "cpu_s": time.process_time() - cpu,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "base_rss_bytes": base,
            "decisions": str(path),
        }
    )


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def run_size(n: int, work: Path) -> dict:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pipeline import steps
    from pipeline.config import BuildConfig
    from pipeline.jobs import run_job
    from pipeline.shards import InputShard
    from pipeline.sources import build_sources
    from pipeline.stages import registry

    start = time.perf_counter()
    planted = generate(n, work / "input")
    generate_s = time.perf_counter() - start
    config = {"dedup": {"containment": False}}
    cfg = BuildConfig.model_validate(config)
    sources = [(p.stem, p) for p in sorted((work / "input").glob("part-*.parquet"))]
    dedup = registry.get("dedup")
    inputs = [InputShard(name, path, path, pq.read_metadata(path).num_rows) for name, path in sources]
    ctx = steps.build_context(work / "build", dedup, inputs, cfg, build_sources(cfg, str(work / "input")))
    jobs = steps.shard_jobs(dedup, dedup.steps[0], ctx)

    context = multiprocessing.get_context("spawn")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    with ProcessPoolExecutor(WORKERS, mp_context=context) as pool:
        ctx.records[dedup.steps[0].name] = list(pool.map(run_job, jobs))
    signatures_wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    signatures_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

    queue = context.Queue()
    process = context.Process(target=global_step, args=(ctx, queue))
    process.start()
    decided = queue.get()
    process.join()

    decisions = pq.read_table(decided["decisions"], columns=["id", "dup_cluster", "duplicate_of", "reason"])
    cluster = dict(zip(decisions.column("id").to_pylist(), decisions.column("dup_cluster").to_pylist()))
    # A planted copy is found when it shares a cluster with its original (either may be kept).
    found = {
        kind: sum(1 for i, c in cluster.items() if f"-{kind}-" in i and c == cluster[i[:8]])
        for kind in ("exact", "near")
    }
    removed = decisions.filter(pc.is_valid(decisions.column("reason")))
    pairs = list(zip(removed.column("id").to_pylist(), removed.column("duplicate_of").to_pylist()))
    # A removed document must belong with what it is a duplicate of: the same original's id prefix.
    wrongly_removed = sum(1 for i, of in pairs if i[:8] != of[:8])
    counts = pc.value_counts(removed.column("reason"))
    signature_files = [ctx.folder / record["outputs"][0] for record in ctx.records[dedup.steps[0].name]]
    band_bytes = (
        sum(pq.read_metadata(f).num_rows for f in signature_files)
        * 8
        * len([c for c in pq.read_schema(signature_files[0]).names if c.startswith("band_")])
    )
    return {
        "documents": n,
        "shards": len(jobs),
        "generate_s": round(generate_s, 1),
        "signatures_wall_s": round(signatures_wall, 1),
        "signatures_cpu_s": round(signatures_cpu, 1),
        "signatures_docs_per_cpu_s": round(n / signatures_cpu),
        "global_wall_s": round(decided["wall_s"], 1),
        "global_cpu_s": round(decided["cpu_s"], 1),
        "global_peak_rss_mb": round(decided["peak_rss_bytes"] / 2**20),
        "global_base_rss_mb": round(decided["base_rss_bytes"] / 2**20),
        "global_bytes_per_doc": round((decided["peak_rss_bytes"] - decided["base_rss_bytes"]) / n),
        "stage_wall_s": round(signatures_wall + decided["wall_s"], 1),
        "band_keys_on_disk_bytes_per_doc": round(band_bytes / n),
        "removed": removed.num_rows,
        "planted": planted,
        "planted_found": found,
        "originals_wrongly_removed": wrongly_removed,
        "reasons": dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())),
        "loadavg": os.getloadavg(),
    }


def markdown(rows: list[dict]) -> str:
    lines = [
        "# Dedup stage at scale (bench/dedup_scale.py)",
        "",
        "Generated short documents (~60 words) from real text, 20% planted copies; shards of 10k;",
        f"signatures in a {WORKERS}-process pool, the global step in a process of its own; containment off.",
        "",
        "| documents | signatures wall / CPU s | docs per CPU s | global step wall / CPU s | global peak RSS | bytes/doc (global) | stage wall s | planted copies found | removed with the wrong original | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        planted = sum(r["planted"].values())
        found = sum(r["planted_found"].values())
        lines.append(
            f"| {r['documents']:,} | {r['signatures_wall_s']} / {r['signatures_cpu_s']} | {r['signatures_docs_per_cpu_s']:,} "
            f"| {r['global_wall_s']} / {r['global_cpu_s']} | {r['global_peak_rss_mb']:,} MB (base {r['global_base_rss_mb']}) "
            f"| {r['global_bytes_per_doc']:,} | {r['stage_wall_s']} | {found:,} / {planted:,} | {r['originals_wrongly_removed']} "
            f"| {r['loadavg'][0]:.1f} |"
        )
    for small, large in zip(rows, rows[1:]):
        slope = (
            (large["global_peak_rss_mb"] - small["global_peak_rss_mb"])
            * 2**20
            / (large["documents"] - small["documents"])
        )
        lines.append(
            f"\nGlobal step, {small['documents']:,} -> {large['documents']:,} documents: "
            f"{slope:,.0f} bytes of peak RSS per added document; wall time x{large['global_wall_s'] / max(small['global_wall_s'], 0.1):.1f}, "
            f"signatures CPU x{large['signatures_cpu_s'] / small['signatures_cpu_s']:.1f} for x{large['documents'] / small['documents']:.1f} documents."
        )
    return "\n".join(lines) + "\n"


def main(sizes: list[int] = (100_000, 300_000)) -> list[dict]:
    needs_data(*TEXTS)
    rows = []
    for n in sizes:
        work = Path(tempfile.mkdtemp(prefix=f"dedup_scale_{n}_"))
        try:
            rows.append(run_size(n, work))
            print(json.dumps(rows[-1]))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    write_results("dedup_scale", rows, markdown(rows))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,300000")
    with skipping("dedup_scale"):
        main([int(s) for s in parser.parse_args().sizes.split(",")])
