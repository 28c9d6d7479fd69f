"""Language-ID accuracy and cost: fastText lid.176 alone vs fastText + lingua fallback.

Accuracy on every row of ../shared/data/langid/lingua_dev.jsonl (lingua-py's test data) whose
language both models know (67 of 75; lingua's `nb` is fastText's `no`), per kind (sentence /
word_pair / single_word): `accuracy` counts `und` as wrong, `precision` is over the rows that
got a label, `und` is the share labelled undetermined. Cost: CPU seconds per text on the same
rows and on sample_data/ documents, the share of texts that needed lingua, and lingua's load
time and peak memory (each measured in a fresh process). Variants: fastText alone, the default
fallback, lingua's low-accuracy mode, lingua over the keep-list only, and the default with
`lingua.skip_when_removed_anyway` (the stage's keep-list and minimum score; skipped only on text of
`skip_from_chars`, 300, characters or more where fastText's top probability is `skip_from_score`,
0.6, or more), for which the share of texts whose keep/remove decision is the default's is given
too. Long text: accuracy on the UDHR paragraphs of 300+ characters in
../shared/data/langid/udhr_paragraphs_dev.jsonl, where the skip can change a label.

Needs ../shared/data/langid/lingua_dev.jsonl; skips without it.
Run: .venv/bin/python -m bench.langid_accuracy  ->  bench/results/langid_accuracy.{json,md}
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import replace

import pyarrow.parquet as pq

from bench import REPO, RESULTS_DIR, SHARED_DATA, needs_data, skipping, write_results
from pipeline.config import QualityConfig
from pipeline.quality.langid import LINGUA_LANGUAGES, Fallback, detect_languages

DATA = SHARED_DATA / "langid" / "lingua_dev.jsonl"
UDHR = SHARED_DATA / "langid" / "udhr_paragraphs_dev.jsonl"
KINDS = ("sentence", "word_pair", "single_word")
LONG_CHARS = 300  # UDHR paragraphs this long or longer: where lingua.skip_from_chars lets fastText label alone

# Peak memory from /proc (VmHWM): ru_maxrss of a child starts at its parent's peak on Linux.
_LOAD_PROBE = """
import re, sys, time
from pipeline.quality.langid import Fallback, _get_lingua, LINGUA_LANGUAGES
def peak_kb():
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
base = peak_kb()
langs = tuple(sys.argv[2].split(",")) if sys.argv[2] else LINGUA_LANGUAGES
start = time.process_time()
_get_lingua(langs, sys.argv[1] == "low").compute_language_confidence_values("warm up every model")
print(time.process_time() - start, (peak_kb() - base) / 1024)
"""


def load_cost(low_accuracy: bool, languages: tuple[str, ...]) -> dict:
    """lingua's load: CPU seconds and peak-memory growth, in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_PROBE, "low" if low_accuracy else "high", ",".join(languages)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {"load_cpu_s": round(float(out[0]), 2), "load_mem_mb": round(float(out[1]))}


def score(rows: list[dict], labels: list[str]) -> dict:
    out = {}
    for kind in KINDS:
        pairs = [(r["gold"], label) for r, label in zip(rows, labels) if r["kind"] == kind]
        right = sum(g == p for g, p in pairs)
        und = sum(p == "und" for _, p in pairs)
        out[kind] = {
            "n": len(pairs),
            "accuracy": round(right / len(pairs), 4),
            "precision": round(right / max(len(pairs) - und, 1), 4),
            "und": round(und / len(pairs), 4),
        }
    return out


def long_paragraphs() -> list[dict]:
    """UDHR paragraphs of LONG_CHARS+ characters in the languages both models know, with `gold`."""
    with UDHR.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    for r in rows:
        r["gold"] = "no" if r["bcp47"] == "nb" else r["bcp47"]
    return [r for r in rows if r["gold"] in LINGUA_LANGUAGES and len(" ".join(r["text"].split())) >= LONG_CHARS]


def run_variant(name: str, fb: Fallback, rows: list[dict], docs: list[str], keep: set[str], long: list[dict]) -> dict:
    texts = [r["text"] for r in rows]
    if fb.enabled:
        detect_languages(["load lingua outside the timing"], replace(fb, below_score=1.01))
    start = time.process_time()
    labels, scores = detect_languages(texts, fb)
    seconds = time.process_time() - start
    unsure = (
        sum(
            1
            for t in texts
            if detect_languages([t], Fallback(enabled=False))[1][0] < fb.below_score
            or len(" ".join(t.split())) < fb.short_chars
        )
        if fb.enabled
        else 0
    )
    start = time.process_time()
    detect_languages(docs, fb)
    doc_seconds = time.process_time() - start
    doc_unsure = (
        sum(
            1
            for d in docs
            if detect_languages([d], Fallback(enabled=False))[1][0] < fb.below_score
            or len(" ".join(d.split())) < fb.short_chars
        )
        if fb.enabled
        else 0
    )
    kept_rows = [(r, label) for r, label in zip(rows, labels) if r["gold"] in keep]
    result = {
        "variant": name,
        "all_languages": score(rows, labels),
        "keep_languages": score([r for r, _ in kept_rows], [label for _, label in kept_rows]),
        "long_paragraph_accuracy": round(
            sum(r["gold"] == label for r, label in zip(long, detect_languages([r["text"] for r in long], fb)[0]))
            / len(long),
            4,
        ),
        "lingua_dev_texts_per_cpu_s": round(len(texts) / seconds),
        "lingua_dev_share_to_lingua": round(unsure / len(texts), 3),
        "sample_docs_per_cpu_s": round(len(docs) / doc_seconds),
        "sample_share_to_lingua": round(doc_unsure / len(docs), 4),
        "_answers": list(zip(labels, scores)),  # for the keep decisions; not written out
    }
    if fb.enabled:
        result |= load_cost(fb.low_accuracy, fb.languages)
    return result


def markdown(results: dict) -> str:
    lines = [
        f"# Language-ID accuracy (lingua_dev.jsonl, {results['rows']} rows in 67 languages)",
        "",
        f"load average {results['loadavg']}; CPU seconds, one process.",
        "",
        "| variant | sentence | word pair | single word | UDHR paragraph 300+ chars | und (s/wp/w) | texts/s (lingua_dev) | docs/s (sample_data) | to lingua (sample) | lingua load | keep decisions as default |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in results["variants"]:
        a = v["all_languages"]
        load = f"{v['load_cpu_s']} s, {v['load_mem_mb']} MB" if "load_cpu_s" in v else "-"
        lines.append(
            f"| {v['variant']} | {a['sentence']['accuracy']:.2%} | {a['word_pair']['accuracy']:.2%} | "
            f"{a['single_word']['accuracy']:.2%} | {v['long_paragraph_accuracy']:.2%} | {a['sentence']['und']:.1%} / {a['word_pair']['und']:.1%} / "
            f"{a['single_word']['und']:.1%} | {v['lingua_dev_texts_per_cpu_s']} | {v['sample_docs_per_cpu_s']} | "
            f"{v['sample_share_to_lingua']:.1%} | {load} | {v['keep_decisions_as_default']:.2%} |"
        )
    lines += [
        "",
        f"Accuracy counts `und` as wrong. UDHR paragraphs: the {results['long_paragraphs']} paragraphs of "
        f"{LONG_CHARS}+ characters in ../shared/data/langid/udhr_paragraphs_dev.jsonl whose language both "
        "models know (long text, where the skip applies). Keep decisions: whether the quality stage would keep the text "
        "(label in the keep-list, score >= min_lang_score) as under the default variant. "
        "Over the default keep-list languages only "
        f"({', '.join(results['keep_languages'])}):",
        "",
        "| variant | sentence | word pair | single word |",
        "|---|---|---|---|",
    ]
    for v in results["variants"]:
        k = v["keep_languages"]
        lines.append(
            f"| {v['variant']} | {k['sentence']['accuracy']:.2%} | {k['word_pair']['accuracy']:.2%} | "
            f"{k['single_word']['accuracy']:.2%} |"
        )
    return "\n".join(lines) + "\n"


def main() -> dict:
    needs_data(DATA)
    with DATA.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    for r in rows:
        r["gold"] = "no" if r["lang"] == "nb" else r["lang"]
    rows = [r for r in rows if r["gold"] in LINGUA_LANGUAGES]
    docs = [
        t
        for p in sorted((REPO / "sample_data").rglob("part-*.parquet"))
        for t in pq.read_table(p, columns=["text"]).column("text").to_pylist()
    ]
    keep = QualityConfig().languages
    long = long_paragraphs()
    detect_languages(["load fastText outside the timing"], Fallback(enabled=False))
    variants = [
        ("fastText alone", Fallback(enabled=False)),
        ("fastText + lingua (default)", Fallback()),
        ("fastText + lingua low-accuracy mode", Fallback(low_accuracy=True)),
        ("fastText + lingua over the keep-list only", Fallback(languages=tuple(keep))),
        (
            "fastText + lingua, skip_when_removed_anyway",
            Fallback(keep={lang: QualityConfig().min_lang_score for lang in keep}),
        ),
    ]
    results = {
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "rows": len(rows),
        "long_paragraphs": len(long),
        "sample_docs": len(docs),
        "keep_languages": keep,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "variants": [run_variant(name, fb, rows, docs, set(keep), long) for name, fb in variants],
    }
    # The quality stage's decision from a label and score (default min_lang_score): the same for
    # every text under each variant as under the default?
    min_score = QualityConfig().min_lang_score
    default = next(v["_answers"] for v in results["variants"] if v["variant"] == "fastText + lingua (default)")
    for v in results["variants"]:
        answers = v.pop("_answers")
        same = sum(
            (a in keep and s >= min_score) == (b in keep and t >= min_score) for (a, s), (b, t) in zip(answers, default)
        )
        v["keep_decisions_as_default"] = round(same / len(default), 4)
    write_results("langid_accuracy", results, markdown(results))
    return results


if __name__ == "__main__":
    with skipping("langid_accuracy"):
        main()
        print((RESULTS_DIR / "langid_accuracy.md").read_text())
