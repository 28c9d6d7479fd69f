"""Quality rules side by side with datatrove: same documents, same machine, one run.

    .venv/bin/python -m bench.quality_vs_datatrove            # ~2 min on 2 busy cores
    .venv/bin/python -m bench.quality_vs_datatrove --no-workers   # skip the 1-vs-2-worker builds

Ours: Gopher quality + Gopher repetition + C4 + FineWeb (pipeline/quality/signals.py, every
signal computed for every document). Theirs: datatrove's GopherQualityFilter,
GopherRepetitionFilter, C4QualityFilter and FineWebQualityFilter chained with their defaults
(bench/_datatrove_chain.py, run by the datatrove venv in a subprocess on the same JSONL file).
Documents: the English rows of sample_data/ (language per ground_truth.json, plus the Common
Crawl documents): Tiny Shakespeare speeches, Common Crawl pages, lingua sentences, UDHR.

Per-core speed is CPU time (`time.process_time`) of the rule calls alone, models loaded first
and after one untimed warm-up pass over the documents on each side (spaCy's vocabulary caches
each word once, as in a long-running worker); three rounds interleave datatrove's chain, ours
and ours with `alpha_words_tokens: spacy`, and each keeps its fastest round.
Agreement is keep/drop per document, for the whole chain and for each rule family alone.
Also: `corpus build --stages quality` on all of sample_data/ with 1 and 2 workers (wall time).
Needs datatrove's venv (`make bench-envs`); skips without it. The documents are in the clone.
Results: bench/results/quality_vs_datatrove.{json,md}.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench import DATATROVE_PYTHON, REPO, RESULTS_DIR, needs_datatrove, skipping, write_results
from pipeline.config import QualityConfig
from pipeline.stage import ShardContext

SAMPLE = REPO / "sample_data"
FAMILIES = ("gopher_quality", "gopher_repetition", "c4", "fineweb")
# Our config section behind each datatrove filter.
SPEED_ROUNDS = 3
SECTION = {"gopher_quality": "gopher", "gopher_repetition": "repetition", "c4": "c4", "fineweb": "fineweb"}


def english_documents() -> list[dict]:
    """English rows of sample_data (ground-truth language `en`, or a Common Crawl page)."""
    truth = json.loads((SAMPLE / "ground_truth.json").read_text(encoding="utf-8"))
    table = pa.concat_tables(pq.read_table(p) for p in sorted(SAMPLE.rglob("part-*.parquet")))
    return [
        {"id": row["id"], "source": row["source"], "text": row["text"]}
        for row in table.to_pylist()
        if row["source"] == "cc_docs" or truth["languages"].get(row["id"]) == "en"
    ]


def only(family: str | None, no_alpha: bool = False, alpha_tokens: str = "whitespace") -> QualityConfig:
    """Our config with every rule family on (None) or just one; optionally no alpha-words rule,
    or that rule over spaCy tokens as datatrove counts them."""
    cfg = QualityConfig(c4={"enabled": True}, fineweb={"enabled": True})  # off by default
    cfg.gopher.alpha_words_tokens = alpha_tokens
    if no_alpha:
        cfg.gopher.min_alpha_words_ratio = 0.0
    if family:
        for name in SECTION.values():
            getattr(cfg, name).enabled = name == SECTION[family]
    return cfg


def run_ours(
    docs: list[dict], family: str | None, no_alpha: bool = False, alpha_tokens: str = "whitespace"
) -> tuple[dict, dict]:
    from pipeline.quality import fineweb
    from pipeline.quality.signals import judge

    fineweb.terminal_punctuation()  # built once per process, outside the timing
    cfg = only(family, no_alpha, alpha_tokens)
    for doc in docs:  # a warm-up pass, untimed, as datatrove's side makes (spaCy's vocabulary)
        judge(doc["text"], "en", cfg)
    out, cpu_by_doc = {}, {}
    for doc in docs:
        start = time.process_time()
        j = judge(doc["text"], "en", cfg)
        cpu_by_doc[doc["id"]] = time.process_time() - start
        out[doc["id"]] = {"kept": j.reason is None, "reason": j.reason, "text": j.text if j.reason is None else None}
    return out, cpu_by_doc


def run_datatrove(path: Path, family: str | None, tmp: Path, no_alpha: bool = False) -> tuple[dict, dict, dict]:
    dst = tmp / f"datatrove-{family or 'chain'}.jsonl"
    cmd = [
        str(DATATROVE_PYTHON),
        str(REPO / "bench" / "_datatrove_chain.py"),
        str(path),
        str(dst),
        family or "chain",
    ] + (["no_alpha"] if no_alpha else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"error: datatrove run failed ({' '.join(cmd)}):\n{proc.stderr[-2000:]}")
    timing = json.loads(proc.stdout.strip().splitlines()[-1])
    out, cpu_by_doc = {}, {}
    with dst.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            out[row["id"]] = row
            cpu_by_doc[row["id"]] = row["cpu_s"]
    return out, cpu_by_doc, timing


def agreement(ours: dict, theirs: dict, docs: list[dict]) -> dict:
    source = {d["id"]: d["source"] for d in docs}
    differ = [i for i in ours if ours[i]["kept"] != theirs[i]["kept"]]
    both_kept = [i for i in ours if ours[i]["kept"] and theirs[i]["kept"]]
    same_text = sum(ours[i]["text"] == theirs[i]["text"] for i in both_kept)
    return {
        "docs": len(ours),
        "agree": len(ours) - len(differ),
        "agreement": round(1 - len(differ) / len(ours), 4),
        "kept_ours": sum(r["kept"] for r in ours.values()),
        "kept_datatrove": sum(r["kept"] for r in theirs.values()),
        "both_kept_same_text": f"{same_text}/{len(both_kept)}",
        "disagreements_by_reason": dict(
            Counter(f"ours={ours[i]['reason']} datatrove={theirs[i]['reason']}" for i in differ).most_common()
        ),
        "disagreements": [
            {"id": i, "source": source[i], "ours": ours[i]["reason"], "datatrove": theirs[i]["reason"]} for i in differ
        ],
    }


def speed(docs: list[dict], cpu_ours: dict, cpu_theirs: dict) -> dict:
    def rate(ids: list[str], cpu: dict) -> dict:
        seconds = sum(cpu[i] for i in ids)
        mb = sum(len(text_of[i].encode()) for i in ids) / 1e6
        return {
            "cpu_s": round(seconds, 3),
            "docs_per_cpu_s": round(len(ids) / seconds, 1),
            "mb_per_cpu_s": round(mb / seconds, 3),
        }

    text_of = {d["id"]: d["text"] for d in docs}
    groups = {"all": [d["id"] for d in docs]}
    for d in docs:
        groups.setdefault(d["source"], []).append(d["id"])
    table = {}
    for name, ids in groups.items():
        ours, theirs = rate(ids, cpu_ours), rate(ids, cpu_theirs)
        table[name] = {
            "docs": len(ids),
            "mb": round(sum(len(text_of[i].encode()) for i in ids) / 1e6, 3),
            "ours": ours,
            "datatrove": theirs,
            "ratio": round(theirs["cpu_s"] / ours["cpu_s"], 2),
        }
    return table


def stage_speed(docs: list[dict]) -> dict:
    """The whole stage (run_shard: language ID, keywords, all rules, Arrow columns) on one table."""
    from pipeline.quality.langid import Fallback, detect_languages
    from pipeline.quality.stage import run_shard

    table = pa.table({"id": [d["id"] for d in docs], "text": [d["text"] for d in docs]})
    cfg = only(None)
    ctx = ShardContext(cfg, stage="quality")
    # One untimed pass first: lingua loads each language's models on first use (~20 s here),
    # a once-per-process cost that the per-document figure should not carry.
    run_shard(table, ctx)
    start = time.process_time()
    run_shard(table, ctx)
    seconds = time.process_time() - start
    start = time.process_time()
    detect_languages(table.column("text").to_pylist(), Fallback.from_config(cfg.lingua))
    langid_seconds = time.process_time() - start
    mb = sum(len(d["text"].encode()) for d in docs) / 1e6
    return {
        "cpu_s": round(seconds, 3),
        "docs_per_cpu_s": round(len(docs) / seconds, 1),
        "mb_per_cpu_s": round(mb / seconds, 3),
        "langid_cpu_s": round(langid_seconds, 3),
    }


def workers_speed(tmp: Path) -> dict:
    """`corpus build --stages quality` on all of sample_data/ with 1 and 2 worker processes."""
    out = {}
    for workers in (1, 2):
        build = tmp / f"build-w{workers}"
        cmd = [
            str(REPO / ".venv" / "bin" / "corpus"),
            "build",
            "--input",
            str(SAMPLE),
            "--out",
            str(build),
            "--stages",
            "quality",
            "--workers",
            str(workers),
            "--set",
            "quality.c4.enabled=true",
            "--set",
            "quality.fineweb.enabled=true",
        ]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"error: {' '.join(cmd)} failed:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
        manifest = json.loads((build / "manifest.json").read_text())
        stage = manifest["stages"]["quality"]
        out[f"workers_{workers}"] = {
            "wall_s": round(wall, 2),
            "stage_wall_s": stage.get("seconds"),
            "loadavg": os.getloadavg(),
        }
    return out


# Why each kind of disagreement happens (by datatrove's reason), read from datatrove 0.10.1's code.
WHY = {
    "gopher_below_alpha_threshold": "datatrove's ratio counts spaCy tokens, so every comma and full stop is a "
    "'word' without letters; the paper's words are whitespace-separated (ours)",
    "gopher_enough_stop_words": "datatrove matches stop words case-sensitively, so an upper- or "
    "title-cased text ('THE', 'The') has none; ours ignores case",
    "duplicated_5_n_grams": "datatrove's n-grams are over spaCy tokens, punctuation included, so the "
    "repeated-5-gram character share differs near the 0.15 threshold",
}


def markdown(results: dict) -> str:
    lines = [
        "# Quality rules vs datatrove",
        "",
        f"{results['corpus']}. Machine: {results['machine']}, load average {results['loadavg_start']} "
        f"-> {results['loadavg_end']}. datatrove {results['datatrove_version']}.",
        "",
        f"## Speed (CPU seconds of the rule calls, fastest of {results['speed_rounds']} interleaved rounds per side; "
        "ratio = datatrove CPU / ours)",
        "",
        "| documents | docs | MB | ours MB/cpu-s | datatrove MB/cpu-s | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in results["speed"].items():
        lines.append(
            f"| {name} | {row['docs']} | {row['mb']} | {row['ours']['mb_per_cpu_s']} | "
            f"{row['datatrove']['mb_per_cpu_s']} | **{row['ratio']}x** |"
        )
    st = results["stage"]
    lines += [
        "",
        f"Whole quality stage (`run_shard`: language ID + keyword filter + all rules + Arrow "
        f"columns) on the same documents: {st['mb_per_cpu_s']} MB/cpu-s "
        f"({round(results['speed']['all']['datatrove']['cpu_s'] / st['cpu_s'], 2)}x datatrove's rule chain, "
        f"which has no language ID); language ID alone (fastText + lingua) takes {st['langid_cpu_s']} "
        f"of its {st['cpu_s']} CPU seconds. Models loaded before timing.",
        "",
    ]
    lines += [
        "## Keep/drop agreement",
        "",
        "| rules | docs | agree | kept ours | kept datatrove | kept text identical |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in results["agreement"].items():
        lines.append(
            f"| {name} | {row['docs']} | **{row['agreement']:.2%}** | {row['kept_ours']} | "
            f"{row['kept_datatrove']} | {row['both_kept_same_text']} |"
        )
    sp = results["speed_alpha_words_over_spacy_tokens"]
    lines += [
        "",
        f"`chain_alpha_words_over_spacy_tokens`: our chain with `alpha_words_tokens: spacy` (the "
        f"alphabetic-words rule over spaCy's tokens, as datatrove counts words), against datatrove's "
        f"default chain; {sp['ours']['mb_per_cpu_s']} MB/cpu-s, {sp['ratio']}x datatrove's throughput.",
    ]
    for name in ("chain", "chain_without_alpha_words_rule", "chain_alpha_words_over_spacy_tokens"):
        lines += ["", f"Disagreements ({name}) by reason:", ""]
        for key, n in results["agreement"][name]["disagreements_by_reason"].items():
            why = WHY.get(key.rsplit(":", 1)[-1], "not analysed")
            lines.append(f"- {n} x {key}: {why}")
    lines += [
        "",
        "Each disagreement without the alphabetic-words rule:",
        "",
        "| id | source | ours | datatrove |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {d['id']} | {d['source']} | {d['ours']} | {d['datatrove']} |"
        for d in results["agreement"]["chain_without_alpha_words_rule"]["disagreements"]
    ]
    if "workers" in results:
        lines += [
            "",
            "## Workers (`corpus build --input sample_data --stages quality`, C4 and FineWeb on, "
            "wall seconds; each worker process loads fastText and lingua itself)",
            "",
            "| workers | command wall s | quality stage wall s |",
            "|---|---|---|",
        ]
        for name, row in results["workers"].items():
            lines.append(f"| {name.split('_')[1]} | {row['wall_s']} | {row['stage_wall_s']} |")
    return "\n".join(lines) + "\n"


def main(with_workers: bool = True) -> dict:
    needs_datatrove()
    docs = english_documents()
    results = {
        "corpus": f"{len(docs)} English documents of sample_data/ ({dict(Counter(d['source'] for d in docs))})",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "english.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for doc in docs:
                f.write(json.dumps({"id": doc["id"], "text": doc["text"]}) + "\n")

        # Speed: rounds interleaving the three chains, each side's fastest round kept (this
        # shared machine's CPU time per unit of work varies by tens of percent from minute to minute).
        rounds = []
        for _ in range(SPEED_ROUNDS):
            theirs, cpu_theirs, timing = run_datatrove(path, None, tmp)
            ours, cpu_ours = run_ours(docs, None)
            ours_sp, cpu_sp = run_ours(docs, None, alpha_tokens="spacy")
            rounds.append((cpu_theirs, cpu_ours, cpu_sp))
        cpu_theirs, cpu_ours, cpu_sp = (min((r[i] for r in rounds), key=lambda c: sum(c.values())) for i in range(3))
        results["datatrove_version"] = timing["version"]
        results["speed_rounds"] = SPEED_ROUNDS
        results["speed"] = speed(docs, cpu_ours, cpu_theirs)
        results["stage"] = stage_speed(docs)
        results["agreement"] = {"chain": agreement(ours, theirs, docs)}
        # The one rule defined differently: datatrove's words are spaCy tokens, so every comma or
        # full stop is a "word" without letters; ours are whitespace tokens (see docs/quality.md).
        ours_na, _ = run_ours(docs, None, no_alpha=True)
        theirs_na, _, _ = run_datatrove(path, None, tmp, no_alpha=True)
        results["agreement"]["chain_without_alpha_words_rule"] = agreement(ours_na, theirs_na, docs)
        # The same rule with datatrove's words: `--set quality.gopher.alpha_words_tokens=spacy`.
        results["agreement"]["chain_alpha_words_over_spacy_tokens"] = agreement(ours_sp, theirs, docs)
        results["speed_alpha_words_over_spacy_tokens"] = speed(docs, cpu_sp, cpu_theirs)["all"]
        for family in FAMILIES:
            ours_f, _ = run_ours(docs, family)
            theirs_f, _, _ = run_datatrove(path, family, tmp)
            results["agreement"][family] = agreement(ours_f, theirs_f, docs)
        if with_workers:
            results["workers"] = workers_speed(tmp)
    results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]

    write_results("quality_vs_datatrove", results, markdown(results))
    return results


if __name__ == "__main__":
    with skipping("quality_vs_datatrove"):
        main(with_workers="--no-workers" not in sys.argv)
        print((RESULTS_DIR / "quality_vs_datatrove.md").read_text())
