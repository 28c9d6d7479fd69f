"""Data-parallel pretraining under torchrun: gloo, two CPU processes, on Tiny Shakespeare's tokens.

Tolerances, from what the two splits do to the arithmetic:
- Whole micro-batches in turn: each rank runs the very micro-batch one process runs, and DDP's
  (g0 + g1) / 2 equals one process's g0 / 2 + g1 / 2 exactly (halving is exact in binary floating
  point), so the weights are bitwise equal.
- Rows of each micro-batch: each rank's matmuls reduce over 4 rows instead of 8, so the fp32 sums
  come in another order. Measured after 20 steps: the largest weight difference was 1.2e-7, and
  the loss curves agreed to the 4 decimals metrics.jsonl keeps. The test allows 1e-5 on any
  weight (about 100x that) and 1e-3 nats on the curve (a flip in the last kept digit, 10x over):
  a wrong split (a rank training on the other's rows, gradients summed instead of averaged) moves
  the loss by 1e-2 or more by the first eval.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pipeline.config import PretrainConfig
from pipeline.errors import InputError
from pipeline.train.distributed import Ranks, Share, launch
from pipeline.train.loop import train
from tests.train.test_loop import TINY, VOCAB, losses, tokens_dir  # noqa: F401 (a fixture)

REPO = Path(__file__).resolve().parents[2]
# The module's docstring says why.
LOSS_TOLERANCE = 1e-3  # nats
WEIGHT_TOLERANCE = 1e-5


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "ckpt.pt", weights_only=False)["model"]


@pytest.mark.parametrize(
    "batch_tokens", [0, 2 * 8 * 64], ids=["rows-of-each-micro-batch", "whole-micro-batches-in-turn"]
)
def test_two_processes_follow_the_one_process_curve_at_the_same_global_batch(tokens_dir, tmp_path, batch_tokens):  # noqa: F811
    cfg = PretrainConfig(**TINY, batch_tokens=batch_tokens, max_steps=20, eval_interval=5)
    one = train(tokens_dir, tmp_path / "one", cfg, vocab_size=VOCAB, seed=4)
    seen = []
    two = launch(
        tokens_dir, tmp_path / "two", cfg.model_copy(update={"processes": 2}), VOCAB, 4, on_progress=seen.append
    )
    assert seen and seen[-1]["step"] == 20  # rank 0's progress reaches the launching process

    assert two["tokens_seen"] == one["tokens_seen"] == 20 * cfg.grad_accum_steps * 8 * 64
    curve_one, curve_two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert [r[0] for r in curve_two] == [0, 5, 10, 15, 20]
    assert curve_two[0] == curve_one[0]  # the same initial weights and val windows
    for (_, train_one, val_one), (_, train_two, val_two) in zip(curve_one[1:], curve_two[1:]):
        assert abs(train_two - train_one) < LOSS_TOLERANCE and abs(val_two - val_one) < LOSS_TOLERANCE
    assert one["final_val_loss"] < one["initial_val_loss"] - 0.5  # the curve fell: the comparison means something
    w1, w2 = weights(tmp_path / "one"), weights(tmp_path / "two")
    largest = max((w1[k] - w2[k]).abs().max().item() for k in w1)
    assert largest == 0.0 if cfg.grad_accum_steps == 2 else largest < WEIGHT_TOLERANCE


KILL_AT_15 = """
import sys
from pathlib import Path
from pipeline.config import PretrainConfig
from pipeline.errors import InputError
from pipeline.train.loop import train

def kill_at_step_15(progress):
    if progress["step"] == 15:  # between checkpoints: step 10's is the latest on disk
        sys.exit(3)

cfg = PretrainConfig.model_validate_json(sys.argv[3])
train(Path(sys.argv[1]), Path(sys.argv[2]), cfg, int(sys.argv[4]), 3, on_progress=kill_at_step_15)
"""


def test_a_ddp_run_killed_mid_way_and_resumed_ends_bitwise_as_an_uninterrupted_ddp_run(tokens_dir, tmp_path):  # noqa: F811
    cfg = PretrainConfig(**TINY, max_steps=30, eval_interval=10, processes=2)
    whole = launch(tokens_dir, tmp_path / "whole", cfg, VOCAB, seed=3)

    script = tmp_path / "killed.py"
    script.write_text(KILL_AT_15)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    args = [str(script), str(tokens_dir), str(tmp_path / "cut"), cfg.model_dump_json(), str(VOCAB)]
    killed = subprocess.run(torchrun + args, cwd=REPO, capture_output=True, text=True)
    assert killed.returncode != 0  # both ranks died at step 15
    assert torch.load(tmp_path / "cut" / "ckpt.pt", weights_only=False)["step"] == 10

    resumed = launch(tokens_dir, tmp_path / "cut", cfg.model_copy(update={"resume": True}), VOCAB, seed=3)
    assert resumed["resumed_from"] == 10 and resumed["steps"] == 30
    assert losses(tmp_path / "cut") == losses(tmp_path / "whole")
    assert resumed["final_val_loss"] == whole["final_val_loss"]
    w_whole, w_cut = weights(tmp_path / "whole"), weights(tmp_path / "cut")
    assert all(torch.equal(w_whole[k], w_cut[k]) for k in w_whole)  # bitwise


def test_each_rank_trains_on_its_own_part_of_every_step():
    # Two micro-batches per step over two ranks: one whole micro-batch each.
    assert [Share(Ranks(r, 2), accum=2, batch_size=8).takes(k) for r in (0, 1) for k in (0, 1)] == [
        True,
        False,
        False,
        True,
    ]
    # One micro-batch of 8 rows: rows 0-3 and 4-7.
    x = torch.arange(8)
    assert [Share(Ranks(r, 2), accum=1, batch_size=8).rows(x).tolist() for r in (0, 1)] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_processes_that_split_neither_the_micro_batches_nor_the_rows_are_a_config_error():
    with pytest.raises(ValueError, match="processes \\(3\\) must divide"):
        PretrainConfig(**TINY, processes=3)


def test_a_bad_input_in_the_ranks_is_the_same_one_line_input_error_in_the_launching_process(tokens_dir, tmp_path):  # noqa: F811
    cfg = PretrainConfig(**{**TINY, "block_size": 2**20}, max_steps=2, processes=2)
    with pytest.raises(InputError, match="lower pretrain.block_size"):
        launch(tokens_dir, tmp_path, cfg, VOCAB, seed=1)
