"""Tokenizer stage against the raw library, on the same text in the same run.

1. Training: `train_tokenizer` over Parquet shards vs raw `Tokenizer.train_from_iterator` over
   the same texts held in memory (same trainer settings).
2. Encoding: `encode_shard` over the shards (read Parquet, encode, split, write .bin + index +
   stats) vs raw `Tokenizer.encode_batch` over the same texts held in memory, all cores.
3. Compression: bytes per token per language on the multilingual texts of ../shared/data
   (UDHR, lingua, fortunes; held-out tenth), our configurations vs a GPT-2 style baseline (plain
   ByteLevel BPE, only <|endoftext|>) of the same vocabulary size trained on the same text.
4. Round trip: decode(encode(text)) == text on every document of ../shared/data.

The machine is shared and noisy: each pair runs A B B A A B B A and we keep each side's best wall time
and its CPU time (`time.process_time`, all threads); the load average is recorded beside them.
Run: `.venv/bin/python -m bench.tokenizer` (about 10 minutes on 2 busy cores). Results go to
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

from pipeline.config import TokenizerConfig
from pipeline.tokenizer.encode import encode_shard, load_tokenizer
from pipeline.tokenizer.stats import summarize
from pipeline.tokenizer.train import EOT, _texts, added_tokens, hash_unit, train_tokenizer
from tests.tokenizer.test_round_trip import all_texts
from bench import write_results

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
VOCAB = 8192


def timed(fn) -> dict:
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "load": round(load, 2)}


def abba(a, b) -> tuple[dict, dict]:
    """Run a, b, b, a twice; each side's best wall time and the CPU time of that run (four runs
    a side: this shared machine's speed varies by tens of percent from one minute to the next)."""
    runs = {"a": [], "b": []}
    for side in "abba" * 2:
        runs[side].append(timed(a if side == "a" else b))
    best = {side: min(r, key=lambda x: x["wall_s"]) | {"runs": r} for side, r in runs.items()}
    return best["a"], best["b"]


def rounded(x: dict) -> dict:
    out = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in x.items() if k != "runs"}
    return out | {"runs": [rounded(r) for r in x.get("runs", [])]} if "runs" in x else out


def raw_bpe(vocab_size: int, special: list[str]) -> tuple[Tokenizer, trainers.BpeTrainer]:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    return tokenizer, trainer


def _encode_job(job: tuple) -> dict:
    shard, tok_path, out_dir, cfg = job
    # parallel=False: as a build with several shard workers runs it (ShardJob.shares_cores).
    return encode_shard(shard, tok_path, out_dir, shard.stem, cfg, 1337, parallel=False)


def speed(tmp: Path) -> dict:
    """Training and encoding throughput on sample_data/ (Parquet shards as the stage reads them)."""
    cfg = TokenizerConfig(vocab_size=VOCAB)
    shards = sorted((REPO / "sample_data").glob("part-*.parquet"))
    texts = pa.concat_tables(pq.read_table(p, columns=["text"]) for p in shards)["text"].to_pylist()
    mb = sum(len(t.encode()) for t in texts) / 1e6
    out = {"text": "sample_data/ (6 shards)", "docs": len(texts), "mb": round(mb, 3), "vocab_size": VOCAB}

    def raw_train():
        tokenizer, trainer = raw_bpe(VOCAB, added_tokens(cfg))
        batches = (texts[i:i + cfg.batch_size] for i in range(0, len(texts), cfg.batch_size))
        tokenizer.train_from_iterator(batches, trainer=trainer)

    tok_path = tmp / "tokenizer.json"
    raw, ours = abba(raw_train, lambda: train_tokenizer(shards, cfg, tok_path))
    # What the stage adds to the library, measured alone (noise-free compared with the ratio):
    # streaming the shards into Python lists as the trainer's iterator does.
    cpu = time.process_time()
    sum(map(len, _texts(shards, cfg, {}, {"documents": 0, "bytes": 0}, Counter())))
    iterator_cpu = time.process_time() - cpu
    out["train"] = {"raw_train_from_iterator": rounded(raw), "train_tokenizer": rounded(ours),
                    "wall_ratio": round(ours["wall_s"] / raw["wall_s"], 3),
                    "cpu_ratio": round(ours["cpu_s"] / raw["cpu_s"], 3),
                    "raw_mb_per_cpu_s": round(mb / raw["cpu_s"], 3),
                    "parquet_iterator_cpu_s": round(iterator_cpu, 3),
                    "parquet_iterator_share_of_raw_cpu": round(iterator_cpu / raw["cpu_s"], 4)}

    tokenizer = load_tokenizer(tok_path)  # encode_special_tokens set, as the stage encodes
    records = []

    def ours_encode():
        records.clear()
        for p in shards:
            records.append(encode_shard(p, tok_path, tmp / "tokens", p.stem, cfg, 1337) | {"name": p.stem})

    raw, ours = abba(lambda: tokenizer.encode_batch(texts, add_special_tokens=False), ours_encode)
    out["encode"] = {"raw_encode_batch": rounded(raw) | {"mb_per_s": round(mb / raw["wall_s"], 3)},
                     "encode_shard": rounded(ours) | {"mb_per_s": round(mb / ours["wall_s"], 3)},
                     "throughput_ratio": round(raw["wall_s"] / ours["wall_s"], 3),
                     "cpu_ratio": round(raw["cpu_s"] / ours["cpu_s"], 3),
                     "cores": os.cpu_count()}
    # As a build runs the stage: one shard per worker process (a warm pool, as the build's is),
    # each encode_batch on its worker's one thread. Wall time only: the CPU is spent in the workers.
    jobs = [(p, tok_path, tmp / "tokens", cfg) for p in shards]
    with ProcessPoolExecutor(os.cpu_count(), mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_encode_job, jobs))  # warm: imports and the tokenizer loaded in every worker
        raw, pooled = abba(lambda: tokenizer.encode_batch(texts, add_special_tokens=False),
                           lambda: list(pool.map(_encode_job, jobs)))
    out["encode_workers"] = {"raw_encode_batch_wall_s": raw["wall_s"], "stage_wall_s": pooled["wall_s"],
                             "mb_per_s": round(mb / pooled["wall_s"], 3),
                             "throughput_ratio": round(raw["wall_s"] / pooled["wall_s"], 3)}
    stats = summarize(records, tok_path, tmp / "tokens")
    out["sample_data_stats"] = {k: v for k, v in stats.items() if k != "languages"}
    return out


def multilingual_rows() -> list[dict]:
    rows = []
    for name, lang_key in (("langid/lingua_dev.jsonl", "lang"), ("corpora/fortunes_multilingual.jsonl", "lang"),
                           ("langid/udhr_paragraphs_dev.jsonl", "bcp47")):
        with (SHARED / name).open(encoding="utf-8") as f:
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
    largest = sorted({r["lang"] for r in train_rows}, key=lambda lang: -sum(len(r["text"].encode()) for r in train_rows if r["lang"] == lang))
    configs = {
        "gpt2_style_baseline": None,
        "ours_gpt2": TokenizerConfig(vocab_size=VOCAB),
        "ours_gpt4": TokenizerConfig(vocab_size=VOCAB, pre_tokenizer="gpt4"),
        "ours_gpt4_cap_200kb": TokenizerConfig(vocab_size=VOCAB, pre_tokenizer="gpt4", max_bytes_per_language=200_000),
    }
    out = {"text": "lingua + fortunes + UDHR (../shared/data), train 90% / measured on held-out 10%",
           "train_docs": len(train_rows), "test_docs": len(test_rows),
           "train_mb": round(sum(len(r["text"].encode()) for r in train_rows) / 1e6, 3), "vocab_size": VOCAB,
           "configs": {}}
    per_lang = {}
    for name, cfg in configs.items():
        path = tmp / "baseline.json" if cfg is None else tmp / f"{name}.json"
        if cfg is not None:
            train_tokenizer([shard], cfg, path)
        rec = encode_shard(test_shard, path, tmp / name, "test", cfg or TokenizerConfig(), 1) | {"name": "test"}
        stats = summarize([rec], path, tmp / name)
        out["configs"][name] = {k: stats[k] for k in ("bytes_per_token", "tokens_per_word", "vocab_used_share",
                                                        "byte_fallback_rate", "unknown_rate")}
        per_lang[name] = stats["languages"]
    out["languages"] = {
        lang: {"bytes": per_lang["ours_gpt2"][lang]["bytes"],
               **{name: per_lang[name][lang]["bytes_per_token"] for name in configs}}
        for lang in per_lang["ours_gpt2"]
    }
    out["largest_training_languages"] = largest[:5]
    return out


def round_trip(tmp: Path) -> dict:
    texts = all_texts(SHARED)
    tokenizer = load_tokenizer(tmp / "ours_gpt2.json")
    ids = [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    decoded = tokenizer.decode_batch(ids, skip_special_tokens=True)
    bad = sum(t != d for t, d in zip(texts, decoded))
    return {"documents": len(texts), "mb": round(sum(len(t.encode()) for t in texts) / 1e6, 3), "mismatches": bad}


def markdown(r: dict) -> str:
    s, c = r["speed"], r["compression"]
    t, e = s["train"], s["encode"]
    lines = [
        "# Tokenizer benchmark", "",
        f"{r['machine']}, {s['encode']['cores']} cores, Python {r['python']}; load average at start {r['load_start']}.",
        f"Best of A-B-B-A-A-B-B-A runs, wall time; CPU time of that run (all threads). Text: {s['text']}, "
        f"{s['mb']} MB, {s['docs']} docs, vocab {s['vocab_size']}.", "",
        "| step | raw library | our stage | ratio |", "|---|---|---|---|",
        f"| training (s wall / CPU) | {t['raw_train_from_iterator']['wall_s']} / {t['raw_train_from_iterator']['cpu_s']} "
        f"| {t['train_tokenizer']['wall_s']} / {t['train_tokenizer']['cpu_s']} "
        f"| time {t['wall_ratio']}x wall, {t['cpu_ratio']}x CPU (goal <= 1.1x); Parquet iterator alone "
        f"{t['parquet_iterator_cpu_s']} CPU-s = {t['parquet_iterator_share_of_raw_cpu']:.1%} of raw |",
        f"| encoding (MB/s wall, all cores) | {e['raw_encode_batch']['mb_per_s']} | {e['encode_shard']['mb_per_s']} "
        f"| throughput {e['throughput_ratio']} wall, {e['cpu_ratio']} CPU, one process, shard after shard |",
        f"| encoding, shards over {e['cores']} worker processes as a build runs it (MB/s wall) "
        f"| {round(s['mb'] / s['encode_workers']['raw_encode_batch_wall_s'], 3)} | {s['encode_workers']['mb_per_s']} "
        f"| throughput {s['encode_workers']['throughput_ratio']} (goal >= 0.9) |", "",
        f"## Compression ({c['text']}; {c['train_mb']} MB training text, vocab {c['vocab_size']})", "",
        "| tokenizer | bytes/token | tokens/word | vocab used | byte fallback |", "|---|---|---|---|---|",
    ]
    for name, v in c["configs"].items():
        lines.append(f"| {name} | {v['bytes_per_token']} | {v['tokens_per_word']} | {v['vocab_used_share']} | {v['byte_fallback_rate']} |")
    names = list(c["configs"])
    lines += ["", "Bytes per token, the 25 languages with most held-out text (all in tokenizer.json):", "",
              "| lang | held-out bytes | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for lang, v in list(c["languages"].items())[:25]:
        lines.append(f"| {lang} | {v['bytes']} | " + " | ".join(str(v[n]) for n in names) + " |")
    rt = r["round_trip"]
    lines += ["", f"Round trip: {rt['documents']} documents ({rt['mb']} MB) of ../shared/data, "
              f"{rt['mismatches']} mismatches.", ""]
    return "\n".join(lines)


def main() -> dict:
    results = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
               "load_start": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as tmp:
        results["speed"] = speed(Path(tmp))
        results["compression"] = compression(Path(tmp))
        results["round_trip"] = round_trip(Path(tmp))
    results["load_end"] = [round(x, 2) for x in os.getloadavg()]
    write_results("tokenizer", results, markdown(results))
    return results


if __name__ == "__main__":
    print(markdown(main()))
