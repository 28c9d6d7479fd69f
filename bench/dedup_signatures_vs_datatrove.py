"""MinHash signature throughput, ours vs datatrove's `MinhashDedupSignature`, on the same pages.

Docs/s per core from CPU time (`time.process_time`), normalisation and shingling included, in one
run, alternating the two sides (best of `ROUNDS` each), because this machine is shared and noisy.
- ours: `pipeline.dedup.minhash.signatures` at the default config (NFKC/case/whitespace +
  diacritics, numpy character 7-gram hashes, datasketch's 128 affine32 permutations applied in
  numpy; plus exact key, shingle count and line hashes, i.e. the whole per-shard dedup step).
- datatrove 0.10.1: `MinhashDedupSignature(config=MinhashConfig())` (default: 5-grams, 14 x 8 =
  112 64-bit hashes, xxhash; its English word tokenizer and `simplify_text`), stage 1 including
  writing and sorting its bucket files, run in its own venv as a subprocess.

Pages: (1) the 30 real Common Crawl documents (../shared/data/corpora/cc_docs.jsonl, ~7.1k
characters), repeated 20 times; (2) 600 pages of ~7.5k characters joined from consecutive
sample_data/ documents (multilingual real text).

Needs ../shared/data/corpora/cc_docs.jsonl and datatrove's venv (`make bench-envs`, never a
product dependency); skips without either.
Run: .venv/bin/python -m bench.dedup_signatures_vs_datatrove (about a minute)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from bench import DATATROVE_PYTHON, REPO, SHARED_DATA, needs_data, needs_datatrove, skipping, write_results

CC_DOCS = SHARED_DATA / "corpora" / "cc_docs.jsonl"
ROUNDS = 3


def datatrove_worker(pages_path: str) -> None:
    """Runs inside datatrove's venv: prints the CPU seconds of stage 1 over the pages."""
    from datatrove.data import Document
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature

    with open(pages_path, encoding="utf-8") as f:
        texts = [json.loads(line) for line in f]
    best = float("inf")
    for _ in range(ROUNDS):
        with tempfile.TemporaryDirectory() as out:
            step = MinhashDedupSignature(output_folder=out, config=MinhashConfig())
            docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
            start = time.process_time()
            step.run(iter(docs), rank=0, world_size=1)
            best = min(best, time.process_time() - start)
    print(json.dumps({"cpu_seconds": best}))


def pages() -> dict[str, list[str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cc = [json.loads(line)["text"] for line in CC_DOCS.open(encoding="utf-8")]
    table = pa.concat_tables(
        pq.read_table(p, columns=["text"]) for p in sorted((REPO / "sample_data").rglob("part-*.parquet"))
    )
    joined, current = [], []
    for text in table.column("text").to_pylist():
        current.append(text)
        if sum(map(len, current)) >= 7500:
            joined.append("\n\n".join(current))
            current = []
        if len(joined) == 600:
            break
    return {"cc_docs_x20": cc * 20, "sample_data_pages_7.5k": joined}


def ours(texts: list[str], cfg=None) -> float:
    """CPU seconds of `signatures` over the texts, at cfg (default: DedupConfig())."""
    import pyarrow as pa

    from pipeline.config import DedupConfig
    from pipeline.dedup.methods import signatures

    cfg = cfg or DedupConfig()
    table = pa.table({"id": [str(i) for i in range(len(texts))], "text": texts})
    signatures(table.slice(0, 5), cfg)  # build the code point tables outside the timing
    start = time.process_time()
    signatures(table, cfg)
    return time.process_time() - start


def main() -> dict:
    needs_data(CC_DOCS)
    needs_datatrove()
    results: dict = {"loadavg_start": os.getloadavg(), "rounds": ROUNDS, "sets": {}}
    for name, texts in pages().items():
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
            f.writelines(json.dumps(t) + "\n" for t in texts)
        ours_best = float("inf")
        for _ in range(ROUNDS):
            ours_best = min(ours_best, ours(texts))
        out = subprocess.run(
            [
                str(DATATROVE_PYTHON),
                "-c",
                f"import sys; sys.path.insert(0, {str(REPO)!r}); "
                f"from bench.dedup_signatures_vs_datatrove import datatrove_worker; datatrove_worker({f.name!r})",
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": ""},
        )
        theirs = json.loads(out.stdout.strip().splitlines()[-1])["cpu_seconds"]
        for _ in range(ROUNDS):  # ours again after datatrove, so both saw the same load
            ours_best = min(ours_best, ours(texts))
        os.unlink(f.name)
        results["sets"][name] = {
            "docs": len(texts),
            "mean_chars": round(sum(map(len, texts)) / len(texts)),
            "ours_docs_per_cpu_s": round(len(texts) / ours_best, 1),
            "datatrove_docs_per_cpu_s": round(len(texts) / theirs, 1),
            "ratio": round(theirs / ours_best, 2),
        }
    results["loadavg_end"] = os.getloadavg()
    lines = [
        "# MinHash signatures: ours vs datatrove (`.venv/bin/python -m bench.dedup_signatures_vs_datatrove`)",
        "",
        "| pages | docs | mean chars | ours docs/CPU-s | datatrove docs/CPU-s | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in results["sets"].items():
        lines.append(
            f"| {name} | {row['docs']} | {row['mean_chars']} | {row['ours_docs_per_cpu_s']} | "
            f"{row['datatrove_docs_per_cpu_s']} | {row['ratio']} |"
        )
    lines += ["", f"loadavg {results['loadavg_start']} -> {results['loadavg_end']} (2 cores, shared)", ""]
    write_results("dedup_signatures_vs_datatrove", results, "\n".join(lines))
    return results


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--datatrove-worker":
        datatrove_worker(sys.argv[2])
    else:
        with skipping("dedup_signatures_vs_datatrove"):
            print(json.dumps(main(), indent=2))
