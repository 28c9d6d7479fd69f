"""Decontamination: recall on planted benchmark passages, clean documents flagged, and throughput
against a benchmark folder of 100k items.

Benchmark folder (written to a temporary folder, never committed): 100,000 items cut from real
text of ../shared/data, passages of 5 to 25 words (seeded lengths, so some are too short to hold
a 13-gram, as real benchmark questions are): FreeBSD/Debian fortunes in many languages
(corpora/fortunes_multilingual.jsonl), UDHR paragraphs (langid/udhr_paragraphs_dev.jsonl),
lingua's test sentences (langid/lingua_dev.jsonl) and Tiny Shakespeare, as four benchmarks.

Documents checked: the 449 web pages of web/trafilatura_dev.jsonl.gz (their WET-style `text`) and
the 30 Common Crawl documents of corpora/cc_docs.jsonl, none cut into items: flagged ones are the
"clean documents flagged". Planted: a copy of each of those documents with one item of 13+ words
inserted in the middle, changed as a copy on a web page would be (upper case, punctuation
added or removed, line breaks); every one must be found (recall).

Throughput: document text bytes per CPU second of the stage's shard step (`run_shard`: GPT-3
normalisation, hashing, index lookups, columns), one process, the index memory-mapped as the
workers map it; beside, in the same run, the plain way: a Python set of the items' 13-gram
tuples, looked up document by document (lm-eval's Janitor's approach without its cutting),
with the memory each index takes.

Needs ../shared/data (the files above); skips without them.
Run: .venv/bin/python -m bench.decontamination  ->  bench/results/decontamination.{json,md}
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import regex

from bench import SHARED_DATA, needs_data, skipping, write_results
from pipeline.config import BuildConfig
from pipeline.decontamination import ngrams
from pipeline.decontamination.stage import build_index, run_shard
from pipeline.stage import BuildContext, ShardContext

FORTUNES = SHARED_DATA / "corpora" / "fortunes_multilingual.jsonl"
UDHR = SHARED_DATA / "langid" / "udhr_paragraphs_dev.jsonl"
LINGUA = SHARED_DATA / "langid" / "lingua_dev.jsonl"
SHAKESPEARE = SHARED_DATA / "corpora" / "tinyshakespeare.txt"
PAGES = SHARED_DATA / "web" / "trafilatura_dev.jsonl.gz"
CC_DOCS = SHARED_DATA / "corpora" / "cc_docs.jsonl"
ITEMS = 100_000
PUNCTUATION = regex.compile(r"\p{P}+")
SEED = 22


def jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def passages(texts: list[str], rng: random.Random) -> list[str]:
    """Consecutive passages of 5-25 words covering each text (a shorter tail stays an item too)."""
    out = []
    for text in texts:
        words = text.split()
        at = 0
        while at < len(words):
            length = rng.randint(5, 25)
            out.append(" ".join(words[at : at + length]))
            at += length
    return out


def benchmark_items(rng: random.Random) -> dict[str, list[str]]:
    """Four benchmarks, 100k items together, each source's share by its size."""
    sources = {
        "fortunes": passages([r["text"] for r in jsonl(FORTUNES)], rng),
        "udhr": passages([r["text"] for r in jsonl(UDHR)], rng),
        "lingua": [r["text"] for r in jsonl(LINGUA) if r["kind"] == "sentence"],
        "shakespeare": passages(SHAKESPEARE.read_text(encoding="utf-8").split("\n\n"), rng),
    }
    total = sum(map(len, sources.values()))
    if total < ITEMS:
        raise SystemExit(f"only {total} items in the sources, {ITEMS} wanted")
    items = {}
    for name, texts in sources.items():
        items[name] = rng.sample(texts, min(len(texts), round(ITEMS * len(texts) / total)))
    short = ITEMS - sum(map(len, items.values()))
    chosen = set(items["fortunes"])
    items["fortunes"] += rng.sample([t for t in sources["fortunes"] if t not in chosen], short)
    return items


def disguise(item: str, rng: random.Random) -> str:
    """An item as a copy on a page shows it: cased, punctuated, wrapped differently; only changes
    GPT-3's normalisation undoes (not "ß" upper-cased to "SS", which lower-cases to "ss")."""
    words = item.split()
    changed = []
    for i, word in enumerate(words):
        roll = rng.random()
        if roll < 0.15 and word.upper().lower() == word.lower():
            word = word.upper()
        elif roll < 0.3 and word.capitalize().lower() == word.lower():
            word = word.capitalize()
        elif roll < 0.4:
            word = PUNCTUATION.sub("", word) or word  # punctuation dropped
        elif roll < 0.5:
            word += rng.choice([",", ";", " —", "!", "…"])  # punctuation added
        changed.append(word + ("\n" if i % 9 == 8 else " "))
    return "".join(changed).strip()


def planted_docs(docs: list[dict], items: dict[str, list[str]], n: int, rng: random.Random) -> list[dict]:
    """A copy of each document with one item of n+ words inserted at a line break in its middle."""
    long = [(name, t) for name, texts in items.items() for t in texts if len(ngrams.words(t)) >= n]
    out = []
    for doc in docs:
        name, item = rng.choice(long)
        lines = doc["text"].split("\n")
        at = len(lines) // 2
        text = "\n".join(lines[:at] + [disguise(item, rng)] + lines[at:])
        out.append({"id": f"planted-{doc['id']}", "text": text, "benchmark": name})
    return out


def context(tmp: Path, cfg: BuildConfig, shard: Path) -> BuildContext:
    return BuildContext(
        build_dir=tmp,
        stage="decontamination",
        folder=tmp / "decontamination",
        config=cfg.decontamination,
        config_hash=cfg.section_hash("decontamination"),
        seed=cfg.seed,
        shards=[("part-00000", shard)],
        build_config=cfg,
    )


def rss_mb() -> float:
    return int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024


def plain_set(items: dict[str, list[str]], texts: list[str], n: int) -> dict:
    """The plain way, timed beside: a Python set of 13-gram tuples of the same normalised words."""
    before = rss_mb()
    start = time.process_time()
    grams: set[tuple[str, ...]] = set()
    for texts_ in items.values():
        for t in texts_:
            w = ngrams.words(t)
            grams.update(tuple(w[i : i + n]) for i in range(len(w) - n + 1))
    build_s = time.process_time() - start
    memory = rss_mb() - before
    start = time.process_time()
    flagged = 0
    for text in texts:
        w = ngrams.words(text)
        flagged += any(tuple(w[i : i + n]) in grams for i in range(len(w) - n + 1))
    check_s = time.process_time() - start
    return {"build_cpu_s": round(build_s, 2), "check_cpu_s": check_s, "memory_mb": round(memory), "flagged": flagged}


def main() -> None:
    needs_data(FORTUNES, UDHR, LINGUA, SHAKESPEARE, PAGES, CC_DOCS)
    rng = random.Random(SEED)
    items = benchmark_items(rng)
    clean = [{"id": r["id"], "text": r["text"]} for r in jsonl(PAGES)]
    clean += [{"id": f"cc-{i}", "text": r["text"]} for i, r in enumerate(jsonl(CC_DOCS))]
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        folder = tmp / "benchmarks"
        folder.mkdir()
        for name, texts in items.items():
            (folder / f"{name}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        cfg = BuildConfig.model_validate(
            {"decontamination": {"enabled": True, "benchmarks": str(folder), "validation": "off"}}
        )
        n = cfg.decontamination.ngram
        planted = planted_docs(clean, items, n, rng)
        shard = tmp / "part-00000.parquet"
        table = pa.Table.from_pylist([{"id": d["id"], "text": d["text"]} for d in clean + planted])
        pq.write_table(table, shard)

        start = time.process_time()
        record = build_index(context(tmp, cfg, shard))
        index_s = time.process_time() - start
        index_dir = tmp / "decontamination" / "_index" / "benchmarks"
        index_bytes = sum(p.stat().st_size for p in index_dir.iterdir())
        ctx = ShardContext(
            cfg.decontamination,
            stage="decontamination",
            artifacts={"decontamination_index": tmp / record["artifact"]},
        )
        clean_table = table.slice(0, len(clean))
        text_bytes = sum(len(d["text"].encode()) for d in clean)
        run_shard(clean_table.slice(0, 20), ctx)  # the index pages and the hash function warm
        runs = []
        for _ in range(3):
            start = time.process_time()
            result = run_shard(clean_table, ctx)
            runs.append(time.process_time() - start)
        check_s = sorted(runs)[1]
        flagged_clean = result.removed.to_pylist()
        planted_result = run_shard(table.slice(len(clean)), ctx)
        # Found: removed, and naming the benchmark the planted item came from.
        planted_from = {p["id"]: p["benchmark"] for p in planted}
        found = {
            row["id"]
            for row in planted_result.removed.to_pylist()
            if planted_from[row["id"]] in row["contaminated_by"].split(",")
        }
        plain = plain_set(items, [d["text"] for d in clean], n)

    per_benchmark = {b["name"]: b for b in record["benchmarks"]}
    results = {
        "loadavg": os.getloadavg()[0],
        "python": sys.version.split()[0],
        "items": sum(b["items"] for b in record["benchmarks"]),
        "benchmarks": [
            {
                "name": name,
                "items": per_benchmark[name]["items"],
                "short_items": per_benchmark[name]["short_items"],
                "planted": sum(p["benchmark"] == name for p in planted),
                "found": sum(p["benchmark"] == name and p["id"] in found for p in planted),
            }
            for name in items
        ],
        "ngram": n,
        "index_ngrams": record["benchmark_ngrams"],
        "index_mb_on_disk": round(index_bytes / 1e6, 1),
        "index_build_cpu_s": round(index_s, 2),
        "planted": len(planted),
        "recall": len(found) / len(planted),
        "clean_docs": len(clean),
        "clean_flagged": len(flagged_clean),
        "clean_flagged_share": len(flagged_clean) / len(clean),
        "clean_flagged_by": sorted({r["contaminated_by"] for r in flagged_clean}),
        "text_mb": round(text_bytes / 1e6, 2),
        "check_cpu_s_runs": [round(s, 3) for s in runs],
        "mb_per_cpu_s": round(text_bytes / 1e6 / check_s, 2),
        "plain_set": plain
        | {
            "mb_per_cpu_s": round(text_bytes / 1e6 / plain["check_cpu_s"], 2),
            "check_cpu_s": round(plain["check_cpu_s"], 3),
        },
    }
    results["ratio_vs_plain_set"] = round(results["mb_per_cpu_s"] / results["plain_set"]["mb_per_cpu_s"], 2)
    write_results("decontamination", results, markdown(results))
    print(markdown(results))


def markdown(r: dict) -> str:
    lines = [
        f"# Decontamination ({r['items']:,} benchmark items, {r['ngram']}-grams)",
        "",
        f"load average {r['loadavg']:.2f}; CPU seconds, one process. Data and method: bench/decontamination.py.",
        "",
        "| benchmark | items | items under 13 words | planted | found |",
        "|---|---|---|---|---|",
    ]
    for b in r["benchmarks"]:
        lines.append(f"| {b['name']} | {b['items']:,} | {b['short_items']:,} | {b['planted']} | {b['found']} |")
    p = r["plain_set"]
    lines += [
        "",
        f"- recall on planted passages: **{r['recall']:.3f}** ({r['planted']} documents)",
        f"- clean documents flagged: **{r['clean_flagged']} of {r['clean_docs']}** "
        f"({r['clean_flagged_share']:.2%}; benchmarks: {', '.join(r['clean_flagged_by']) or 'none'})",
        f"- throughput: **{r['mb_per_cpu_s']} MB/s per core** of document text ({r['text_mb']} MB; "
        f"median of 3 runs {r['check_cpu_s_runs']} s) against {r['index_ngrams']:,} indexed n-grams",
        f"- index: {r['index_mb_on_disk']} MB on disk (memory-mapped), built in {r['index_build_cpu_s']} CPU s",
        f"- same run, a Python set of {r['ngram']}-gram tuples: {p['mb_per_cpu_s']} MB/s per core, "
        f"{p['memory_mb']} MB resident, built in {p['build_cpu_s']} CPU s, {p['flagged']} clean documents flagged; "
        f"the stage is **{r['ratio_vs_plain_set']}x** its speed",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    with skipping("decontamination"):
        main()
