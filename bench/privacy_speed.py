"""Privacy stage vs naive presidio on 1,000 real paragraph-sized English documents.

Side by side in one run, same model (en_core_web_sm), same entities, same threshold, no
allow-list: naive `AnalyzerEngine.analyze` per document against the stage's `detect` (spaCy
`nlp.pipe` with the NER pipe alone, the full pipeline only where context words are read).
Reports docs/s per core (CPU time of this process), the ratio, whether the detections
(type, start, end) are equal document by document, and wall-clock docs/s of the stage over
all cores (one process per core, each given an equal slice).
Needs ../shared/data/corpora/{cc_docs.jsonl,tinyshakespeare.txt}; skips without them.
Run: `.venv/bin/python -m bench.privacy_speed`. Results go to
bench/results/privacy_speed.{json,md}.
"""

from __future__ import annotations

import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor

from bench import SHARED_DATA, needs_data, skipping, write_results

SHARED = SHARED_DATA / "corpora"
N_DOCS, DOC_CHARS = 1000, 900


def paragraph_docs(n: int = N_DOCS, size: int = DOC_CHARS) -> list[str]:
    """Consecutive paragraphs joined up to ~`size` characters: Common Crawl pages (dolma's test
    documents) first, then Tiny Shakespeare speeches (train part)."""
    docs: list[str] = []
    cur: list[str] = []
    paragraphs = [p for line in (SHARED / "cc_docs.jsonl").open() for p in json.loads(line)["text"].split("\n")]
    paragraphs += (SHARED / "tinyshakespeare.txt").read_text()[:1003854].split("\n\n")
    for p in paragraphs:
        if p.strip():
            cur.append(p.strip())
        if sum(map(len, cur)) >= size:
            docs.append("\n\n".join(cur))
            cur = []
        if len(docs) == n:
            break
    return docs


def _config():
    from pipeline.config import PrivacyConfig

    return PrivacyConfig(allow_list=[])  # presidio's analyze has no allow-list by default


def _spans(results) -> list[tuple]:
    return sorted((r.entity_type, r.start, r.end) for r in results)


def naive(texts: list[str]) -> list[list[tuple]]:
    from pipeline.privacy.engine import ner_analyzer

    cfg = _config()
    analyzer = ner_analyzer()
    return [_spans(analyzer.analyze(t, "en", entities=cfg.entities, score_threshold=cfg.min_score)) for t in texts]


def stage(texts: list[str]) -> list[list[tuple]]:
    from pipeline.privacy.scrubber import detect

    return [_spans(r) for r in detect(texts, ["en"] * len(texts), _config())]


def _cpu_timed(fn, texts):
    start = time.process_time()
    out = fn(texts)
    return out, time.process_time() - start


def main() -> dict:
    needs_data(SHARED / "cc_docs.jsonl", SHARED / "tinyshakespeare.txt")
    texts = paragraph_docs()
    naive(texts[:5]), stage(texts[:5])  # load spaCy and presidio outside the timing
    load_before = os.getloadavg()
    naive_out, naive_cpu = _cpu_timed(naive, texts)
    stage_out, stage_cpu = _cpu_timed(stage, texts)
    differing = [i for i, (a, b) in enumerate(zip(naive_out, stage_out)) if a != b]

    workers = os.cpu_count() or 1
    slices = [texts[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(stage, [s[:5] for s in slices]))  # warm every worker
        start = time.perf_counter()
        list(pool.map(stage, slices))
        wall = time.perf_counter() - start

    n = len(texts)
    results = {
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "docs": n,
        "mean_chars": round(sum(map(len, texts)) / n),
        "entities": _config().entities,
        "naive_docs_per_cpu_s": round(n / naive_cpu, 1),
        "stage_docs_per_cpu_s": round(n / stage_cpu, 1),
        "speedup_per_core": round(naive_cpu / stage_cpu, 2),
        "stage_docs_per_wall_s_all_cores": round(n / wall, 1),
        "workers": workers,
        "detections": sum(map(len, naive_out)),
        "documents_with_different_detections": len(differing),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    write_results(
        "privacy_speed",
        results,
        "| | docs/s per core (CPU) | detections |\n|---|---|---|\n"
        f"| naive `AnalyzerEngine.analyze` per doc | {results['naive_docs_per_cpu_s']} | {results['detections']} |\n"
        f"| privacy stage `detect` | {results['stage_docs_per_cpu_s']} | {sum(map(len, stage_out))} "
        f"({len(differing)} documents differ) |\n\n"
        f"{n} English documents of ~{results['mean_chars']} characters; speed-up per core "
        f"{results['speedup_per_core']}x; stage over {workers} processes: "
        f"{results['stage_docs_per_wall_s_all_cores']} docs/s wall; load average {results['loadavg_before']}.\n",
    )
    return results


if __name__ == "__main__":
    with skipping("privacy_speed"):
        print(json.dumps(main(), indent=2))
