"""Where the CPU goes in the quality and privacy stages: each part of a stage's work timed on its own.

Each part is the library call the stage makes, run alone over the same documents (models loaded
and warmed first), CPU seconds of its process (quality: the fastest of ROUNDS runs; privacy: one
run, its parts are long), the quality and privacy parts in two processes at once; the whole
stage is timed the same way, and what the parts leave is "the rest". A profiler was not used for
the figures: cProfile inflates pure-Python code (phonenumbers, the rule code) several-fold
against C, Rust and Cython (fastText, lingua, spaCy); py-spy (`py-spy record -f raw`) was used
while developing and agrees on the order of the parts.

Quality: bench/quality_stage_vs_datatrove.py's documents (held-out web pages and UDHR runs), C4
and FineWeb on; language ID with fastText alone and with lingua (what lingua adds includes the
second fastText call some texts need), with `lingua.skip_when_removed_anyway`, the keyword
filter, each rule family (timed cumulatively: Gopher quality, + repetition, + C4, + FineWeb),
perplexity. Privacy: every second one of bench/privacy_speed.py's 1,000 paragraphs, one run
each; naive presidio's spaCy pipeline pipe by pipe and its recognizers, then the stage's
`detect` in both NER modes beside the NER it runs.
Needs what those two benchmarks need (not the datatrove venv).
Run: `.venv/bin/python -m bench.stage_profile` (~6 min) -> bench/results/stage_profile.{json,md}.
"""

from __future__ import annotations

import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from bench import needs_data, skipping, write_results
from bench import privacy_speed as privacy_bench
from bench import quality_stage_vs_datatrove as quality_bench

ROUNDS = 2


def cpu(fn, rounds: int = ROUNDS) -> float:
    """Fastest CPU seconds of `rounds` calls of fn()."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def _shares(parts: dict[str, float], total: float) -> dict:
    return {name: {"cpu_s": round(s, 3), "share": round(s / total, 3)} for name, s in parts.items()} | {
        "total": {"cpu_s": round(total, 3), "share": 1.0}
    }


def quality() -> dict:
    import pyarrow as pa

    from pipeline.config import QualityConfig
    from pipeline.quality import keywords, perplexity, signals
    from pipeline.quality.langid import Fallback, detect_languages
    from pipeline.quality.stage import before_rules, run_shard
    from pipeline.stage import ShardContext

    docs = quality_bench.documents()
    texts = [d["text"] for d in docs]
    table = pa.table({"id": [d["id"] for d in docs], "text": texts})
    cfg = QualityConfig(c4={"enabled": True}, fineweb={"enabled": True})
    skip = cfg.model_copy(update={"lingua": cfg.lingua.model_copy(update={"skip_when_removed_anyway": True})})
    keep = {lang: cfg.min_lang_score for lang in cfg.languages}
    for c in (cfg, skip):
        run_shard(table, ShardContext(c, stage="quality"))  # loads every model
    total = cpu(lambda: run_shard(table, ShardContext(cfg, stage="quality")))
    total_skip = cpu(lambda: run_shard(table, ShardContext(skip, stage="quality")))
    langs, scores = detect_languages(texts, Fallback.from_config(cfg.lingua))
    lists = keywords.load_blocklists()
    shares = [keywords.keyword_share(t, lists, lang) for t, lang in zip(texts, langs)]
    judged = [
        (t, lang) for t, lang, s, k in zip(texts, langs, scores, shares) if not before_rules(t, lang, s, False, k, cfg)
    ]
    families = {}
    steps = (("gopher", "Gopher quality"), ("repetition", "Gopher repetition"), ("c4", "C4"), ("fineweb", "FineWeb"))
    for n, (_, name) in enumerate(steps):
        on = {section: {"enabled": i <= n} for i, (section, _) in enumerate(steps)}
        step_cfg = QualityConfig(**on)
        families[name] = cpu(lambda c=step_cfg: [signals.judge(t, lang, c) for t, lang in judged])
    cleaned = [signals.judge(t, lang, cfg).text for t, lang in judged]
    reference = perplexity.reference_model(cfg.perplexity)
    fasttext = cpu(lambda: detect_languages(texts, Fallback(enabled=False)))
    parts = {
        "language ID: fastText": fasttext,
        "language ID: lingua (and second fastText calls)": cpu(
            lambda: detect_languages(texts, Fallback.from_config(cfg.lingua))
        )
        - fasttext,
        "keyword filter": cpu(lambda: [keywords.keyword_share(t, lists, lang) for t, lang in zip(texts, langs)]),
    }
    before = 0.0
    for name, seconds in families.items():
        parts[f"rules: {name}"] = seconds - before
        before = seconds
    parts["perplexity"] = cpu(lambda: reference.score(cleaned, [lang for _, lang in judged]))
    parts["the rest (Arrow columns, decisions, split)"] = total - sum(parts.values())
    lingua_skipped = cpu(lambda: detect_languages(texts, Fallback.from_config(cfg.lingua, keep))) - fasttext
    return {
        "lingua_batch_call": lingua_batch_call(texts, cfg),
        "documents": f"{len(docs)} documents ({sum(map(len, texts)) / 1e6:.2f}M characters), {len(judged)} reach the rules",
        "exact": _shares(parts, total),
        "skip_when_removed_anyway": {"total_cpu_s": round(total_skip, 3), "lingua_cpu_s": round(lingua_skipped, 3)},
    }


def lingua_batch_call(texts: list[str], cfg) -> dict:
    """lingua on the texts that reach it: one call per text (the stage) against its call that
    spreads a list over threads; CPU (all threads) and wall seconds."""
    from pipeline.quality.langid import LINGUA_LANGUAGES, Fallback, _get_lingua, detect_languages

    lines = [" ".join(t.split()) for t in texts]
    _, scores = detect_languages(lines, Fallback(enabled=False))
    asked = [
        line[: cfg.lingua.max_chars]
        for line, score in zip(lines, scores)
        if score < cfg.lingua.below_score or len(line) < cfg.lingua.short_chars
    ]
    detector = _get_lingua(LINGUA_LANGUAGES, False)
    out = {"texts": len(asked)}
    for name, call in (
        ("one call per text", lambda: [detector.compute_language_confidence_values(t) for t in asked]),
        (
            "compute_language_confidence_values_in_parallel",
            lambda: detector.compute_language_confidence_values_in_parallel(asked),
        ),
    ):
        wall, start = time.perf_counter(), time.process_time()
        call()
        out[name] = {"cpu_s": round(time.process_time() - start, 3), "wall_s": round(time.perf_counter() - wall, 3)}
    return out


def privacy() -> dict:
    from pipeline.privacy.engine import ner_analyzer
    from pipeline.privacy.name_windows import ner_in_windows

    texts = privacy_bench.paragraph_docs()[::2]  # half of each kind, to keep the run short
    analyzer = ner_analyzer()
    engine, nlp = analyzer.nlp_engine, analyzer.nlp_engine.nlp["en"]
    entities = privacy_bench._config().entities
    for side in privacy_bench.SIDES.values():
        side(texts[:5])
    # naive presidio: the full pipeline on each document, then the recognizers on its artifacts
    naive_parts = {"spaCy tokenizer": cpu(lambda: [nlp.make_doc(t) for t in texts], 1)}
    docs = [nlp.make_doc(t) for t in texts]
    for name, proc in nlp.pipeline:
        start = time.process_time()
        docs = [proc(doc) for doc in docs]
        naive_parts[f"spaCy {name}"] = time.process_time() - start
    naive_parts["presidio recognizers"] = cpu(
        lambda: [
            analyzer.analyze(t, "en", entities=entities, nlp_artifacts=engine._doc_to_nlp_artifact(d, "en"))
            for t, d in zip(texts, docs)
        ],
        1,
    )
    naive_total = cpu(lambda: privacy_bench.naive(texts), 1)
    naive_parts["the rest"] = naive_total - sum(naive_parts.values())
    out = {"documents": f"{len(texts)} paragraphs", "naive": _shares(naive_parts, naive_total)}
    with nlp.select_pipes(enable=["ner"]):
        ner_whole = cpu(lambda: list(nlp.pipe(texts, batch_size=128)), 1)
        ner_windows = cpu(lambda: list(ner_in_windows(nlp, texts, 128)), 1)
    tokenizer = cpu(lambda: [nlp.make_doc(t) for t in texts], 1)
    for mode, ner in (("exact", {"spaCy NER, whole documents": ner_whole}), ("windows", {})):
        if mode == "windows":
            ner = {
                "spaCy tokenizer (whole documents)": tokenizer,
                "name windows and spaCy NER in them": ner_windows - tokenizer,
            }
        total = cpu(lambda m=mode: privacy_bench.stage(texts, m), 1)
        out[mode] = _shares(ner | {"presidio recognizers and the context-word pass": total - sum(ner.values())}, total)
    return out


def markdown(results: dict) -> str:
    lines = [
        "# Where the CPU goes: quality and privacy stages",
        "",
        f"Each part timed on its own (CPU seconds; quality: fastest of {ROUNDS} runs, privacy: one run; "
        "the two stages in two processes at once; bench/stage_profile.py); "
        f"{results['machine']}, load average {results['loadavg_start']} -> {results['loadavg_end']}.",
        "",
    ]

    def table(title: str, parts: dict) -> None:
        lines.extend([f"**{title}**", "", "| part | CPU s | share |", "|---|---|---|"])
        lines.extend(f"| {name} | {p['cpu_s']} | {p['share']:.0%} |" for name, p in parts.items())
        lines.append("")

    q = results["quality"]
    table(f"Quality stage, `run_shard`, C4 and FineWeb on, {q['documents']}", q["exact"])
    s = q["skip_when_removed_anyway"]
    lines += [
        f"With `lingua.skip_when_removed_anyway`: the whole stage {s['total_cpu_s']} CPU s, lingua's part "
        f"{s['lingua_cpu_s']} s.",
        "",
    ]
    b = q["lingua_batch_call"]
    lines += [
        f"lingua on the {b['texts']} texts that reach it: one call per text {b['one call per text']['cpu_s']} CPU s "
        f"({b['one call per text']['wall_s']} s wall); its threaded batch call "
        f"{b['compute_language_confidence_values_in_parallel']['cpu_s']} CPU s "
        f"({b['compute_language_confidence_values_in_parallel']['wall_s']} s wall).",
        "",
    ]
    p = results["privacy"]
    table(f"Naive presidio (`AnalyzerEngine.analyze` per document), {p['documents']}", p["naive"])
    table("Privacy stage `detect`, `ner_mode: exact`", p["exact"])
    table("Privacy stage `detect`, `ner_mode: windows`", p["windows"])
    return "\n".join(lines)


def main() -> dict:
    needs_data(quality_bench.WEB, quality_bench.UDHR)
    needs_data(privacy_bench.SHARED / "cc_docs.jsonl", privacy_bench.SHARED / "tinyshakespeare.txt")
    load_start = os.getloadavg()
    # The two stages in two processes at once: CPU seconds are per process, so each part's
    # figure is its own, and the run takes half the wall time on two cores.
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        q, p = pool.submit(quality), pool.submit(privacy)
        results = {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "loadavg_start": [round(x, 2) for x in load_start],
            "quality": q.result(),
            "privacy": p.result(),
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        }
    write_results("stage_profile", results, markdown(results))
    return results


if __name__ == "__main__":
    with skipping("stage_profile"):
        print(json.dumps(main(), indent=2))
