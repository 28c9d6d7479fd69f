"""Single-process throughput of every text stage on sample_data/ (docs/s and MB/s); needs only the clone.

Run by hand (`make bench`); results go to bench/results/stage_throughput.json. Numbers from
this 2-core machine are noisy: compare runs made the same day, on the same machine.
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench import write_results
from pipeline.config import BuildConfig
from pipeline.jobs import text_bytes
from pipeline.stage import ShardContext

REPO = Path(__file__).resolve().parents[1]


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def rate(docs: int, nbytes: int, seconds: float) -> dict:
    return {
        "docs": docs,
        "mb": round(nbytes / 1e6, 3),
        "seconds": round(seconds, 3),
        "docs_per_s": round(docs / seconds, 1),
        "mb_per_s": round(nbytes / 1e6 / seconds, 3),
    }


def main() -> dict:
    from pipeline.dedup.methods import find_duplicates, signatures
    from pipeline.privacy.scrubber import run_shard as scrub
    from pipeline.quality.stage import run_shard as quality
    from pipeline.tokenizer.encode import encode_shard
    from pipeline.tokenizer.train import train_tokenizer

    cfg = BuildConfig()
    table = pa.concat_tables(pq.read_table(p) for p in sorted((REPO / "sample_data").rglob("part-*.parquet")))
    results = {"machine": platform.processor() or platform.machine(), "python": platform.python_version()}

    quality_ctx, privacy_ctx = ShardContext(cfg.quality, stage="quality"), ShardContext(cfg.privacy, stage="privacy")
    quality(table.slice(0, 50), quality_ctx)  # load the language-ID model outside the timing
    kept, seconds = timed(quality, table, quality_ctx)
    results["quality"] = rate(table.num_rows, text_bytes(table), seconds)

    sigs, seconds = timed(signatures, kept.kept, cfg.dedup)
    results["dedup_signatures"] = rate(kept.kept.num_rows, text_bytes(kept.kept), seconds)
    _, seconds = timed(find_duplicates, [sigs], cfg.dedup)
    results["dedup_clustering"] = rate(kept.kept.num_rows, 0, seconds)

    sample = kept.kept.slice(0, 1000)
    scrub(sample.slice(0, 10), privacy_ctx)  # load spaCy and presidio outside the timing
    scrubbed, seconds = timed(scrub, sample, privacy_ctx)
    results["privacy"] = rate(sample.num_rows, text_bytes(sample), seconds)

    with tempfile.TemporaryDirectory() as tmp:
        shard = Path(tmp) / "part-00000.parquet"
        pq.write_table(kept.kept, shard)
        tokenizer = Path(tmp) / "tokenizer.json"
        _, seconds = timed(train_tokenizer, [shard], cfg.tokenizer, tokenizer)
        results["tokenizer_train"] = rate(kept.kept.num_rows, text_bytes(kept.kept), seconds)
        _, seconds = timed(encode_shard, shard, tokenizer, Path(tmp), "part-00000", cfg.tokenizer, cfg.seed)
        results["tokenizer_encode"] = rate(kept.kept.num_rows, text_bytes(kept.kept), seconds)

    write_results("stage_throughput", results)
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
