"""Data-parallel pretraining (DDP) over several processes: torchrun, gloo on CPU, nccl on GPUs.

Every rank holds the whole model and draws the same stream of micro-batches (the same seeded
sampler), then trains on its own part of each optimizer step: with `grad_accum_steps` a multiple
of the process count, whole micro-batches in turn (nanoGPT's split: the micro-batch stays
`batch_size` sequences); else rows of every micro-batch. DDP averages the gradients, so a step
sees exactly the global batch one process would (`batch_tokens`), and the loss curve is one
process's up to floating-point summation order. Rank 0 evaluates, writes metrics.jsonl and the
checkpoint; the checkpoint is the same file a single process writes, so a DDP run resumes
exactly, and from the same step with another process count.

`pretrain.processes: N` makes the stage launch `torchrun --standalone --nproc_per_node N -m
pipeline.train.distributed JOB` on this machine (`launch`); JOB is a JSON file the stage writes
in `model/_ddp/`. Across machines, start the same module with torchrun's own flags on each node
(docs/pretraining.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from pipeline.config import PretrainConfig
from pipeline.errors import BuildError, InputError
from pipeline.shards import write_json

JOB_DIR = "_ddp"  # in model/: the job, its progress, its result and the ranks' log


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among the training processes (torchrun's environment)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @classmethod
    def from_env(cls) -> Ranks:
        env = os.environ
        return cls(
            int(env.get("RANK", 0)),
            int(env.get("WORLD_SIZE", 1)),
            int(env.get("LOCAL_RANK", 0)),
            int(env.get("LOCAL_WORLD_SIZE", 1)),
        )

    @property
    def main(self) -> bool:
        return self.rank == 0


def start(ranks: Ranks, device_type: str) -> torch.device | None:
    """Join the process group (nccl between GPUs, gloo between CPU processes); the rank's GPU on
    CUDA. None when this is the only process."""
    if ranks.world == 1:
        return None
    if device_type == "cuda":
        if ranks.local_rank >= torch.cuda.device_count():
            raise InputError(
                f"pretrain: {ranks.local_world} processes on this node but torch sees "
                f"{torch.cuda.device_count()} GPUs; set pretrain.processes to at most the GPU count."
            )
        torch.cuda.set_device(ranks.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return torch.device("cuda", ranks.local_rank) if device_type == "cuda" else torch.device("cpu")


@dataclass(frozen=True)
class Share:
    """A rank's part of one optimizer step of `accum` micro-batches of `batch_size` rows."""

    ranks: Ranks
    accum: int
    batch_size: int

    @property
    def whole_micro_batches(self) -> bool:
        return self.accum % self.ranks.world == 0

    def takes(self, micro_batch: int) -> bool:
        return not self.whole_micro_batches or micro_batch % self.ranks.world == self.ranks.rank

    @property
    def micro_batches(self) -> int:
        """Micro-batches this rank trains on per step: the divisor of its summed loss."""
        return self.accum // self.ranks.world if self.whole_micro_batches else self.accum

    def rows(self, t: torch.Tensor | None) -> torch.Tensor | None:
        if t is None or self.whole_micro_batches:
            return t
        n = self.batch_size // self.ranks.world
        return t[self.ranks.rank * n : (self.ranks.rank + 1) * n]


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    dist.all_reduce(value, op=dist.ReduceOp.SUM)  # gloo has no AVG
    return value / dist.get_world_size()


def from_main(flag: bool, device: torch.device) -> bool:
    """Rank 0's decision on every rank (the clock, read by one process, must stop them all at
    the same step, or the others would wait for a gradient that never comes)."""
    t = torch.tensor([int(flag)], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def launch(
    tokens_dir: Path,
    out_dir: Path,
    cfg: PretrainConfig,
    vocab_size: int,
    seed: int,
    val_bytes_per_token: float | None = None,
    on_progress: Callable[[dict], None] | None = None,
    val_sources: dict[str, tuple[list[Path], float]] | None = None,
) -> dict:
    """`loop.train` on `cfg.processes` processes of this machine under torchrun; returns rank
    0's record. Progress comes from rank 0's progress file, polled once a second."""
    folder = out_dir / JOB_DIR
    folder.mkdir(parents=True, exist_ok=True)
    job = {
        "tokens_dir": str(tokens_dir),
        "out_dir": str(out_dir),
        "config": cfg.model_dump(mode="json"),
        "vocab_size": vocab_size,
        "seed": seed,
        "val_bytes_per_token": val_bytes_per_token,
        "val_sources": {k: [[str(p) for p in paths], bpt] for k, (paths, bpt) in (val_sources or {}).items()},
    }
    write_json(job, folder / "job.json")
    for stale in ("progress.json", "result.json", "error.json"):
        (folder / stale).unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # a rendezvous on this machine's loopback, on a free port
        f"--nproc_per_node={cfg.processes}",
        "-m",
        "pipeline.train.distributed",
        str(folder / "job.json"),
    ]
    log = folder / "log.txt"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            last = 0
            while process.poll() is None:
                time.sleep(1.0)
                last = _report(folder / "progress.json", last, on_progress)
        except BaseException:  # a cancelled build leaves no rank running (torchrun stops its workers)
            process.terminate()
            process.wait()
            raise
    _report(folder / "progress.json", last, on_progress)
    if (folder / "error.json").exists():
        error = json.loads((folder / "error.json").read_text())
        raise (InputError if error["kind"] == "input" else BuildError)(error["message"])
    if process.returncode or not (folder / "result.json").exists():
        raise BuildError(
            f"pretrain: torchrun with {cfg.processes} processes failed (exit {process.returncode}); its output is in "
            f"{log}. Rerun with --resume to continue from the last checkpoint."
        )
    return json.loads((folder / "result.json").read_text())


def _report(path: Path, last: int, on_progress: Callable[[dict], None] | None) -> int:
    try:
        progress = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):  # not written yet, or being replaced
        return last
    if on_progress is not None and progress["step"] > last:
        on_progress(progress)
    return progress["step"]


def main(job_path: Path) -> int:
    """One rank of a job written by `launch` (torchrun starts one per process)."""
    from pipeline.train.loop import train

    job = json.loads(job_path.read_text())
    folder = job_path.parent
    ranks = Ranks.from_env()

    def progress(p: dict) -> None:
        write_json(p, folder / "progress.json")

    try:
        record = train(
            Path(job["tokens_dir"]),
            Path(job["out_dir"]),
            PretrainConfig.model_validate(job["config"]),
            job["vocab_size"],
            job["seed"],
            job["val_bytes_per_token"],
            progress if ranks.main else None,
            {k: ([Path(p) for p in paths], bpt) for k, (paths, bpt) in job["val_sources"].items()} or None,
        )
    except (InputError, BuildError) as exc:
        if ranks.main:
            write_json(
                {"kind": "input" if isinstance(exc, InputError) else "build", "message": str(exc)},
                folder / "error.json",
            )
        return 2 if isinstance(exc, InputError) else 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if ranks.main:
        write_json(record, folder / "result.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
