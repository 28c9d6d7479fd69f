"""`corpus ablate`: did this stage, this threshold, this mixture make a better model?

FineWeb and DCLM chose their filters by training small models on corpus variants at an equal
token budget and comparing them; this runs that loop on a finished build. Every variant
(variants.py) is tokenized as the build was (data.py), the build's compact model is trained on
it for the same number of tokens with each of the same seeds (the pretrain stage's loop, stopped
by steps, never by the clock, so every run sees exactly the same number of tokens), and every
model is scored on the same text (evaluate.py). A difference between two variants counts when it
exceeds the seed spread: |mean_a - mean_b| > std_a + std_b (sample standard deviations over the
seeds), i.e. the two mean +- std intervals do not touch.

Runs go to a pool of worker processes, one torch thread each: on a shared CPU, threads that wait
on each other at every op stall whenever one is descheduled (docs/pretraining.md), and a run on
one thread gives the same numbers whatever the pool's size. Each run resumes from its checkpoint
and is skipped once its result is written (ablations/<variant>/seed-<n>/result.json), so a rerun
trains only what is missing. Results: ablations/results.json and ablations/bpb.png.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

from pipeline.ablate import data, evaluate
from pipeline.ablate.evaluate import ALL, EvalText
from pipeline.ablate.variants import ABLATIONS, RAW, Build, check, default_variants, first_text_stage, spec
from pipeline.config import PRETRAIN_PRESETS, PretrainConfig, VariantConfig
from pipeline.errors import InputError
from pipeline.shards import combined_fingerprint, write_bytes, write_json
from pipeline.stages import registry
from pipeline.stats.report import ablations_charts

NEVER = 1e9  # seconds: a run stops at its step budget, so every run sees the same tokens


class Hook:
    """Progress as the CLI draws it (flows/progress.py's ProgressHook); silent by default."""

    def start(self, key: str, total: int, unit: str, label: str) -> None: ...
    def advance(self, key: str, amount: int = 1, completed: int | None = None, total: int | None = None) -> None: ...
    def finish(self, key: str, note: str = "") -> None: ...


@dataclass(frozen=True)
class RunJob:
    """One training run: a variant's tokens, a seed, the shared settings and evaluation text."""

    variant: str
    seed: int
    tokens_dir: Path
    run_dir: Path
    cfg: PretrainConfig
    vocab_size: int
    text: EvalText
    fingerprint: str

    @property
    def result_path(self) -> Path:
        return self.run_dir / "result.json"

    def finished(self) -> dict | None:
        if self.result_path.exists():
            result = json.loads(self.result_path.read_text())
            if result.get("fingerprint") == self.fingerprint:
                return result
        return None


def run_config(build: Build, preset: str | None) -> PretrainConfig:
    """The build's pretrain settings, or another preset's sizes with the build's other settings."""
    data_ = build.config.pretrain.model_dump()
    if preset:
        preset_keys = {key for values in PRETRAIN_PRESETS.values() for key in values}
        data_ = {k: v for k, v in data_.items() if k not in preset_keys} | {"preset": preset}
    return PretrainConfig.model_validate(data_)


def select(build: Build, names: list[str], defined: list[VariantConfig]) -> list[VariantConfig]:
    """The variants to train: the named ones (default and defined), or every one of both."""
    defaults = default_variants(build)
    known = {v.name: v for v in defaults} | {v.name: v for v in defined}
    if not names:
        return list(known.values())
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InputError(f"--variants: no variant {unknown[0]!r}; choose from {', '.join(known)} or define it.")
    return [known[name] for name in names]


def ablate(
    build_dir: Path,
    overrides: list[str] | None = None,
    variants: list[VariantConfig] | None = None,
    preset: str | None = None,
    workers: int = 0,
    hook: Hook | None = None,
) -> dict:
    """Train and score every variant; write and return ablations/results.json.

    overrides: `--set` keys over the build's recorded config (`ablate.*` for the ablation's own
    settings, `pretrain.*` for the model); variants: more variants beside the config's."""
    hook = hook or Hook()
    start, load_before = time.perf_counter(), os.getloadavg()
    build = Build.open(build_dir, overrides)
    settings = build.config.ablate
    chosen = select(build, settings.variants, [*settings.define, *(variants or [])])
    for variant in chosen:
        check(variant, build)
    out = build.dir / ABLATIONS
    cfg = run_config(build, preset)
    tokens_per_step = cfg.grad_accum_steps * cfg.batch_size * cfg.block_size
    budget = settings.tokens or cfg.max_steps * tokens_per_step
    steps = math.ceil(budget / tokens_per_step)
    # One torch thread per run unless the build set its own (see the module docstring). The
    # trainer's own validation (random windows, at every checkpoint) scores nothing here, so one
    # batch of it is enough; evaluate.py scores every model on the whole evaluation text.
    cfg = cfg.model_copy(
        update={
            "max_steps": steps,
            "time_budget_s": NEVER,
            "resume": True,
            "threads": cfg.threads or 1,
            "eval_batches": 1,
        }
    )
    text = evaluate.held_out(build, settings.eval, out / "_eval") if settings.eval else evaluate.validation_split(build)

    hook.start("ablate_data", len(chosen), "variants", "ablate: variant tokens")
    prepared = {}
    for variant in chosen:
        prepared[variant.name] = data.prepare(build, variant, out / variant.name)
        hook.advance("ablate_data")
    hook.finish("ablate_data", f"{len(chosen)} variants, {budget:,} training tokens a run")

    seeds = [build.config.seed + k for k in range(settings.seeds)]
    vocab_size = int(build.summary(registry.get("tokenizer"))["vocab_size"])
    jobs = [
        RunJob(
            variant.name,
            seed,
            out / variant.name,
            out / variant.name / f"seed-{seed}",
            cfg,
            vocab_size,
            text,
            combined_fingerprint(
                [prepared[variant.name]["fingerprint"], text.fingerprint, cfg.model_dump_json(), str(seed)]
            ),
        )
        for variant in chosen
        for seed in seeds
    ]
    results = run_all(jobs, steps, workers or (1 if cfg.device == "cuda" else len(os.sched_getaffinity(0))), hook)
    summary = summarise(build, chosen, prepared, results, cfg, text, budget, seeds)
    summary |= {
        "seconds": round(time.perf_counter() - start, 1),
        "load_average": {"start": [round(x, 2) for x in load_before], "end": [round(x, 2) for x in os.getloadavg()]},
    }
    write_json(summary, out / "results.json")
    write_bytes(ablations_charts(summary, "")["ablations"], out / "bpb.png")
    return summary


def run_all(jobs: list[RunJob], steps: int, workers: int, hook: Hook) -> dict[tuple[str, int], dict]:
    """Every job's result: finished ones read back, the others trained `workers` at a time, each
    variant's progress bar counting its runs' steps."""
    results, todo = {}, []
    for job in jobs:
        if (done := job.finished()) is not None:
            results[(job.variant, job.seed)] = done
        else:
            todo.append(job)
    variants = list(dict.fromkeys(job.variant for job in jobs))
    done_steps: dict[tuple[str, int], int] = {(j.variant, j.seed): steps for j in jobs if j not in todo}
    for name in variants:
        runs = [j for j in jobs if j.variant == name]
        hook.start(f"ablate:{name}", steps * len(runs), "steps", f"ablate: {name}")
        hook.advance(
            f"ablate:{name}", completed=sum(done_steps.get((name, j.seed), 0) for j in runs), total=steps * len(runs)
        )

    def show(variant: str) -> None:
        total = sum(n for (v, _), n in done_steps.items() if v == variant)
        hook.advance(f"ablate:{variant}", completed=total, total=steps * sum(j.variant == variant for j in jobs))

    if todo:
        context = multiprocessing.get_context("spawn")  # no worker inherits the caller's threads
        with context.Manager() as manager, ProcessPoolExecutor(min(workers, len(todo)), context) as pool:
            queue = manager.Queue()
            futures = {pool.submit(train_and_score, job, queue): job for job in todo}
            while any(not f.done() for f in futures) or not queue.empty():
                try:
                    variant, seed, step = queue.get(timeout=0.2)
                except Empty:
                    continue
                done_steps[(variant, seed)] = step
                show(variant)
            for future, job in futures.items():
                results[(job.variant, job.seed)] = future.result()  # a run's error surfaces here
    for name in variants:
        runs = [results[(name, seed)]["bpb"] for (v, seed) in results if v == name]
        hook.finish(f"ablate:{name}", f"{statistics.fmean(runs):.4f} bits/byte")
    return results


def train_and_score(job: RunJob, queue: Any = None) -> dict:
    """Train one run (resuming its checkpoint when it has one), score it, write its result."""
    from pipeline.train.loop import pick_device, train
    from pipeline.train.sample import load_model

    marker = job.run_dir / "_run.json"
    if not marker.exists() or json.loads(marker.read_text()).get("fingerprint") != job.fingerprint:
        shutil.rmtree(job.run_dir, ignore_errors=True)  # another variant's or setting's run: start over
        write_json({"fingerprint": job.fingerprint}, marker)
    on_step: Callable[[dict], None] | None = None
    if queue is not None:
        on_step = lambda p: queue.put((job.variant, job.seed, p["step"]))  # noqa: E731
    paths, nbytes = job.text.groups[ALL]
    record = train(
        job.tokens_dir,
        job.run_dir,
        job.cfg,
        job.vocab_size,
        job.seed,
        nbytes / job.text.tokens,
        on_step,
        None,
        list(paths),
    )
    device = pick_device(job.cfg)
    bpb = evaluate.bits_per_byte(load_model(job.run_dir / "ckpt.pt", device), job.text, job.cfg.batch_size, device)
    keys = ("steps", "tokens_seen", "tokens_per_s", "mfu", "params", "device", "seconds", "resumed_from")
    result = {"fingerprint": job.fingerprint, "variant": job.variant, "seed": job.seed, "bpb": bpb[ALL]}
    result |= {"bpb_by_group": bpb} | {key: record[key] for key in keys}
    write_json(result, job.result_path)
    return result


def _stats(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def difference(a: dict, b: dict, name: str) -> dict:
    """a - b in bits per byte, against the two seed spreads."""
    diff, spread = a["bpb_mean"] - b["bpb_mean"], a["bpb_std"] + b["bpb_std"]
    return {"to": name, "diff": round(diff, 6), "spread": round(spread, 6), "exceeds_seed_spread": abs(diff) > spread}


def baseline(variant: VariantConfig, chosen: list[VariantConfig]) -> str | None:
    """What a variant is compared with besides raw: a stage's variant with the text stage before
    it; a defined variant with the plain variant of its stage."""
    names = [v.name for v in chosen]
    plain = [v.name for v in chosen if v.name == v.stage]
    if variant.name == variant.stage:
        before = plain[: plain.index(variant.name)]
        return before[-1] if before else None
    return variant.stage if variant.stage in names else None


def speed(timed: list[dict]) -> dict:
    """Mean tokens/s and MFU over the runs that timed training steps (a run resumed from its
    last checkpoint trains none, so it has no speed of its own)."""
    mfus = [r["mfu"] for r in timed if r["mfu"] is not None]
    return {
        "tokens_per_s": round(statistics.fmean(r["tokens_per_s"] for r in timed), 1) if timed else None,
        "mfu": float(f"{statistics.fmean(mfus):.3g}") if mfus else None,
    }


def summarise(
    build: Build,
    chosen: list[VariantConfig],
    prepared: dict,
    results: dict,
    cfg: PretrainConfig,
    text: EvalText,
    budget: int,
    seeds: list[int],
) -> dict:
    variants: dict[str, dict] = {}
    for variant in chosen:
        runs = [results[(variant.name, seed)] for seed in seeds]
        mean, std = _stats([r["bpb"] for r in runs])
        groups = [g for g in runs[0]["bpb_by_group"] if g != ALL]
        record = prepared[variant.name]
        variants[variant.name] = {
            "spec": spec(variant),
            "stage": variant.stage,
            "documents": record["train_docs"],
            "train_tokens": record["mixture"]["train_tokens"],
            "mixture": {name: s["realised_share"] for name, s in record["mixture"]["sources"].items()},
            "bpb_mean": round(mean, 6),
            "bpb_std": round(std, 6),
            "bpb": [r["bpb"] for r in runs],
            "seeds": seeds,
            "tokens": runs[0]["tokens_seen"],
            "tokens_per_run": [r["tokens_seen"] for r in runs],
            "bpb_by_source": {g: round(statistics.fmean(r["bpb_by_group"][g] for r in runs), 6) for g in groups},
            **speed([r for r in runs if r["tokens_per_s"]]),
        }
    for variant in chosen:
        entry = variants[variant.name]
        entry["vs_raw"] = difference(entry, variants[RAW], RAW) if RAW in variants and variant.name != RAW else None
        other = baseline(variant, chosen)
        entry["vs_baseline"] = difference(entry, variants[other], other) if other else None
    first = next(iter(results.values()))
    return {
        "eval": {"text": text.description, "bytes": text.groups[ALL][1], "tokens": text.tokens},
        "preset": cfg.preset,
        "objective": cfg.objective,
        "params": first["params"],
        "device": first["device"],
        "steps": cfg.max_steps,
        "tokens": budget,
        "seeds": seeds,
        "spread_rule": "a difference exceeds the seed spread when |mean_a - mean_b| > std_a + std_b",
        "first_text_stage": first_text_stage().name,
        "order": list(variants),  # results.json sorts its keys: this is the order they ran in
        "variants": variants,
    }
