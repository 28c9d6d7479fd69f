"""Pretrain the compact GPT on the token shards of a build, nanoGPT's train.py in one function.

AdamW, linear warm-up then cosine decay to a tenth of the peak rate, gradient clipping at 1.0,
gradient accumulation up to `batch_tokens` per optimizer step, bf16 autocast on CUDA (fp32 on
CPU), optional dropout, optional torch.compile; a causal or a prefix decoder objective (each
sequence's prefix length drawn from the data sampler's generator, so it resumes exactly).
Training stops at max_steps or when the wall-clock budget (final eval included) is spent,
whichever comes first; the learning-rate schedule runs on steps, so a run stopped by max_steps is
deterministic given the seed, and one stopped by the clock is the same run cut short.

Every eval_interval steps: validation loss in nats per token and in bits per byte (loss x tokens /
bytes / ln 2, comparable across tokenizers), tokens/s and MFU go to metrics.jsonl, and a
checkpoint to ckpt.pt. `cfg.resume` continues from that checkpoint exactly as if the run had not
stopped: same weights, optimizer moments, step (the learning rate is a function of it), data
position and RNG states.

Under torchrun (several processes, distributed.py) every rank runs this function: DDP averages the
gradients of the ranks' parts of each step, rank 0 evaluates and writes the metrics and the
checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from pipeline.config import PretrainConfig
from pipeline.errors import InputError
from pipeline.shards import atomic_path, write_bytes
from pipeline.train import distributed
from pipeline.train.data import TokenBatches
from pipeline.train.flops import flops_per_token, peak_flops
from pipeline.train.model import GPT, GPTConfig

GRAD_CLIP = 1.0
MIN_LR_RATIO = 0.1  # cosine decays to lr/10 (Chinchilla; nanoGPT's min_lr)
ADAM_BETAS = (0.9, 0.95)  # beta2 < 0.999 steadies small-batch training (GPT-3)


def lr_at(step: int, cfg: PretrainConfig) -> float:
    """Learning rate for optimizer step `step` (1-based)."""
    if step <= cfg.warmup_steps:
        return cfg.learning_rate * step / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    min_lr = cfg.learning_rate * MIN_LR_RATIO
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.learning_rate - min_lr)


def make_optimizer(model: GPT, cfg: PretrainConfig, device: torch.device) -> torch.optim.AdamW:
    # Decay matrices (and the embedding) only: decaying the RMSNorm gains would pull them
    # towards zero and regularise nothing.
    params = list(model.parameters())
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    # The fused CUDA kernel updates every tensor in one launch instead of several per tensor.
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=ADAM_BETAS, fused=device.type == "cuda")


def shard_paths(tokens_dir: Path, split: str) -> list[Path]:
    paths = sorted(tokens_dir.glob(f"{split}-*.bin"))
    if not paths:
        raise InputError(f"{tokens_dir}: no {split}-*.bin token shards; run the tokenizer stage first.")
    return paths


def _fixed_windows(paths: list[Path], cfg: PretrainConfig, seed: int) -> list | None:
    """The same val windows of a few shards at every eval; None when none holds a window."""
    try:
        sampler = TokenBatches(paths, cfg.block_size, cfg.batch_size, seed)
    except InputError:
        return None
    return [sampler.next_batch() for _ in range(cfg.eval_batches)]


def pick_device(cfg: PretrainConfig) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise InputError("pretrain.device is cuda but torch sees no CUDA device; set pretrain.device=auto.")
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def thread_count(cfg: PretrainConfig, ranks: distributed.Ranks) -> int:
    """The configured threads, else this process's share of the cores it may use (the processes
    of a node would otherwise each start a thread per core and oversubscribe them)."""
    return cfg.threads or max(1, len(os.sched_getaffinity(0)) // ranks.local_world)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write to a temp name and rename: a crash mid-write never leaves a torn ckpt.pt."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, model_config: GPTConfig) -> dict[str, Any]:
    state = torch.load(path, map_location="cpu", weights_only=False)  # our own file: numpy RNG state inside
    if state["model_config"] != asdict(model_config):
        raise InputError(
            f"{path}: trained with {state['model_config']}, but the config asks for {asdict(model_config)}; "
            "restore the model settings or drop --resume to start over."
        )
    return state


def metrics_until(path: Path, step: int) -> list[dict]:
    """Keep the rows up to `step` (a run killed after an eval but before its checkpoint wrote one
    more, or in the middle of appending a row: that torn last line is dropped too)."""
    lines = path.read_text().splitlines() if path.exists() else []
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines):
                raise InputError(
                    f"{path}: line {number} is not JSON; remove the file to start the curve over."
                ) from None
    rows = [r for r in rows if r["step"] <= step]
    write_bytes("".join(json.dumps(r) + "\n" for r in rows).encode(), path)
    return rows


def train(
    tokens_dir: Path,
    out_dir: Path,
    cfg: PretrainConfig,
    vocab_size: int,
    seed: int,
    val_bytes_per_token: float | None = None,
    on_progress: Callable[[dict], None] | None = None,
    val_sources: dict[str, tuple[list[Path], float]] | None = None,
    val_paths: list[Path] | None = None,
) -> dict:
    """Train (or resume); write out_dir/metrics.jsonl (one line per eval) and out_dir/ckpt.pt.

    val_paths: the validation shards (default: tokens_dir's val-*.bin); val_bytes_per_token: UTF-8
    bytes of text per token of them, for bits per byte.
    val_sources: per source, its val shards and their bytes per token: each eval then also gives
    the source's bits per byte (`val_bpb_by_source`; None for a source too small for a window).
    """
    t_start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    ranks = distributed.Ranks.from_env()
    torch.set_num_threads(thread_count(cfg, ranks))
    torch.manual_seed(seed)  # the same initial weights on every rank
    device = pick_device(cfg)
    device = distributed.start(ranks, device.type) or device  # the rank's own GPU under DDP
    ddp = ranks.world > 1
    # bf16 autocast on GPU (no loss scaling needed, unlike fp16); CPU bf16 matmuls are slower
    # than fp32 on most CPUs, so the CPU trains in fp32.
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 for what stays fp32 under autocast

    train_batches = TokenBatches(shard_paths(tokens_dir, "train"), cfg.block_size, cfg.batch_size, seed)
    # The same val windows at every eval, so a change in val loss is the model's, not the sample's.
    val_sampler = TokenBatches(val_paths or shard_paths(tokens_dir, "val"), cfg.block_size, cfg.batch_size, seed)
    val_batches = [val_sampler.next_batch() for _ in range(cfg.eval_batches)]
    source_batches = {name: _fixed_windows(paths, cfg, seed) for name, (paths, _) in (val_sources or {}).items()}

    model_config = GPTConfig(vocab_size, cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size)
    model = GPT(model_config, dropout=cfg.dropout).to(device)
    optimizer = make_optimizer(model, cfg, device)
    share = distributed.Share(ranks, cfg.grad_accum_steps, cfg.batch_size)
    ckpt_path, metrics_path = out_dir / "ckpt.pt", out_dir / "metrics.jsonl"
    step, rows = 0, []
    if cfg.resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, model_config)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        train_batches.load_state_dict(state["data_rng"])
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        step = state["step"]
        rows = metrics_until(metrics_path, step) if ranks.main else []
    elif ranks.main:
        metrics_path.write_text("")  # a fresh run replaces the previous run's curve
    resumed_from = step
    # The compiled module shares the weights; checkpoints save the plain one (no _orig_mod. keys).
    # On CUDA, "reduce-overhead" replays each step's kernels as a CUDA graph: at nanoGPT's size
    # (6 x 384) the H100 idled half of every step while the CPU launched the kernels one by one;
    # graphs about doubled the throughput (bench/results/pretrain_shakespeare.md). Not under DDP:
    # CUDA graphs with DDP's gradient hooks are untested here (no GPU was lent when DDP was added),
    # and nanoGPT's DDP recipe compiles in the default mode.
    mode = "reduce-overhead" if device.type == "cuda" and not ddp else None
    evaluate = torch.compile(model, mode=mode) if cfg.compile else model
    # nanoGPT's order: compile, then wrap; evals use the unwrapped module (no gradient hooks).
    forward = (
        torch.nn.parallel.DistributedDataParallel(evaluate, device_ids=[device] if device.type == "cuda" else None)
        if ddp
        else evaluate
    )

    accum = cfg.grad_accum_steps
    tokens_per_step = accum * cfg.batch_size * cfg.block_size
    flops_per_step = flops_per_token(model_config, model.num_params()) * tokens_per_step
    peak = peak_flops(device, cfg.peak_flops)
    elapsed_before = rows[-1]["elapsed_s"] if rows else 0.0  # the interrupted run's time, for the curve

    def mfu(steps: int, seconds: float) -> float | None:
        # A step's FLOPs are spread over every rank's device.
        return steps * flops_per_step / seconds / (peak * ranks.world) if peak and seconds else None

    def loss_on(
        x: torch.Tensor, y: torch.Tensor, prefix: torch.Tensor | None = None, module: torch.nn.Module = forward
    ) -> torch.Tensor:
        """prefix: (B,) prefix lengths for a prefix decoder; None reads the batch causally."""
        inputs = [t for t in (x, y, prefix) if t is not None]
        if device.type == "cuda":  # page-locked, so the copy overlaps the previous step's kernels
            inputs = [t.pin_memory() for t in inputs]
        with autocast:
            _, loss = module(*(t.to(device, non_blocking=True) for t in inputs))
        return loss

    @torch.no_grad()
    def val_loss(batches: list) -> float:
        # Eval mode switches dropout off (the val loss is the model's, not a noisy draw of it),
        # and draws no random numbers: a run's RNG stream is the same whatever its eval_interval.
        model.eval()
        loss = sum(loss_on(x, y, module=evaluate).item() for x, y in batches) / len(batches)
        model.train()
        return loss

    def source_bpb() -> dict[str, float | None]:
        return {
            name: None if batches is None else round(val_loss(batches) / math.log(2) / val_sources[name][1], 4)
            for name, batches in source_batches.items()
        }

    eval_seconds = 0.0  # how long the latest eval + checkpoint took: the final one must fit in the budget

    def log_eval(train_loss: float | None, step_seconds: float, steps_timed: int) -> dict:
        nonlocal eval_seconds
        t_eval = time.perf_counter()
        loss = val_loss(val_batches)
        tokens_per_s = steps_timed * tokens_per_step / step_seconds if steps_timed else None
        row = {
            "step": step,
            "train_loss": None if train_loss is None else round(train_loss, 4),
            "val_loss": round(loss, 4),
            "val_bpb": None if val_bytes_per_token is None else round(loss / math.log(2) / val_bytes_per_token, 4),
            "lr": lr_at(step, cfg) if step else 0.0,
            "tokens_per_s": None if tokens_per_s is None else round(tokens_per_s, 1),
            # Significant digits: a tiny model on a GPU uses ~1e-5 of its peak, which 4 decimals zero.
            "mfu": None if (m := mfu(steps_timed, step_seconds)) is None else float(f"{m:.3g}"),
            "elapsed_s": round(elapsed_before + time.perf_counter() - t_start, 2),
        }
        if source_batches:
            row["val_bpb_by_source"] = source_bpb()
        with open(metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        rows.append(row)
        if step:
            save_checkpoint(
                ckpt_path,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "model_config": asdict(model_config),
                    "config": cfg.model_dump(mode="json"),  # with the step, this fixes the lr schedule
                    "step": step,
                    "seed": seed,
                    "data_rng": train_batches.state_dict(),  # the next batch to draw
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                },
            )
        eval_seconds = time.perf_counter() - t_eval
        return row

    if step == 0 and ranks.main:
        log_eval(None, 0.0, 0)  # the untrained model: ~ln(vocab_size)

    train_seconds, steps_timed = 0.0, 0  # optimizer steps only: throughput excludes evals
    window_losses: list[float] = []  # training since the last eval
    window_seconds, window_timed = 0.0, 0
    out_of_time = False
    while step < cfg.max_steps and not out_of_time:
        t_step = time.perf_counter()
        step += 1
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        step_loss = torch.zeros((), device=device)
        last = max(k for k in range(accum) if share.takes(k))
        for k in range(accum):
            # Every rank draws every micro-batch (and prefix), so all keep the one sampler stream.
            x, y = train_batches.next_batch()
            prefix = train_batches.prefix_lengths() if cfg.objective == "prefix_lm" else None
            if not share.takes(k):
                continue
            # Mean over the micro-batches: the gradient of one batch of batch_tokens tokens. DDP
            # averages over the ranks when the rank's last part is done, not at every part.
            with forward.no_sync() if ddp and k != last else nullcontext():
                loss = loss_on(share.rows(x), share.rows(y), share.rows(prefix)) / share.micro_batches
                loss.backward()
            step_loss += loss.detach()
        if ddp:
            step_loss = distributed.mean_over_ranks(step_loss)
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        window_losses.append(step_loss.item())  # also waits for the GPU, so the timing is real
        # The first step of a process pays for torch.compile's compilation and CUDA's lazy
        # start-up (tens of seconds on a cold cache, thousands of small GPU steps): timed, it would
        # hide the step rate.
        if step > resumed_from + 1:
            window_seconds += time.perf_counter() - t_step
            window_timed += 1
        if on_progress is not None:
            on_progress({"step": step, "max_steps": cfg.max_steps, "loss": window_losses[-1]})
        out_of_time = time.perf_counter() - t_start + eval_seconds >= cfg.time_budget_s
        if ddp:
            out_of_time = distributed.from_main(out_of_time, device)
        if step % cfg.eval_interval == 0 or step == cfg.max_steps or out_of_time:
            if ranks.main:
                log_eval(sum(window_losses) / len(window_losses), window_seconds, window_timed)
            train_seconds += window_seconds
            steps_timed += window_timed
            window_losses, window_seconds, window_timed = [], 0.0, 0

    tokens_per_s = steps_timed * tokens_per_step / train_seconds if train_seconds else 0.0
    return {
        "initial_val_loss": rows[0]["val_loss"] if rows else None,
        "final_val_loss": rows[-1]["val_loss"] if rows else None,
        "final_val_bpb": rows[-1]["val_bpb"] if rows else None,
        "final_val_bpb_by_source": rows[-1].get("val_bpb_by_source") if rows else None,
        "steps": step,
        "resumed_from": resumed_from,
        "tokens_seen": step * tokens_per_step,
        "tokens_per_s": tokens_per_s,
        "mfu": mfu(steps_timed, train_seconds),
        "params": model.num_params(),
        "device": device.type,
        "seconds": time.perf_counter() - t_start,
    }
