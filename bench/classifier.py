"""The quality classifier: how its score separates main text from boilerplate, and its cost beside
datatrove's fastText filter on the same model.

Data: the 449 web pages of ../shared/data/web/trafilatura_dev.jsonl.gz, split in two halves by a
seeded hash of their ids. The classifier is trained as the stage trains it by default (model.py's
`write_training_set` and `train`, the config's defaults): positives are the lines of the
perplexity reference folder (sample_data/reference: clean news-like sentences in nine
languages), negatives as many raw pages (their WET-style `text`, boilerplate and all) of the
training half, GPT-3's curated-against-crawl set-up. On the other half, each page's `must_keep`
snippets (main content a good extractor keeps) and `must_remove` snippets (navigation, footers,
teasers) are scored as documents: the separation is the AUC (the chance that a main-text
snippet scores above a boilerplate one), with the mean score and the share at or above the
default threshold (0.5) of each kind, overall and for German and English pages. Variants: the
stage's default (a document an example), the same with fastText's small-data settings (epoch 25,
lr 0.5), and `classifier.unit: line` (each line of a page an example; a document's score the
weighted mean of its lines').

Cost: CPU seconds per MB of training text (training) and of page text (scoring), one process;
scoring is the stage's shard step (`run_shard`: one fastText line per document, the score
column, the cut), beside datatrove's FastTextClassifierFilter (bench/_datatrove_fasttext.py, in
the datatrove venv) scoring the same pages with the same model file, three passes each,
interleaved in one run. Without the datatrove venv the separation is still measured.

Needs ../shared/data/web/trafilatura_dev.jsonl.gz; skips without it.
Run: .venv/bin/python -m bench.classifier  ->  bench/results/classifier.{json,md}
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from bench import DATATROVE_PYTHON, REPO, SHARED_DATA, Skip, needs_data, skipping, write_results
from pipeline.classifier import model
from pipeline.classifier.stage import _reference_lines, _Sample, run_shard
from pipeline.config import BuildConfig, ClassifierConfig
from pipeline.stage import ShardContext
from pipeline.tokenizer.train import hash_unit

PAGES = SHARED_DATA / "web" / "trafilatura_dev.jsonl.gz"
SEED = 0
ROUNDS = 3


def snippets(page: dict, key: str) -> list[str]:
    value = page.get(key) or []
    return ast.literal_eval(value) if isinstance(value, str) else list(value)


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counting half (the Mann-Whitney form)."""
    above = (positive[:, None] > negative[None, :]).sum()
    ties = (positive[:, None] == negative[None, :]).sum()
    return float((above + 0.5 * ties) / (len(positive) * len(negative)))


def separation(keep: np.ndarray, remove: np.ndarray, threshold: float) -> dict:
    return {
        "must_keep": len(keep),
        "must_remove": len(remove),
        "auc": round(auc(keep, remove), 3),
        "mean_keep": round(float(keep.mean()), 3),
        "mean_remove": round(float(remove.mean()), 3),
        "keep_at_threshold": round(float((keep >= threshold).mean()), 3),
        "remove_at_threshold": round(float((remove >= threshold).mean()), 3),
    }


DEFAULT = "stage default: reference lines against raw pages"


def variants_of(section: ClassifierConfig) -> dict[str, ClassifierConfig]:
    """The stage's default; the same with fastText's small-data settings; lines as examples."""
    return {
        DEFAULT: section,
        "same, epoch 25, lr 0.5": section.model_copy(update={"epoch": 25, "lr": 0.5}),
        "unit: line": section.model_copy(update={"unit": "line"}),
    }


def sample(documents: list[tuple[str, str]], unit: str, k: int, seed: str) -> list[str]:
    """The stage's seeded bottom-k sample of the documents' examples (as train_classifier draws)."""
    drawn = _Sample(k, seed)
    for key, text in documents:
        for example in model.examples(key, text, unit):
            drawn.offer(*example)
    return [text for _, text in drawn.items()]


def train_and_score(
    section: ClassifierConfig, reference: list[tuple[str, str]], train_half: list[dict], pages: list[dict], folder: Path
) -> tuple[dict, Path]:
    """Train one variant as the stage trains (its samples, write_training_set, train) and score
    the snippets of the held-out pages: the separation, overall and per page language."""
    positives = sample(reference, section.unit, section.max_per_class, f"{SEED}:classifier-positives")
    raw = [(p["id"], p["text"]) for p in train_half]
    negatives = sample(raw, section.unit, len(positives), f"{SEED}:classifier-negatives")
    folder.mkdir()
    training_set, model_path = folder / "train.txt", folder / "model.bin"
    counts = model.write_training_set(positives, negatives, section.positive_label, training_set, SEED)
    start = time.process_time()
    model.train(training_set, section, SEED, model_path)
    train_s = time.process_time() - start
    training_mb = training_set.stat().st_size / 1e6
    scorer = model.scorer(model_path, section.positive_label)
    rows: dict[str, tuple[list, list]] = {"all": ([], [])}
    for page in pages:
        lang = (page.get("html_lang") or "").split("-")[0].lower()
        lang = lang if lang in ("de", "en") else "other"
        for kind, key in ((0, "must_keep"), (1, "must_remove")):
            texts = [t for t in snippets(page, key) if t.strip()]
            if texts:
                scores = model.document_scores(scorer, texts, section.unit).tolist()
                rows["all"][kind].extend(scores)
                rows.setdefault(lang, ([], []))[kind].extend(scores)
    settings = {k: getattr(section, k) for k in ("epoch", "lr", "word_ngrams", "dim", "bucket", "min_count")}
    return {
        "training": {
            **counts,
            "mb": round(training_mb, 2),
            "cpu_s": round(train_s, 2),
            "cpu_s_per_mb": round(train_s / training_mb, 2),
            "settings": settings,
        },
        "separation": {
            lang: separation(np.array(keep), np.array(remove), section.threshold)
            for lang, (keep, remove) in rows.items()
        },
    }, model_path


def datatrove(model_path: Path, label: str, pages: list[dict], tmp: Path) -> dict:
    src = tmp / "pages.jsonl"
    src.write_text("".join(json.dumps({"id": p["id"], "text": p["text"]}) + "\n" for p in pages))
    cmd = [str(DATATROVE_PYTHON), str(REPO / "bench" / "_datatrove_fasttext.py"), str(model_path), label, str(src)]
    proc = subprocess.run([*cmd, "1"], capture_output=True, text=True, cwd=tmp)
    if proc.returncode:
        raise SystemExit(f"error: datatrove run failed ({' '.join(cmd)}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    needs_data(PAGES)
    with gzip.open(PAGES, "rt", encoding="utf-8") as f:
        pages = [json.loads(line) for line in f]
    train_half = [p for p in pages if hash_unit(p["id"], "classifier-bench") < 0.5]
    test_half = [p for p in pages if hash_unit(p["id"], "classifier-bench") >= 0.5]
    cfg = BuildConfig()
    section = cfg.classifier
    reference = _reference_lines(cfg)

    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        variants, models = {}, {}
        for number, (name, settings) in enumerate(variants_of(section).items()):
            variants[name], models[name] = train_and_score(
                settings, reference, train_half, test_half, tmp / str(number)
            )
        model_path = models[DEFAULT]  # the speed comparison's model
        page_scores = model.scorer(model_path, section.positive_label).score([p["text"] for p in test_half])

        table = pa.table({"id": [p["id"] for p in test_half], "text": [p["text"] for p in test_half]})
        page_mb = sum(len(p["text"].encode()) for p in test_half) / 1e6
        ctx = ShardContext(section, stage="classifier", artifacts={"classifier_model": model_path})
        run_shard(table, ctx)  # warm-up, as datatrove's side makes one
        ours, theirs, dt_version = [], [], None
        skip_reason = None
        for _ in range(ROUNDS):
            start = time.process_time()
            run_shard(table, ctx)
            ours.append(time.process_time() - start)
            if DATATROVE_PYTHON.exists():
                out = datatrove(model_path, section.positive_label, test_half, tmp)
                theirs += out["cpu_s"]
                dt_version = out["version"]
                agree = float(np.abs(np.array(out["scores"]) - page_scores).max())
            else:
                skip_reason = str(Skip(f"needs the datatrove venv {DATATROVE_PYTHON.parent.parent}"))

    results = {
        "loadavg": os.getloadavg()[0],
        "pages": {"train_half": len(train_half), "test_half": len(test_half)},
        "variants": variants,
        "test_pages_mean_score": round(float(page_scores.mean()), 3),
        "scoring": {
            "page_mb": round(page_mb, 2),
            "ours_cpu_s": [round(s, 3) for s in ours],
            "ours_cpu_s_per_mb": round(float(np.median(ours)) / page_mb, 3),
        },
    }
    if theirs:
        results["scoring"] |= {
            "datatrove_version": dt_version,
            "datatrove_cpu_s": [round(s, 3) for s in theirs],
            "datatrove_cpu_s_per_mb": round(float(np.median(theirs)) / page_mb, 3),
            "speed_ratio_ours_over_datatrove": round(float(np.median(theirs)) / float(np.median(ours)), 2),
            "max_score_difference": agree,
        }
    else:
        results["scoring"]["datatrove"] = skip_reason
    write_results("classifier", results, markdown(results))
    print(markdown(results))


def markdown(r: dict) -> str:
    s = r["scoring"]
    lines = [
        "# Quality classifier: must_keep against must_remove snippets (trafilatura dev pages)",
        "",
        f"load average {r['loadavg']:.2f}; CPU seconds, one process. Data and method: bench/classifier.py.",
        f"Positives: the reference lines (sample_data/reference); negatives from {r['pages']['train_half']} pages; "
        f"scored: the snippets of the other {r['pages']['test_half']} pages. AUC: the chance that a main-text "
        "snippet scores above a boilerplate one (0.5: no separation).",
        "",
        "| variant | pages | must_keep | must_remove | AUC | mean keep | mean remove | keep >= 0.5 | remove >= 0.5 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, variant in r["variants"].items():
        for lang, v in variant["separation"].items():
            lines.append(
                f"| {name} | {lang} | {v['must_keep']} | {v['must_remove']} | **{v['auc']}** | {v['mean_keep']} | "
                f"{v['mean_remove']} | {v['keep_at_threshold']:.1%} | {v['remove_at_threshold']:.1%} |"
            )
    t = r["variants"][DEFAULT]["training"]
    lines += [
        "",
        f"Scoring {s['page_mb']} MB of page text (stage default model): ours {s['ours_cpu_s_per_mb']} CPU s per MB",
    ]
    if "datatrove_cpu_s_per_mb" in s:
        lines[-1] += (
            f", datatrove {s['datatrove_version']}'s FastTextClassifierFilter {s['datatrove_cpu_s_per_mb']} CPU s per MB "
            f"on the same model: ours is **{s['speed_ratio_ours_over_datatrove']}x** its speed "
            f"(median of {len(s['ours_cpu_s'])} interleaved passes; scores differ by at most {s['max_score_difference']:.1e})."
        )
    else:
        lines[-1] += f"; datatrove not run ({s['datatrove']})."
    lines += [
        f"Training (stage default): {t['cpu_s_per_mb']} CPU s per MB of training set, {t['mb']} MB "
        "(datatrove does not train).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    with skipping("classifier"):
        main()
