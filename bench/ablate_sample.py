"""`corpus ablate` on the sample build: four variants x 3 seeds of the `tiny` preset, timed.

Target (issue 23): on sample_data with the tiny preset, a four-variant ablation with 3 seeds
finishes in at most 15 minutes on this 2-core machine. The variants are the default ones of the
sample build: raw, quality, dedup, privacy. Each run trains on TOKENS training tokens (64 steps
of 8 x 128), twice what the sample build's own model sees in its 150 s budget on this machine.

Data: the build `make run` writes (build/sample, from sample_data/ in the clone; skips without
it). It starts from scratch: it removes BUILD/ablations first, so every variant is tokenized and
every run trained. Records the wall-clock seconds, the load average before and after (the
machine is shared), the bits per byte of each variant and which differences exceed the seed
spread.

    .venv/bin/python -m bench.ablate_sample [BUILD_DIR]   # about 10 minutes
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import time
from pathlib import Path

from bench import REPO, Skip, skipping, write_results
from pipeline.ablate.run import ablate
from pipeline.ablate.variants import ABLATIONS

TOKENS = 65_536
SEEDS = 3
VARIANTS = "raw, quality, dedup, privacy"
TARGET_S = 15 * 60


def main(build_dir: Path = REPO / "build" / "sample") -> dict:
    if not (build_dir / "manifest.json").exists():
        raise Skip(f"needs the sample build {build_dir} (make run)")
    shutil.rmtree(build_dir / ABLATIONS, ignore_errors=True)
    start = time.perf_counter()
    overrides = [f"ablate.tokens={TOKENS}", f"ablate.seeds={SEEDS}", f"ablate.variants=[{VARIANTS}]"]
    summary = ablate(build_dir, overrides, preset="tiny")
    seconds = time.perf_counter() - start
    # CPU seconds of this process and its (finished) workers: what the work costs whatever the
    # load, so cpu_seconds / cores is its wall time on an otherwise idle machine.
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu_seconds = sum(u.ru_utime + u.ru_stime for u in usage)
    results = {
        "what": f"corpus ablate {build_dir.name}: {VARIANTS} x {SEEDS} seeds, tiny preset, {TOKENS:,} tokens a run",
        "seconds": round(seconds, 1),
        "target_seconds": TARGET_S,
        "meets_target": seconds <= TARGET_S,
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_seconds": round(cpu_seconds, 1),
        "idle_machine_seconds": round(cpu_seconds / len(os.sched_getaffinity(0)), 1),
        "load_average": summary["load_average"],
        "eval": summary["eval"],
        "params": summary["params"],
        "device": summary["device"],
        "variants": {
            name: {key: summary["variants"][name][key] for key in ("bpb_mean", "bpb_std", "bpb", "documents", "tokens")}
            | {"vs_raw": summary["variants"][name]["vs_raw"], "vs_baseline": summary["variants"][name]["vs_baseline"]}
            for name in summary["order"]
        },
    }
    write_results("ablate_sample", results, markdown(results))
    return results


def markdown(results: dict) -> str:
    load = results["load_average"]
    lines = [
        "# corpus ablate on the sample build",
        "",
        f"{results['what']}; {results['params']:,} parameters on {results['device']} ({results['cpus']} cores), "
        f"scored on {results['eval']['text']} ({results['eval']['tokens']:,} tokens).",
        "",
        f"**{results['seconds']:.0f} s** (target {results['target_seconds']} s: "
        f"{'met' if results['meets_target'] else 'missed'}); load average (1, 5, 15 min) "
        f"{', '.join(map(str, load['start']))} before, {', '.join(map(str, load['end']))} after. "
        f"CPU time {results['cpu_seconds']:.0f} s: {results['idle_machine_seconds']:.0f} s of wall-clock on "
        f"{results['cpus']} otherwise idle cores.",
        "",
        "| variant | training documents | bits/byte | std | vs raw | vs the stage before |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, v in results["variants"].items():
        lines.append(
            f"| {name} | {v['documents']:,} | {v['bpb_mean']:.4f} | {v['bpb_std']:.4f} "
            f"| {_versus(v['vs_raw'])} | {_versus(v['vs_baseline'])} |"
        )
    lines += ["", "A difference exceeds the seed spread (*) when |mean_a - mean_b| > std_a + std_b.", ""]
    return "\n".join(lines)


def _versus(d: dict | None) -> str:
    if d is None:
        return ""
    return f"{d['diff']:+.4f}{' *' if d['exceeds_seed_spread'] else ''} ({d['to']})"


if __name__ == "__main__":
    with skipping("ablate_sample"):
        print(markdown(main(*(Path(arg) for arg in sys.argv[1:2]))))
