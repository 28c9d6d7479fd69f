"""Tokenizer stage against the raw library, on the same text in the same run.

1. Training: `train_tokenizer` over Parquet shards vs raw `Tokenizer.train_from_iterator` over
   the same texts held in memory (same trainer settings).
2. Encoding: the stage (read Parquet, encode, split, write .bin + index + stats) vs raw
   `Tokenizer.encode_batch` over the same texts held in memory, all cores, the tokenizer loaded
   plainly (the issue's baseline), and vs raw `encode_batch_fast` with the stage's BPE cache (the
   library call the stage makes: what is left is our own overhead). The stage runs as a build
   runs it, shards over one worker process per core, each encoding on one thread, and in one
   process shard after shard on every core (`--workers 1`). Every run starts with empty BPE
   caches: a build encodes each text once, and a cache warmed by the round before would flatter
   whichever side has the larger one.
3. Compression: bytes per token per language on the multilingual texts of ../shared/data
   (UDHR, lingua, fortunes; held-out tenth), our configurations vs a GPT-2 style baseline (plain
   ByteLevel BPE, only <|endoftext|>) of the same vocabulary size trained on the same text.
4. Round trip: decode(encode(text)) == text on every document of ../shared/data.

The machine is shared and noisy: the sides of a comparison run in turn, forwards then backwards
(A B C D D C B A), four times, and each side's wall and CPU seconds (`time.process_time`, all
threads; the workers' own for the stage in worker processes) are summed over its eight runs, so
that a drift of the machine's speed weighs on every side alike. Ratios come from those sums, with
the ratio of each cycle beside them for the spread; the load average is recorded.
Needs the files of ../shared/data that tests/tokenizer/test_round_trip.py reads; skips without them.
Run: `.venv/bin/python -m bench.tokenizer` (about 6 minutes on 2 busy cores). Results go to
bench/results/tokenizer.{json,md}.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from bench import REPO, SHARED_DATA, needs_data, skipping, write_results
from pipeline.config import TokenizerConfig
from pipeline.tokenizer.encode import encode_shard, load_tokenizer
from pipeline.tokenizer.stats import summarize
from pipeline.tokenizer.train import EOT, _texts, added_tokens, hash_unit, train_tokenizer
from tests.tokenizer.test_round_trip import SOURCES, all_texts

VOCAB = 8192  # compression and round trip
SPEED_VOCAB = 16_384  # training and encoding speed: the measurement was at 16k
CYCLES = 4  # A B .. B A cycles per comparison: two runs a side each


def timed(fn) -> dict:
    """Wall and CPU seconds of fn(); a float fn returns is the CPU seconds it spent in other processes."""
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    elsewhere = fn()
    cpu = time.process_time() - cpu
    return {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": elsewhere if isinstance(elsewhere, float) else cpu,
        "load": round(load, 2),
    }


def interleaved(sides: dict, before=lambda side: None) -> dict[str, dict]:
    """Run the sides A B C .. C B A, CYCLES times; `before(side)` runs untimed before each run.

    Each side's wall and CPU seconds are summed over its runs. Within a cycle every side's two
    runs lie symmetric about the cycle's middle, so a machine whose speed drifts (this shared one
    varies by tens of percent from one minute to the next) slows every side's sum alike, where a
    best-of-runs rewards whichever side ran at the luckiest moment.
    """
    order = list(sides) + list(sides)[::-1]
    runs = {side: [] for side in sides}
    for _ in range(CYCLES):
        for side in order:
            before(side)
            runs[side].append(timed(sides[side]))
    return {
        side: {"wall_s": sum(x["wall_s"] for x in r), "cpu_s": sum(x["cpu_s"] for x in r), "runs": r}
        for side, r in runs.items()
    }


def ratio(base: dict, side: dict) -> dict:
    """base's seconds over side's (a throughput ratio), over all runs and cycle by cycle."""

    def cycles(x: dict, key: str) -> list[float]:
        return [sum(r[key] for r in x["runs"][i : i + 2]) for i in range(0, len(x["runs"]), 2)]

    per_cycle = [b / s for b, s in zip(cycles(base, "wall_s"), cycles(side, "wall_s"))]
    return {
        "throughput_ratio": round(base["wall_s"] / side["wall_s"], 3),
        "cpu_ratio": round(base["cpu_s"] / side["cpu_s"], 3),
        "per_cycle": [round(x, 3) for x in per_cycle],
    }


def rounded(x: dict) -> dict:
    out = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in x.items() if k != "runs"}
    return out | {"runs": [rounded(r) for r in x.get("runs", [])]} if "runs" in x else out


def raw_bpe(vocab_size: int, special: list[str]) -> tuple[Tokenizer, trainers.BpeTrainer]:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    return tokenizer, trainer


def _warm_worker(tok_path: Path, warm_shard: Path, out_dir: Path, cfg: TokenizerConfig) -> None:
    """A worker as a build's is when its encode stage starts: imports and pyarrow kernels warm
    from the stages before, the tokenizer loaded, its BPE cache empty."""
    encode_shard(warm_shard, tok_path, out_dir, "warm", cfg, 1337, parallel=False)
    load_tokenizer(tok_path).model._clear_cache()


def _encode_job(job: tuple) -> float:
    """One shard as a build with several shard workers encodes it (ShardJob.shares_cores: one
    thread); returns the CPU seconds this worker spent."""
    shard, tok_path, out_dir, cfg = job
    cpu = time.process_time()
    encode_shard(shard, tok_path, out_dir, shard.stem, cfg, 1337, parallel=False)
    return time.process_time() - cpu


def _started(pool: ProcessPoolExecutor, workers: int) -> ProcessPoolExecutor:
    list(pool.map(time.sleep, [0.5] * workers))  # every worker up and warm before the clock starts
    return pool


def training_speed(shards: list[Path], texts: list[str], mb: float, cfg: TokenizerConfig, tok_path: Path) -> dict:
    def raw_train():
        tokenizer, trainer = raw_bpe(cfg.vocab_size, added_tokens(cfg))
        batches = (texts[i : i + cfg.batch_size] for i in range(0, len(texts), cfg.batch_size))
        tokenizer.train_from_iterator(batches, trainer=trainer)

    sums = interleaved({"raw": raw_train, "ours": lambda: train_tokenizer(shards, cfg, tok_path)})
    raw, ours = sums["raw"], sums["ours"]
    # What the stage adds to the library, measured alone (noise-free compared with the ratio):
    # streaming the shards into Python lists as the trainer's iterator does.
    cpu = time.process_time()
    sum(map(len, _texts(shards, cfg, {}, {"documents": 0, "bytes": 0}, Counter())))
    iterator_cpu = time.process_time() - cpu
    time_ratio = ratio(ours, raw)  # ours' seconds over raw's
    return {
        "raw_train_from_iterator": rounded(raw),
        "train_tokenizer": rounded(ours),
        "wall_ratio": time_ratio["throughput_ratio"],
        "cpu_ratio": time_ratio["cpu_ratio"],
        "wall_ratio_per_cycle": time_ratio["per_cycle"],
        "raw_mb_per_cpu_s": round(mb * len(raw["runs"]) / raw["cpu_s"], 3),
        "parquet_iterator_cpu_s": round(iterator_cpu, 3),
        "parquet_iterator_share_of_raw_cpu": round(iterator_cpu * len(raw["runs"]) / raw["cpu_s"], 4),
    }


def encoding_speed(
    tmp: Path, shards: list[Path], texts: list[str], mb: float, cfg: TokenizerConfig, tok_path: Path
) -> dict:
    plain = Tokenizer.from_file(str(tok_path))  # the library's defaults (a 10,000-word BPE cache)
    plain.encode_special_tokens = True  # as the stage encodes: a literal <|endoftext|> is text
    ours = load_tokenizer(tok_path)  # as the stage loads it (BPE_CACHE_WORDS)
    workers = os.cpu_count()
    warm_shard = tmp / "warm.parquet"
    pq.write_table(pq.read_table(shards[0]).slice(0, 20), warm_shard)
    jobs = [(p, tok_path, tmp / "tokens", cfg) for p in shards]
    pools: list[ProcessPoolExecutor] = []

    def before_run(side: str) -> None:
        """Before each run: empty BPE caches everywhere; new worker processes for the stage."""
        plain.model._clear_cache()
        ours.model._clear_cache()
        if side == "stage_workers":
            while pools:
                pools.pop().shutdown()
            pools.append(
                _started(
                    ProcessPoolExecutor(
                        workers,
                        mp_context=multiprocessing.get_context("spawn"),
                        initializer=_warm_worker,
                        initargs=(tok_path, warm_shard, tmp / "warm", cfg),
                    ),
                    workers,
                )
            )

    sides = {
        "raw_encode_batch": lambda: plain.encode_batch(texts, add_special_tokens=False),
        "raw_encode_batch_fast": lambda: ours.encode_batch_fast(texts, add_special_tokens=False),
        "stage_workers": lambda: sum(pools[0].map(_encode_job, jobs)),
        "stage_one_process": lambda: [encode_shard(p, tok_path, tmp / "tokens", p.stem, cfg, 1337) for p in shards],
    }
    try:
        sums = interleaved(sides, before_run)
    finally:
        for pool in pools:
            pool.shutdown()
    out = {side: rounded(x) | {"mb_per_s": round(mb * len(x["runs"]) / x["wall_s"], 3)} for side, x in sums.items()}
    for stage in ("stage_workers", "stage_one_process"):
        for raw in ("raw_encode_batch", "raw_encode_batch_fast"):
            out[f"{stage}_vs_{raw}"] = ratio(sums[raw], sums[stage])
    return out | {"cores": workers}


def speed(tmp: Path) -> dict:
    """Training and encoding throughput on sample_data/ (Parquet shards as the stage reads them)."""
    cfg = TokenizerConfig(vocab_size=SPEED_VOCAB)
    shards = sorted((REPO / "sample_data").rglob("part-*.parquet"))
    texts = pa.concat_tables(pq.read_table(p, columns=["text"]) for p in shards)["text"].to_pylist()
    mb = sum(len(t.encode()) for t in texts) / 1e6
    tok_path = tmp / "tokenizer.json"
    out = {"text": "sample_data/ (6 shards)", "docs": len(texts), "mb": round(mb, 3), "vocab_size": SPEED_VOCAB}
    out["train"] = training_speed(shards, texts, mb, cfg, tok_path)
    out["encode"] = encoding_speed(tmp, shards, texts, mb, cfg, tok_path)
    records = [encode_shard(p, tok_path, tmp / "tokens", p.stem, cfg, 1337) | {"name": p.stem} for p in shards]
    stats = summarize(records, tok_path, tmp / "tokens")
    out["sample_data_stats"] = {k: v for k, v in stats.items() if k != "languages"}
    return out


def multilingual_rows() -> list[dict]:
    rows = []
    for name, lang_key in (
        ("langid/lingua_dev.jsonl", "lang"),
        ("corpora/fortunes_multilingual.jsonl", "lang"),
        ("langid/udhr_paragraphs_dev.jsonl", "bcp47"),
    ):
        with (SHARED_DATA / name).open(encoding="utf-8") as f:
            rows += [{"id": r["id"], "text": r["text"], "lang": r[lang_key]} for r in map(json.loads, f)]
    return rows


def compression(tmp: Path) -> dict:
    rows = multilingual_rows()
    heldout = [hash_unit(r["id"], "bench-heldout") < 0.1 for r in rows]
    train_rows = [r for r, h in zip(rows, heldout) if not h]
    test_rows = [r for r, h in zip(rows, heldout) if h]
    shard = tmp / "ml-train.parquet"
    pq.write_table(pa.Table.from_pylist(train_rows), shard)
    test_shard = tmp / "ml-test.parquet"
    pq.write_table(pa.Table.from_pylist(test_rows), test_shard)

    # Baseline: plain GPT-2 style byte-level BPE of the same vocabulary, same training text.
    baseline, trainer = raw_bpe(VOCAB, [EOT])
    baseline.train_from_iterator([r["text"] for r in train_rows], trainer=trainer)
    baseline.save(str(tmp / "baseline.json"))
    largest = sorted(
        {r["lang"] for r in train_rows},
        key=lambda lang: -sum(len(r["text"].encode()) for r in train_rows if r["lang"] == lang),
    )
    configs = {
        "gpt2_style_baseline": None,
        "ours_gpt2": TokenizerConfig(vocab_size=VOCAB),
        "ours_gpt4": TokenizerConfig(vocab_size=VOCAB, pre_tokenizer="gpt4"),
        "ours_gpt4_cap_200kb": TokenizerConfig(vocab_size=VOCAB, pre_tokenizer="gpt4", max_bytes_per_language=200_000),
    }
    out = {
        "text": "lingua + fortunes + UDHR (../shared/data), train 90% / measured on held-out 10%",
        "train_docs": len(train_rows),
        "test_docs": len(test_rows),
        "train_mb": round(sum(len(r["text"].encode()) for r in train_rows) / 1e6, 3),
        "vocab_size": VOCAB,
        "configs": {},
    }
    per_lang = {}
    for name, cfg in configs.items():
        path = tmp / "baseline.json" if cfg is None else tmp / f"{name}.json"
        if cfg is not None:
            train_tokenizer([shard], cfg, path)
        rec = encode_shard(test_shard, path, tmp / name, "test", cfg or TokenizerConfig(), 1) | {"name": "test"}
        stats = summarize([rec], path, tmp / name)
        out["configs"][name] = {
            k: stats[k]
            for k in ("bytes_per_token", "tokens_per_word", "vocab_used_share", "byte_fallback_rate", "unknown_rate")
        }
        per_lang[name] = stats["languages"]
    out["languages"] = {
        lang: {
            "bytes": per_lang["ours_gpt2"][lang]["bytes"],
            **{name: per_lang[name][lang]["bytes_per_token"] for name in configs},
        }
        for lang in per_lang["ours_gpt2"]
    }
    out["largest_training_languages"] = largest[:5]
    return out


def round_trip(tmp: Path) -> dict:
    texts = all_texts(SHARED_DATA)
    tokenizer = load_tokenizer(tmp / "ours_gpt2.json")
    ids = [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    decoded = tokenizer.decode_batch(ids, skip_special_tokens=True)
    bad = sum(t != d for t, d in zip(texts, decoded))
    return {"documents": len(texts), "mb": round(sum(len(t.encode()) for t in texts) / 1e6, 3), "mismatches": bad}


def markdown(r: dict) -> str:
    s, c = r["speed"], r["compression"]
    t, e = s["train"], s["encode"]
    lines = [
        "# Tokenizer benchmark",
        "",
        f"{r['machine']}, {e['cores']} cores, Python {r['python']}; load average at start {r['load_start']}.",
        f"Text: {s['text']}, {s['mb']} MB, {s['docs']} docs, vocab {s['vocab_size']}. Sides in turn, "
        f"A-B-..-B-A, {CYCLES} times; each side's wall and CPU seconds (all threads, all processes) summed over its "
        f"{2 * CYCLES} runs, ratios from the sums (per cycle in brackets). Every encoding run starts with empty BPE caches.",
        "",
        "## Training",
        "",
        "| raw `train_from_iterator` (s wall / CPU, all runs) | `train_tokenizer` over Parquet | time ratio (goal <= 1.1x) |",
        "|---|---|---|",
        f"| {t['raw_train_from_iterator']['wall_s']} / {t['raw_train_from_iterator']['cpu_s']} "
        f"| {t['train_tokenizer']['wall_s']} / {t['train_tokenizer']['cpu_s']} "
        f"| {t['wall_ratio']}x wall ({', '.join(map(str, t['wall_ratio_per_cycle']))}), {t['cpu_ratio']}x CPU; Parquet iterator alone "
        f"{t['parquet_iterator_cpu_s']} CPU-s = {t['parquet_iterator_share_of_raw_cpu']:.1%} of raw |",
        "",
        "## Encoding (MB/s wall, all cores)",
        "",
        "| side | MB/s | wall s / CPU s, all runs | throughput vs raw `encode_batch` (goal >= 0.9) | vs raw `encode_batch_fast` |",
        "|---|---|---|---|---|",
    ]
    labels = {
        "raw_encode_batch": "raw `encode_batch`, tokenizer loaded plainly (texts in memory)",
        "raw_encode_batch_fast": "raw `encode_batch_fast` with the stage's BPE cache (texts in memory)",
        "stage_workers": f"our stage as a build runs it: shards over {e['cores']} worker processes",
        "stage_one_process": "our stage in one process, shard after shard (`--workers 1`)",
    }
    for side, label in labels.items():
        ratios = [e.get(f"{side}_vs_{raw}") for raw in ("raw_encode_batch", "raw_encode_batch_fast")]
        cells = [
            f"**{x['throughput_ratio']}** ({', '.join(map(str, x['per_cycle']))}); CPU {x['cpu_ratio']}" if x else ""
            for x in ratios
        ]
        lines.append(
            f"| {label} | {e[side]['mb_per_s']} | {e[side]['wall_s']} / {e[side]['cpu_s']} | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        f"## Compression ({c['text']}; {c['train_mb']} MB training text, vocab {c['vocab_size']})",
        "",
        "| tokenizer | bytes/token | tokens/word | vocab used | byte fallback |",
        "|---|---|---|---|---|",
    ]
    for name, v in c["configs"].items():
        lines.append(
            f"| {name} | {v['bytes_per_token']} | {v['tokens_per_word']} | {v['vocab_used_share']} | {v['byte_fallback_rate']} |"
        )
    names = list(c["configs"])
    lines += [
        "",
        "Bytes per token, the 25 languages with most held-out text (all in tokenizer.json):",
        "",
        "| lang | held-out bytes | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for lang, v in list(c["languages"].items())[:25]:
        lines.append(f"| {lang} | {v['bytes']} | " + " | ".join(str(v[n]) for n in names) + " |")
    rt = r["round_trip"]
    lines += [
        "",
        f"Round trip: {rt['documents']} documents ({rt['mb']} MB) of ../shared/data, {rt['mismatches']} mismatches.",
        "",
    ]
    return "\n".join(lines)


def main() -> dict:
    needs_data(*(SHARED_DATA / name for name in [*SOURCES, "corpora/tinyshakespeare.txt"]))
    results = {
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "load_start": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory() as tmp:
        results["speed"] = speed(Path(tmp))
        results["compression"] = compression(Path(tmp))
        results["round_trip"] = round_trip(Path(tmp))
    results["load_end"] = [round(x, 2) for x in os.getloadavg()]
    write_results("tokenizer", results, markdown(results))
    return results


if __name__ == "__main__":
    with skipping("tokenizer"):
        print(markdown(main()))
