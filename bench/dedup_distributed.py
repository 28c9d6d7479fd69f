"""The dedup clustering in tasks (pipeline/dedup/distributed.py) on a Dask LocalCluster of several
worker processes with a per-worker memory limit: wall time, every worker's peak RSS, the bytes the
tasks write (the shuffle), and, where the one-process clustering fits, whether the decisions are
identical to `find_duplicates`'.

Two kinds of input:
- `--text-sizes`: documents generated from real text with planted copies exactly as
  bench/dedup_scale.py generates them, their signatures computed by the dedup stage's own step
  (in a 2-process pool); both clusterings run, the one-process one in a fresh process of its own
  (its peak RSS is its alone), and their decisions are compared.
- `--signature-sizes`: signature files generated directly (no text), for sizes whose texts would
  not fit this machine's time: MinHash values drawn at random for originals; of every 10
  documents 1 an exact copy of a recent original (same exact key and values) and 1 a near copy
  (4-30 of its 128 values redrawn: estimated Jaccard 0.77-0.97, so some fall below the 0.8
  threshold), band keys by the stage's own `band_keys`; 5 line hashes per document, 2% with one of
  20 footers. Only the clustering in tasks runs (the one-process clustering needs ~1.4 KB per
  document, bench/results/dedup_scale.md).

Run: .venv/bin/python -m bench.dedup_distributed [--text-sizes 1000000] [--signature-sizes 10000000]
     [--workers 4] [--memory-limit 1.5GB] [--partition-rows 250000] [--shard-docs 100000]
Needs ../shared/data/corpora (for --text-sizes; bench/dedup_scale.py says which files); skips
without them. Work goes to $TMPDIR/dedup_distributed_*, removed after.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from bench import needs_data, skipping, write_results
from bench.dedup_scale import TEXTS, generate, global_step

WORKERS, MEMORY_LIMIT, PARTITION_ROWS = 4, "1.5GB", 250_000


def text_signatures(n: int, work: Path) -> tuple[list[Path], dict]:
    """Generated documents' signatures, by the dedup stage's signature step, and its context."""
    import pyarrow.parquet as pq

    from pipeline import steps
    from pipeline.config import BuildConfig
    from pipeline.jobs import run_job
    from pipeline.shards import InputShard
    from pipeline.sources import build_sources
    from pipeline.stages import registry

    generate(n, work / "input")
    cfg = BuildConfig.model_validate({"dedup": {"containment": False, "cluster_partition_rows": n}})
    dedup = registry.get("dedup")
    paths = sorted((work / "input").glob("part-*.parquet"))
    inputs = [InputShard(p.stem, p, p, pq.read_metadata(p).num_rows) for p in paths]
    ctx = steps.build_context(work / "build", dedup, inputs, cfg, build_sources(cfg, str(work / "input")))
    jobs = steps.shard_jobs(dedup, dedup.steps[0], ctx)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        ctx.records[dedup.steps[0].name] = list(pool.map(run_job, jobs))
    files = [ctx.folder / record["outputs"][0] for record in ctx.records[dedup.steps[0].name]]
    return files, ctx


def generated_signatures(n: int, folder: Path, shard_docs: int, seed: int = 0) -> list[Path]:
    """Signature files of n generated documents (see the module docstring), shard_docs a file."""
    import pyarrow as pa

    from pipeline.config import DedupConfig
    from pipeline.dedup.lines import LINE_HASH
    from pipeline.dedup.methods import signature_schema
    from pipeline.dedup.minhash import band_columns, band_keys
    from pipeline.shards import write_shard

    cfg = DedupConfig()
    schema = signature_schema(cfg)
    rng = np.random.default_rng(seed)
    footers = rng.integers(0, 2**63, 20, dtype=np.uint64)
    recent = np.zeros((1000, 128), dtype=np.uint32)  # the last 1000 originals' values and keys
    recent_keys = np.zeros((1000, 16), dtype=np.uint8)
    kept = 0
    files = []
    for start in range(0, n, shard_docs):
        m = min(shard_docs, n - start)
        i = np.arange(start, start + m)
        kind = np.where((i < 10) | (i % 10 < 8), 0, np.where(i % 10 == 8, 1, 2))  # original, exact, near
        values = rng.integers(0, 2**32, (m, 128), dtype=np.uint32)
        keys = rng.integers(0, 256, (m, 16), dtype=np.uint8)
        for row in range(m):  # copies refer to originals before them, so row by row
            if kind[row] == 0:
                recent[kept % 1000], recent_keys[kept % 1000] = values[row], keys[row]
                kept += 1
                continue
            source = rng.integers(0, min(kept, 1000))
            if kind[row] == 1:
                values[row], keys[row] = recent[source], recent_keys[source]
            else:
                redrawn = rng.choice(128, rng.integers(4, 31), replace=False)
                fresh = values[row, redrawn]
                values[row] = recent[source]
                values[row, redrawn] = fresh
        bands = band_keys(values, cfg.minhash)
        lines = rng.integers(0, 2**63, (m, 5), dtype=np.uint64)
        lines[rng.random(m) < 0.02, 0] = rng.choice(footers, 1)
        table = pa.table(
            {
                "id": [f"d{k:09d}" for k in i],
                "length": rng.integers(200, 500, m),
                "source": pa.nulls(m, pa.string()),
                "exact_key": [bytes(k) for k in keys],
                "minhash": [row.tobytes() for row in values],
                "shingles": np.full(m, 60, dtype=np.int32),
                **{name: bands[:, b] for b, name in enumerate(band_columns(cfg.minhash))},
                "line_hashes": pa.array([sorted(set(r)) for r in lines.tolist()], LINE_HASH),
            },
            schema=schema,
        )
        files.append(folder / f"part-{start // shard_docs:05d}.parquet")
        write_shard(table, files[-1])
    return files


def in_tasks(files: list[Path], work: Path, workers: int, memory_limit: str, partition_rows: int) -> dict:
    """The clustering in tasks on a fresh LocalCluster: wall time, each worker's peak RSS, the
    bytes its tasks wrote by kind."""
    from distributed import Client, LocalCluster

    from flows.cluster import DaskTasks
    from pipeline.config import DedupConfig
    from pipeline.dedup.distributed import find_duplicates_distributed, peak_rss, plan

    cfg = DedupConfig(containment=False, cluster_partition_rows=partition_rows)
    outs = [work / "decisions" / f.name for f in files]
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            memory_limit=memory_limit,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        base, cpu = client.run(peak_rss), client.run(cpu_seconds)
        start = time.perf_counter()
        the_plan = plan(files, cfg, [], work / "tasks")
        ran = find_duplicates_distributed(the_plan, outs, DaskTasks(cluster.scheduler_address, 300, "bench").map)
        wall = time.perf_counter() - start
        peaks = client.run(peak_rss)
        cpu = sum(client.run(cpu_seconds).values()) - sum(cpu.values())
    written = {
        kind.name: sum(f.stat().st_size for f in kind.rglob("*.parquet")) for kind in sorted((work / "tasks").iterdir())
    }
    return {
        "wall_s": round(wall, 1),
        "worker_cpu_s": round(cpu, 1),
        "workers": workers,
        "memory_limit": memory_limit,
        "partition_rows": partition_rows,
        "key_partitions": len(the_plan.slots) * the_plan.ranges,
        "parts": the_plan.parts,
        "tasks": ran["tasks"],
        "rounds": ran["rounds"],
        "worker_base_rss_mb": round(max(base.values()) / 2**20),
        "worker_peak_rss_mb": sorted(round(p / 2**20) for p in peaks.values()),
        "written_mb": {kind: round(size / 2**20) for kind, size in written.items()},
        "outs": [str(o) for o in outs],
    }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def one_process(ctx) -> dict:
    """`find_duplicates` in a fresh process (the dedup stage's step with the one-process path)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=one_process_step, args=(ctx, queue))
    process.start()
    decided = queue.get()
    process.join()
    return decided


def one_process_step(ctx, queue: multiprocessing.Queue) -> None:
    """bench.dedup_scale's global step, with the peak RSS as VmHWM: its ru_maxrss comes from this
    bench's process, which generated the texts (Linux keeps ru_maxrss across fork + exec)."""
    from pipeline.dedup.distributed import peak_rss

    inner = multiprocessing.Queue()
    global_step(ctx, inner)
    queue.put(inner.get() | {"peak_rss_bytes": peak_rss()})


def same_decisions(local: str, outs: list[str]) -> bool:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tasks = pa.concat_tables(pq.read_table(o) for o in outs).sort_by("id")
    return pq.read_table(local).equals(tasks)


def run(n: int, kind: str, args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"dedup_distributed_{n}_"))
    try:
        start = time.perf_counter()
        if kind == "text":
            files, ctx = text_signatures(n, work)
        else:
            files, ctx = generated_signatures(n, work / "signatures", args.shard_docs), None
        row = {
            "documents": n,
            "input": kind,
            "shards": len(files),
            "signatures_s": round(time.perf_counter() - start, 1),
        }
        row["signature_bytes_per_doc"] = round(sum(f.stat().st_size for f in files) / n)
        row |= in_tasks(files, work / "distributed", args.workers, args.memory_limit, args.partition_rows)
        if ctx is not None:
            decided = one_process(ctx)
            row["one_process_wall_s"] = round(decided["wall_s"], 1)
            row["one_process_peak_rss_mb"] = round(decided["peak_rss_bytes"] / 2**20)
            row["identical_decisions"] = same_decisions(decided["decisions"], row["outs"])
        del row["outs"]
        row["loadavg"] = os.getloadavg()
        return row
    finally:
        shutil.rmtree(work, ignore_errors=True)


def markdown(rows: list[dict]) -> str:
    lines = [
        "# Dedup clustering in tasks on a Dask LocalCluster (bench/dedup_distributed.py)",
        "",
        "pipeline/dedup/distributed.py on a LocalCluster of worker processes (1 thread each) with a",
        "memory limit per worker, on this 2-core machine shared with other jobs (load average in the",
        "last column): wall times are those of 2 cores, not of the workers' count. `text`: documents",
        "generated from real text as bench/dedup_scale.py does, with the one-process clustering",
        "(`find_duplicates`) run too and its decisions compared; `signatures`: signature files",
        "generated directly (module docstring), the one-process clustering not run.",
        "",
        "| documents | input | shards | workers x limit | partition rows | key partitions / parts | tasks | CC rounds | wall / workers' CPU s (tasks) | worker peak RSS MB (base) | written by the tasks MB | one process: wall s / peak RSS MB | identical decisions | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        written = ", ".join(f"{k} {v:,}" for k, v in r["written_mb"].items())
        one = (
            f"{r['one_process_wall_s']} / {r['one_process_peak_rss_mb']:,}" if "one_process_wall_s" in r else "not run"
        )
        lines.append(
            f"| {r['documents']:,} | {r['input']} | {r.get('shards', '-')} | {r['workers']} x {r['memory_limit']} | {r['partition_rows']:,} "
            f"| {r['key_partitions']} / {r['parts']} | {r['tasks']:,} | {r['rounds']} | {r['wall_s']} / {r.get('worker_cpu_s', '-')} "
            f"| {max(r['worker_peak_rss_mb']):,} ({r['worker_base_rss_mb']}) | {written} | {one} "
            f"| {r.get('identical_decisions', 'not compared')} | {r['loadavg'][0]:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> list[dict]:
    text_sizes = [int(s) for s in args.text_sizes.split(",") if s]
    if text_sizes:
        needs_data(*TEXTS)
    rows = []
    for kind, sizes in (("text", text_sizes), ("signatures", [int(s) for s in args.signature_sizes.split(",") if s])):
        for n in sizes:
            rows.append(run(n, kind, args))
            print(json.dumps(rows[-1]), flush=True)
            write_results(args.results, rows, markdown(rows))  # after each size: a later one may not fit
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--text-sizes", default="100000")
    parser.add_argument("--signature-sizes", default="")
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--memory-limit", default=MEMORY_LIMIT)
    parser.add_argument("--partition-rows", type=int, default=PARTITION_ROWS)
    parser.add_argument("--shard-docs", type=int, default=100_000, help="documents per generated signature file")
    parser.add_argument("--results", default="dedup_distributed")
    with skipping("dedup_distributed"):
        main(parser.parse_args())
