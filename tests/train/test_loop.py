"""Pretraining end to end on real token shards: Tiny Shakespeare, byte-level BPE trained here."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from pipeline.config import PretrainConfig
from pipeline.errors import InputError
from pipeline.tokenizer.token_file import write_tokens
from pipeline.train.card import model_card, write_card
from pipeline.train.loop import lr_at, train
from pipeline.train.model import GPT, GPTConfig
from pipeline.train.sample import load_model

SHAKESPEARE = Path(__file__).resolve().parents[2] / "../shared/data/corpora/tinyshakespeare.txt"
VOCAB = 512
# threads=1: a busy shared machine (CI, other builds) slows two synchronised threads many-fold.
TINY = dict(
    n_layer=2,
    n_head=2,
    n_embd=64,
    block_size=64,
    batch_size=8,
    learning_rate=3e-3,
    warmup_steps=10,
    eval_batches=4,
    threads=1,
)


@pytest.fixture(scope="module")
def tokens_dir(tmp_path_factory) -> Path:
    """train-00000.bin / val-00000.bin: every speech a document opened by <|endoftext|> (id 0)."""
    if not SHAKESPEARE.exists():
        pytest.skip("needs ../shared/data")
    speeches = [s for s in SHAKESPEARE.read_text(encoding="utf-8").split("\n\n") if s.strip()]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(speeches, trainer)
    out = tmp_path_factory.mktemp("tokens")
    n_val = len(speeches) // 10
    for split, docs in (("val", speeches[:n_val]), ("train", speeches[n_val:])):
        encoded = [[0] + e.ids for e in tokenizer.encode_batch(docs)]
        offsets = np.cumsum([0] + [len(d) for d in encoded[:-1]])
        write_tokens(out / f"{split}-00000.bin", np.concatenate(encoded), offsets, VOCAB)
    return out


def losses(run_dir: Path) -> list[tuple]:
    """(step, train loss, val loss) of every eval row of a run."""
    rows = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [(r["step"], r["train_loss"], r["val_loss"]) for r in map(json.loads, rows)]


def test_a_short_run_lowers_val_loss_and_writes_metrics_and_checkpoint(tokens_dir, tmp_path):
    cfg = PretrainConfig(**TINY, max_steps=60, eval_interval=20)
    progress = []
    result = train(tokens_dir, tmp_path, cfg, vocab_size=VOCAB, seed=1, on_progress=progress.append)

    assert result["steps"] == 60 and result["tokens_seen"] == 60 * 8 * 64
    assert result["initial_val_loss"] == pytest.approx(np.log(VOCAB), abs=0.2)
    assert result["final_val_loss"] < result["initial_val_loss"] - 0.5
    assert [p["step"] for p in progress] == list(range(1, 61))

    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 20, 40, 60]
    assert set(rows[0]) == {"step", "train_loss", "val_loss", "val_bpb", "lr", "tokens_per_s", "mfu", "elapsed_s"}
    assert rows[0]["train_loss"] is None and rows[0]["tokens_per_s"] is None  # step 0: nothing trained yet
    assert all(0 < r["mfu"] < 1 and r["tokens_per_s"] > 0 for r in rows[1:])
    assert rows[-1]["val_loss"] == pytest.approx(result["final_val_loss"], abs=1e-4)

    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    assert ckpt["step"] == 60
    assert {"optimizer", "data_rng", "torch_rng", "config"} <= set(ckpt)
    model = GPT(GPTConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])  # the checkpoint is a complete, loadable model
    assert not (tmp_path / "ckpt.pt.tmp").exists()


def test_same_seed_and_max_steps_give_the_same_run(tokens_dir, tmp_path):
    cfg = PretrainConfig(**TINY, max_steps=15, eval_interval=5)
    first = train(tokens_dir, tmp_path / "a", cfg, vocab_size=VOCAB, seed=7)
    second = train(tokens_dir, tmp_path / "b", cfg, vocab_size=VOCAB, seed=7)
    assert first["final_val_loss"] == second["final_val_loss"]

    assert losses(tmp_path / "a") == losses(tmp_path / "b")


def test_evals_run_without_dropout_and_training_resumes_with_it(tokens_dir, tmp_path):
    # An eval in training mode would draw dropout masks and shift every later step's masks; one
    # that left the model in eval mode would train on without dropout. Either way, evaluating
    # more often would change the run.
    cfg = PretrainConfig(**TINY, max_steps=12, dropout=0.3)
    every_step = train(
        tokens_dir, tmp_path / "a", cfg.model_copy(update={"eval_interval": 1}), vocab_size=VOCAB, seed=5
    )
    at_the_end = train(
        tokens_dir, tmp_path / "b", cfg.model_copy(update={"eval_interval": 12}), vocab_size=VOCAB, seed=5
    )
    assert every_step["final_val_loss"] == at_the_end["final_val_loss"]
    no_dropout = train(tokens_dir, tmp_path / "c", cfg.model_copy(update={"dropout": 0.0}), vocab_size=VOCAB, seed=5)
    assert no_dropout["final_val_loss"] != at_the_end["final_val_loss"]  # the masks did act


def test_the_wall_clock_budget_stops_training_before_max_steps(tokens_dir, tmp_path):
    cfg = PretrainConfig(**{**TINY, "threads": 0}, max_steps=100_000, time_budget_s=1.0)  # all cores
    result = train(tokens_dir, tmp_path, cfg, vocab_size=VOCAB, seed=1)
    assert 1 <= result["steps"] < 100_000
    assert (tmp_path / "ckpt.pt").exists()


def test_learning_rate_warms_up_linearly_then_decays_to_a_tenth():
    cfg = PretrainConfig(learning_rate=1e-3, warmup_steps=10, max_steps=110)
    assert lr_at(5, cfg) == pytest.approx(5e-4)
    assert lr_at(10, cfg) == pytest.approx(1e-3)
    assert lr_at(60, cfg) == pytest.approx(5.5e-4)  # half-way down the cosine
    assert lr_at(110, cfg) == pytest.approx(1e-4)


class Killed(Exception):
    """Stands for the process dying mid-run."""


# Dropout's masks come from the saved RNG state, a prefix decoder's prefix lengths from the sampler's.
@pytest.mark.parametrize(
    ("dropout", "objective"), [(0.0, "causal"), (0.2, "causal"), (0.0, "prefix_lm")], ids=["plain", "dropout", "prefix"]
)
def test_a_resumed_run_continues_exactly_where_an_uninterrupted_one_goes(tokens_dir, tmp_path, dropout, objective):
    cfg = PretrainConfig(**TINY, max_steps=30, eval_interval=10, dropout=dropout, objective=objective)
    whole = train(tokens_dir, tmp_path / "whole", cfg, vocab_size=VOCAB, seed=3)

    def kill_at_step_15(progress: dict) -> None:
        if progress["step"] == 15:  # between checkpoints: step 10's is the latest on disk
            raise Killed

    with pytest.raises(Killed):
        train(tokens_dir, tmp_path / "cut", cfg, vocab_size=VOCAB, seed=3, on_progress=kill_at_step_15)
    resumed = train(tokens_dir, tmp_path / "cut", cfg.model_copy(update={"resume": True}), vocab_size=VOCAB, seed=3)

    assert resumed["resumed_from"] == 10 and resumed["steps"] == 30
    assert losses(tmp_path / "cut") == losses(tmp_path / "whole")  # steps 0-10 kept, 20-30 recomputed
    assert resumed["final_val_loss"] == whole["final_val_loss"]
    weights = [torch.load(tmp_path / run / "ckpt.pt", weights_only=False)["model"] for run in ("whole", "cut")]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])  # bitwise


def test_a_prefix_decoder_learns_and_trains_on_other_batches_than_the_causal_model(tokens_dir, tmp_path):
    cfg = PretrainConfig(**TINY, max_steps=60, eval_interval=60)
    causal = train(tokens_dir, tmp_path / "causal", cfg, vocab_size=VOCAB, seed=2)
    prefix = train(tokens_dir, tmp_path / "prefix", cfg.model_copy(update={"objective": "prefix_lm"}), VOCAB, seed=2)
    # Read causally at validation, the prefix decoder has learnt the language too...
    assert prefix["final_val_loss"] < prefix["initial_val_loss"] - 0.5
    # ...from a loss over the target parts only: another run than the causal one.
    assert prefix["final_val_loss"] != causal["final_val_loss"]


def test_resuming_with_another_model_shape_is_a_clear_input_error(tokens_dir, tmp_path):
    cfg = PretrainConfig(**TINY, max_steps=2, eval_interval=2)
    train(tokens_dir, tmp_path, cfg, vocab_size=VOCAB, seed=1)
    wider = PretrainConfig(**{**TINY, "n_embd": 128}, max_steps=4, resume=True)
    with pytest.raises(InputError, match="drop --resume"):
        train(tokens_dir, tmp_path, wider, vocab_size=VOCAB, seed=1)


def test_val_loss_is_also_reported_in_bits_per_byte(tokens_dir, tmp_path):
    cfg = PretrainConfig(**TINY, max_steps=1)
    bytes_per_token = 2.5
    train(tokens_dir, tmp_path, cfg, vocab_size=VOCAB, seed=1, val_bytes_per_token=bytes_per_token)
    for row in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines()):
        assert row["val_bpb"] == pytest.approx(row["val_loss"] / math.log(2) / bytes_per_token, abs=1e-3)


def test_gradient_accumulation_takes_batch_tokens_per_optimizer_step(tokens_dir, tmp_path):
    cfg = PretrainConfig(**TINY, batch_tokens=3 * 8 * 64, max_steps=8, eval_interval=8)
    result = train(tokens_dir, tmp_path, cfg, vocab_size=VOCAB, seed=1)
    assert cfg.grad_accum_steps == 3
    assert result["tokens_seen"] == 8 * 3 * 8 * 64
    assert result["final_val_loss"] < result["initial_val_loss"]


def test_batch_tokens_must_be_whole_micro_batches():
    with pytest.raises(ValueError, match="multiple of batch_size"):
        PretrainConfig(**TINY, batch_tokens=1000)


def test_a_preset_fills_the_sizes_a_config_leaves_out():
    small = PretrainConfig(preset="small", n_layer=6)
    assert (small.n_layer, small.n_head, small.n_embd, small.block_size) == (6, 12, 768, 1024)
    assert small.grad_accum_steps == 2**19 // (16 * 1024)
    assert PretrainConfig() == PretrainConfig(preset="tiny")  # the defaults are the tiny preset


# The CUDA path (bf16 autocast, fused AdamW, pinned copies, compile, cuda RNG in checkpoints):
# CI has no GPU, so these run on a GPU machine only.
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA path: needs a GPU")
ON_CUDA = {**TINY, "device": "cuda", "threads": 0}


@needs_cuda
@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_the_cuda_path_trains_and_checkpoints_fp32_weights_and_the_cuda_rng(tokens_dir, tmp_path, compile):
    cfg = PretrainConfig(**ON_CUDA, compile=compile, max_steps=60, eval_interval=20)
    result = train(tokens_dir, tmp_path, cfg, vocab_size=VOCAB, seed=1)

    assert result["device"] == "cuda"
    assert result["final_val_loss"] < result["initial_val_loss"] - 0.5
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(
        r["tokens_per_s"] > 0 and (r["mfu"] is None or 0 < r["mfu"] < 1) for r in rows[1:]
    )  # None: GPU of unknown peak
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    assert ckpt["cuda_rng"] is not None
    assert all(
        w.dtype == torch.float32 for w in ckpt["model"].values()
    )  # autocast computes in bf16, keeps fp32 weights
    model = load_model(tmp_path / "ckpt.pt", torch.device("cuda"))
    assert model.generate(torch.zeros((1, 1), dtype=torch.long, device="cuda"), 20).shape == (1, 21)


@needs_cuda
def test_a_resumed_cuda_run_continues_the_uninterrupted_curve(tokens_dir, tmp_path):
    cfg = PretrainConfig(**ON_CUDA, max_steps=30, eval_interval=10)
    whole = train(tokens_dir, tmp_path / "whole", cfg, vocab_size=VOCAB, seed=3)

    def kill_at_step_15(progress: dict) -> None:
        if progress["step"] == 15:
            raise Killed

    with pytest.raises(Killed):
        train(tokens_dir, tmp_path / "cut", cfg, vocab_size=VOCAB, seed=3, on_progress=kill_at_step_15)
    resumed = train(tokens_dir, tmp_path / "cut", cfg.model_copy(update={"resume": True}), vocab_size=VOCAB, seed=3)

    assert resumed["resumed_from"] == 10 and resumed["steps"] == 30
    assert losses(tmp_path / "cut") == losses(tmp_path / "whole")
    assert resumed["final_val_loss"] == whole["final_val_loss"]


@needs_cuda
def test_the_cuda_path_follows_the_cpu_curve_up_to_bf16_rounding(tokens_dir, tmp_path):
    # Same seed: the same initial weights (made on the CPU) and the same batches (numpy's RNG).
    cfg = PretrainConfig(**TINY, max_steps=30, eval_interval=10)
    train(tokens_dir, tmp_path / "cpu", cfg, vocab_size=VOCAB, seed=5)
    train(tokens_dir, tmp_path / "gpu", cfg.model_copy(update={"device": "cuda"}), vocab_size=VOCAB, seed=5)
    on_cpu, on_gpu = losses(tmp_path / "cpu"), losses(tmp_path / "gpu")
    assert [row[0] for row in on_gpu] == [0, 10, 20, 30]
    assert all(g[2] == pytest.approx(c[2], abs=0.05) for c, g in zip(on_cpu, on_gpu))


def test_the_model_card_has_the_survey_columns_the_mixture_and_the_final_bits_per_byte(tokens_dir, tmp_path):
    cfg = PretrainConfig(**TINY, max_steps=4, eval_interval=4, objective="prefix_lm")
    record = train(tokens_dir, tmp_path, cfg, vocab_size=VOCAB, seed=5, val_bytes_per_token=3.5)
    mixture = {"sources": {"plays": {"realised_share": 1.0, "tokens_used": 4096, "repeats": 0.5, "weight": 1.0}}}
    write_card(tmp_path, model_card(cfg, record, VOCAB, 5, mixture))

    card = json.loads((tmp_path / "card.json").read_text())
    survey = {"vocab_size", "normalisation", "positional_embedding", "activation", "bias"}
    assert survey | {"layers", "heads", "hidden_size", "max_context_length"} <= set(card)
    assert (card["vocab_size"], card["layers"], card["heads"], card["hidden_size"]) == (VOCAB, 2, 2, 64)
    assert card["max_context_length"] == 64 and card["bias"] is False
    assert (
        card["parameters"]
        == record["params"]
        == GPT(GPTConfig(vocab_size=VOCAB, n_layer=2, n_head=2, n_embd=64, block_size=64)).num_params()
    )
    assert card["tokens_seen"] == 4 * 8 * 64 and card["category"] == "prefix decoder"
    assert card["mixture"] == {"plays": {"realised_share": 1.0, "tokens_used": 4096, "repeats": 0.5}}
    assert card["val_bpb"] == record["final_val_bpb"] is not None
    text = (tmp_path / "card.md").read_text()
    assert "| prefix decoder | " in text and "| plays | 100.0% | 4,096 | 0.50 |" in text
