"""Pretrain the compact GPT on the token shards of a build, nanoGPT's train.py in one function.

AdamW, linear warm-up then cosine decay to a tenth of the peak rate, gradient clipping at 1.0.
Training stops at max_steps or when the wall-clock budget (final eval included) is spent,
whichever comes first; the learning-rate schedule runs on steps, so a run stopped by max_steps
is deterministic given the seed, and one stopped by the clock is the same run cut short.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch

from pipeline.config import PretrainConfig
from pipeline.errors import InputError
from pipeline.train.data import TokenBatches
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


def make_optimizer(model: GPT, cfg: PretrainConfig) -> torch.optim.AdamW:
    # Decay matrices (and the embedding) only: decaying the RMSNorm gains would pull them
    # towards zero and regularise nothing.
    params = list(model.parameters())
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=ADAM_BETAS)


def shard_paths(tokens_dir: Path, split: str) -> list[Path]:
    paths = sorted(tokens_dir.glob(f"{split}-*.bin"))
    if not paths:
        raise InputError(f"{tokens_dir}: no {split}-*.bin token shards; run the tokenizer stage first.")
    return paths


def pick_device(cfg: PretrainConfig) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise InputError("pretrain.device is cuda but torch sees no CUDA device; set pretrain.device=auto.")
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write to a temp name and rename: a crash mid-write never leaves a torn ckpt.pt."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(
    tokens_dir: Path,
    out_dir: Path,
    cfg: PretrainConfig,
    vocab_size: int,
    seed: int,
    on_progress: Callable[[dict], None] | None = None,
) -> dict:
    """Train from scratch; write out_dir/metrics.jsonl (one line per eval) and out_dir/ckpt.pt."""
    t_start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads or len(os.sched_getaffinity(0)))  # the cores this process may use
    torch.manual_seed(seed)
    device = pick_device(cfg)
    # bf16 autocast on GPU (no loss scaling needed, unlike fp16); CPU bf16 matmuls are slower
    # than fp32 on most CPUs, so the CPU trains in fp32.
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()

    train_batches = TokenBatches(shard_paths(tokens_dir, "train"), cfg.block_size, cfg.batch_size, seed)
    # The same val windows at every eval, so a change in val loss is the model's, not the sample's.
    val_sampler = TokenBatches(shard_paths(tokens_dir, "val"), cfg.block_size, cfg.batch_size, seed)
    val_batches = [val_sampler.next_batch() for _ in range(cfg.eval_batches)]

    model_config = GPTConfig(vocab_size, cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size)
    model = GPT(model_config).to(device)
    optimizer = make_optimizer(model, cfg)

    def loss_on(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with autocast:
            _, loss = model(x.to(device, non_blocking=True), y.to(device, non_blocking=True))
        return loss

    @torch.no_grad()
    def val_loss() -> float:
        # The model has no dropout, so train and eval modes compute the same function.
        return sum(loss_on(x, y).item() for x, y in val_batches) / len(val_batches)

    metrics_path = out_dir / "metrics.jsonl"
    metrics_path.write_text("")  # a rerun replaces the previous run's curve
    tokens_per_step = cfg.batch_size * cfg.block_size

    eval_seconds = 0.0  # how long the latest eval took: the final one must fit in the budget

    def log_eval(step: int, train_loss: float, tokens_per_s: float | None) -> float:
        nonlocal eval_seconds
        t_eval = time.perf_counter()
        loss = val_loss()
        eval_seconds = time.perf_counter() - t_eval
        row = {
            "step": step,
            "train_loss": round(train_loss, 4),
            "val_loss": round(loss, 4),
            "tokens_per_s": None if tokens_per_s is None else round(tokens_per_s, 1),
            "elapsed_s": round(time.perf_counter() - t_start, 2),
        }
        with open(metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        return loss

    x, y = train_batches.next_batch()
    with torch.no_grad():
        initial_train_loss = loss_on(x, y).item()  # step 0's train loss: the first batch, untrained
    initial_val_loss = last_val_loss = log_eval(0, initial_train_loss, None)

    step = 0
    train_seconds = 0.0  # time in optimizer steps only: throughput excludes evals
    window_losses: list[float] = []  # training since the last eval
    window_seconds = 0.0
    while True:
        t_step = time.perf_counter()
        step += 1
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        loss = loss_on(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()
        x, y = train_batches.next_batch()  # drawn here so step 0's eval saw the batch step 1 uses
        window_losses.append(loss.item())
        window_seconds += time.perf_counter() - t_step
        if on_progress is not None:
            on_progress({"step": step, "max_steps": cfg.max_steps, "loss": window_losses[-1]})
        out_of_time = time.perf_counter() - t_start + eval_seconds >= cfg.time_budget_s
        done = step >= cfg.max_steps or out_of_time
        if step % cfg.eval_interval == 0 or done:
            train_loss = sum(window_losses) / len(window_losses)
            last_val_loss = log_eval(step, train_loss, len(window_losses) * tokens_per_step / window_seconds)
            train_seconds += window_seconds
            window_losses, window_seconds = [], 0.0
        if done:
            break

    save_checkpoint(
        out_dir / "ckpt.pt",
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "model_config": asdict(model_config),
            "config": cfg.model_dump(mode="json"),
            "step": step,
            "seed": seed,
            "data_rng": train_batches.state_dict(),
        },
    )
    tokens_seen = step * tokens_per_step
    return {
        "initial_val_loss": initial_val_loss,
        "final_val_loss": last_val_loss,
        "steps": step,
        "tokens_seen": tokens_seen,
        "tokens_per_s": tokens_seen / train_seconds if train_seconds else 0.0,
        "params": model.num_params(),
        "seconds": time.perf_counter() - t_start,
    }
