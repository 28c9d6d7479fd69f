"""The shard plan on this machine: one file vs many files, and 1 vs 2 workers on one file.

Data: issue 25's corpus, real web pages and declarations as one user would deliver them, one
JSONL file: the 449 pages of ../shared/data/web/trafilatura_dev.jsonl.gz (their WET-like text,
as a crawl's text dump has it: English, German and a dozen other languages, 5.2 MB) followed by
the 527 declarations of ../shared/data/langid/udhr_paragraphs_dev.jsonl (each one document, its
articles joined, in 400+ languages, 3.4 MB): 976 documents, 8.8 MB. Also the same lines as 90
JSONL files (tiny files the plan merges). Each build is `corpus build` of the text stages
(quality, dedup, privacy, tokenizer; the tokenizer with a 4,096-token vocabulary to keep its
build-wide training short) in a subprocess, on the embedded Prefect API, with the default
`shards` settings. A stage's wall time is its `seconds` in the manifest; its build-wide steps'
time is taken out as well, to show the per-shard part that the plan spreads over the workers.

The machine has 2 cores, so the builds run interleaved, a few rounds of (one file / 1 worker,
one file / 2 workers, many files / 2 workers) in a rotating order, with the load average beside
each: ratios are taken within a round and their median reported. Needs ../shared/data (skips
without). Run by hand: `.venv/bin/python -m bench.shard_plan [rounds]` (~3 min a round here).
"""

from __future__ import annotations

import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from bench import SHARED_DATA, needs_data, skipping, write_results

STAGES = ("quality", "dedup", "privacy", "tokenizer")
CONFIG = {"tokenizer": {"vocab_size": 4096}}
PAGES = SHARED_DATA / "web" / "trafilatura_dev.jsonl.gz"
DECLARATIONS = SHARED_DATA / "langid" / "udhr_paragraphs_dev.jsonl"
VARIANTS = (("one file", "one", 1), ("one file", "one", 2), ("many files", "many", 2))
MANY = 90


def corpus() -> list[dict]:
    """The pages, then the declarations (each its articles in order), as `id` and `text`."""
    needs_data(PAGES, DECLARATIONS)
    with gzip.open(PAGES, "rt", encoding="utf-8") as lines:
        rows = [{"id": f"web/{page['id']}", "text": page["text"]} for page in map(json.loads, lines)]
    articles: dict[str, list[str]] = {}
    with DECLARATIONS.open(encoding="utf-8") as lines:
        for paragraph in map(json.loads, lines):
            articles.setdefault(paragraph["code"], []).append(paragraph["text"])
    return rows + [{"id": f"udhr/{code}", "text": "\n\n".join(articles[code])} for code in sorted(articles)]


def inputs(folder: Path) -> dict[str, Path]:
    """The corpus as one JSONL file and as MANY files of its lines, in one order."""
    lines = [json.dumps(row, ensure_ascii=False) + "\n" for row in corpus()]
    one = folder / "one" / "corpus.jsonl"
    one.parent.mkdir(parents=True)
    one.write_text("".join(lines), encoding="utf-8")
    many = folder / "many"
    many.mkdir()
    per = -(-len(lines) // MANY)
    for n in range(MANY):
        (many / f"corpus-{n:03d}.jsonl").write_text("".join(lines[n * per : (n + 1) * per]), encoding="utf-8")
    return {"one": one, "many": many}


def build(input_path: Path, out: Path, workers: int, config: Path) -> dict:
    load = os.getloadavg()[0]
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "build",
            "--input",
            str(input_path),
            "--out",
            str(out),
            "--config",
            str(config),
        ]
        + ["--stages", ",".join(STAGES), "--workers", str(workers)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PREFECT_SERVER_ANALYTICS_ENABLED="false", TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS=""),
    )
    manifest = json.loads((out / "manifest.json").read_text())
    stages = {}
    for name in STAGES:
        entry = manifest["stages"][name]
        build_steps = sum(step.get("seconds", 0) for step in entry.get("build_steps", {}).values())
        stages[name] = {"wall_s": entry["seconds"], "build_steps_s": round(build_steps, 3)}
        stages[name]["shard_steps_s"] = round(entry["seconds"] - build_steps, 3)
    return {
        "shards": len(manifest["input_shards"]),
        "total_s": round(time.perf_counter() - start, 1),
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "stages": stages,
    }


def documents(build_dir: Path, stage: str, removed: bool = False) -> pa.Table:
    """A stage's documents (or removed rows), sorted by id, columns by name."""
    folder = build_dir / stage / ("removed" if removed else "")
    table = pa.concat_tables(
        (pq.read_table(p) for p in sorted(folder.glob("part-*.parquet"))), promote_options="default"
    )
    table = table.select(sorted(table.column_names))
    return table.take(pa.compute.sort_indices(table, [("id", "ascending")]))


def same_outputs(a: Path, b: Path) -> dict[str, bool]:
    """Whether two builds kept and removed the same documents, byte for byte after sorting by id,
    and wrote the same number of tokens."""
    found = {}
    for stage in ("quality", "dedup", "privacy"):
        found[stage] = all(
            documents(a, stage, removed).equals(documents(b, stage, removed)) for removed in (False, True)
        )
    tokens = [json.loads((d / "tokens" / "_stage.json").read_text()) for d in (a, b)]
    found["tokens"] = all(tokens[0][key] == tokens[1][key] for key in ("train_tokens", "val_tokens"))
    return found


def main(rounds: int = 2) -> dict:
    """The builds, round by round; results are written after every round (a long run stopped
    early still leaves its finished rounds)."""
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = inputs(folder)
        config = folder / "config.yaml"
        config.write_text(yaml.safe_dump(CONFIG))
        for r in range(rounds):
            order = VARIANTS[r % 3 :] + VARIANTS[: r % 3]
            for label, key, workers in order:
                out = folder / f"r{r}-{key}-{workers}"
                result = build(data[key], out, workers, config)
                runs.append({"round": r, "input": label, "workers": workers} | result)
                print(json.dumps(runs[-1]), flush=True)
            outs = {(key, workers): folder / f"r{r}-{key}-{workers}" for _, key, workers in VARIANTS}
            if r == 0:
                equal = {
                    "one_vs_many_files": same_outputs(outs[("one", 2)], outs[("many", 2)]),
                    "one_file_1_vs_2_workers": same_outputs(outs[("one", 1)], outs[("one", 2)]),
                }
                print(json.dumps(equal), flush=True)
            for path in outs.values():
                subprocess.run(["rm", "-rf", str(path)], check=True)
            results = {
                "rounds": r + 1,
                "machine_cores": os.cpu_count(),
                "runs": runs,
                "same_outputs": equal,
                "summary": summarise(runs, r + 1),
            }
            write_results("shard_plan", results, markdown(results))
    return results


def summarise(runs: list[dict], rounds: int) -> dict:
    """Per stage, the median over rounds of the within-round ratios."""
    by = {(r["round"], r["input"], r["workers"]): r for r in runs}
    summary = {}
    for stage in STAGES:
        speed_wall, speed_shard, many_vs_one = [], [], []
        for r in range(rounds):
            one1, one2, many2 = (by[(r, "one file", 1)], by[(r, "one file", 2)], by[(r, "many files", 2)])
            s1, s2, m2 = (x["stages"][stage] for x in (one1, one2, many2))
            speed_wall.append(s1["wall_s"] / s2["wall_s"])
            speed_shard.append(s1["shard_steps_s"] / max(s2["shard_steps_s"], 1e-9))
            many_vs_one.append(m2["wall_s"] / s2["wall_s"])
        summary[stage] = {
            "speedup_wall": round(statistics.median(speed_wall), 2),
            "speedup_shard_steps": round(statistics.median(speed_shard), 2),
            "speedup_wall_by_round": [round(x, 2) for x in speed_wall],
            "many_over_one_wall": round(statistics.median(many_vs_one), 2),
            "many_over_one_by_round": [round(x, 2) for x in many_vs_one],
        }
    return summary


def markdown(results: dict) -> str:
    runs, summary = results["runs"], results["summary"]
    lines = [
        "# Shard plan: one file vs many, 1 vs 2 workers (bench/shard_plan.py)",
        "",
        "Issue 25's corpus: 449 real web pages then 527 declarations (976 documents, 8.8 MB of text) as one",
        "JSONL file and as 90 JSONL files; `corpus build --stages quality,dedup,privacy,tokenizer` (vocab 4,096),",
        "default `shards` settings.",
        f"{results['rounds']} interleaved rounds on a 2-core machine; load average (1 min) beside each build.",
        "Ratios are within a round, median over rounds.",
        "",
        "## Per stage",
        "",
        "| stage | 2 vs 1 worker, stage wall | 2 vs 1 worker, per-shard part | by round (wall) "
        "| many files / one file (wall) | by round |",
        "|---|---|---|---|---|---|",
    ]
    for stage, s in summary.items():
        lines.append(
            f"| {stage} | {s['speedup_wall']}x | {s['speedup_shard_steps']}x | {s['speedup_wall_by_round']} "
            f"| {s['many_over_one_wall']} | {s['many_over_one_by_round']} |"
        )
    lines += [
        "",
        "## Builds",
        "",
        "| round | input | workers | shards | load before/after | "
        + " | ".join(f"{s} wall (build steps) s" for s in STAGES)
        + " | build s |",
        "|---|---|---|---|---|" + "---|" * len(STAGES) + "---|",
    ]
    for run in runs:
        cells = [f"{run['stages'][s]['wall_s']:.1f} ({run['stages'][s]['build_steps_s']:.1f})" for s in STAGES]
        lines.append(
            f"| {run['round']} | {run['input']} | {run['workers']} | {run['shards']} | "
            f"{run['load_before']}/{run['load_after']} | " + " | ".join(cells) + f" | {run['total_s']} |"
        )
    equal = results["same_outputs"]
    lines += [
        "",
        "## Same outputs",
        "",
        "Documents kept and removed by each stage, byte-identical after sorting by id; token counts equal.",
        f"One file vs many files (2 workers, round 0), and one file on 1 vs 2 workers: {equal}",
        "",
        "## Reading",
        "",
        "The per-shard part is the stage's wall time less its build-wide steps (dedup's clustering,",
        "the tokenizer's training and mixture, quality's reference model). Privacy, most of the build's",
        "time, is where the second worker gains most. What keeps quality, dedup and the tokenizer from",
        "halving on 8.8 MB, whatever the plan:",
        "",
        "- Each worker starts its own process on the build's first job, and on its first shard of each",
        "  stage imports the stage's libraries and loads its models: ~0.6-0.9 s per worker and stage here",
        "  (datasketch and scipy in dedup; fastText, the perplexity tables and lingua's trigram models in",
        "  quality; ~2.7 s of presidio and spaCy in privacy), against per-shard work of ~5 s in quality,",
        "  ~1.5 s in dedup and ~1 s of encoding in all. The workers pay it at the same time, so a second",
        "  worker does not shrink it.",
        "- The flow's own process (the embedded Prefect API, the tasks that hand jobs to the pool) runs on",
        "  the same two cores: with one worker it has the idle core, with two it takes from the workers.",
        "- In privacy, one English page of 97,000 characters is ~4 s of NER that no plan can split.",
        "",
        "With the load average above the machine's 2 cores, a round's ratios move with whatever else",
        "runs: read the rounds, not one figure.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    with skipping("shard_plan"):
        print(markdown(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)))
