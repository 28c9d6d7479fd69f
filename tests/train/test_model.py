"""The GPT's contract: shapes, an untrained loss of ln(vocab), tied embeddings, causality, dropout,
and the prefix decoder's masks and loss."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pipeline.config import PretrainConfig
from pipeline.train.model import GPT, GPTConfig, prefix_lm_mask

SHAKESPEARE = Path(__file__).resolve().parents[2] / "../shared/data/corpora/tinyshakespeare.txt"
CONFIG = GPTConfig(vocab_size=128, n_layer=2, n_head=2, n_embd=32, block_size=32)


@pytest.fixture(scope="module")
def chars() -> torch.Tensor:
    """Tiny Shakespeare as character ids (ASCII < 128), (4, 32): four real text windows."""
    if not SHAKESPEARE.exists():
        pytest.skip("needs ../shared/data")
    ids = torch.tensor(list(SHAKESPEARE.read_bytes()[:4000]), dtype=torch.long)
    return ids.view(4, 1000)[:, 100:132]


def model() -> GPT:
    torch.manual_seed(0)
    return GPT(CONFIG).eval()


def test_forward_gives_logits_per_position_and_only_the_last_without_targets(chars):
    gpt = model()
    logits, loss = gpt(chars[:, :-1], chars[:, 1:])
    assert logits.shape == (4, 31, CONFIG.vocab_size)
    assert loss.shape == ()
    logits, loss = gpt(chars)
    assert logits.shape == (4, 1, CONFIG.vocab_size)
    assert loss is None


def test_untrained_loss_is_close_to_uniform_guessing(chars):
    _, loss = model()(chars[:, :-1], chars[:, 1:])
    assert loss.item() == pytest.approx(math.log(CONFIG.vocab_size), abs=0.1)


def test_input_and_output_embeddings_are_one_tensor():
    gpt = model()
    assert gpt.lm_head.weight is gpt.wte.weight
    counted_twice = sum(p.numel() for p in gpt.state_dict().values())
    assert gpt.num_params() == counted_twice - CONFIG.vocab_size * CONFIG.n_embd


def test_a_later_token_never_changes_the_logits_of_earlier_positions(chars):
    gpt = model()
    edited = chars.clone()
    edited[:, 20:] = (edited[:, 20:] + 1) % CONFIG.vocab_size
    before, _ = gpt(chars, chars)
    after, _ = gpt(edited, edited)
    torch.testing.assert_close(before[:, :20], after[:, :20])
    assert not torch.allclose(before[:, 20:], after[:, 20:])


def test_generate_extends_the_prompt_with_in_vocabulary_tokens(chars):
    torch.manual_seed(0)
    out = model().generate(chars[:1, :8], max_new_tokens=40, temperature=0.8, top_k=10)
    assert out.shape == (1, 48)  # runs past block_size (32): the context is cropped
    assert torch.equal(out[:, :8], chars[:1, :8])
    assert int(out.max()) < CONFIG.vocab_size


def test_longer_than_block_size_is_refused():
    with pytest.raises(ValueError, match="block_size"):
        model()(torch.zeros(1, CONFIG.block_size + 1, dtype=torch.long))


def test_the_small_preset_is_gpt2_124m_sized():
    small = PretrainConfig(preset="small")
    with torch.device("meta"):  # shapes only: no memory, no init time
        gpt = GPT(GPTConfig(50257, small.n_layer, small.n_head, small.n_embd, small.block_size))
    assert gpt.num_params() == pytest.approx(124e6, rel=0.01)  # GPT-2 small: 124M


def test_dropout_draws_a_new_mask_per_call_in_training_and_none_in_eval(chars):
    torch.manual_seed(0)
    gpt = GPT(CONFIG, dropout=0.2)
    x, y = chars[:, :-1], chars[:, 1:]
    first, second = gpt.train()(x, y)[1], gpt(x, y)[1]
    assert first.item() != second.item()
    assert gpt.eval()(x, y)[1].item() == gpt(x, y)[1].item()


def test_without_dropout_training_and_eval_modes_are_one_function(chars):
    # dropout=0 is the model as it was before dropout existed: same weights for a seed, no noise.
    plain = model()
    torch.manual_seed(0)
    gpt = GPT(CONFIG, dropout=0.0)
    x, y = chars[:, :-1], chars[:, 1:]
    assert all(torch.equal(a, b) for a, b in zip(gpt.state_dict().values(), plain.state_dict().values()))
    assert torch.equal(gpt.train()(x, y)[0], plain(x, y)[0])


@pytest.fixture(scope="module")
def speech(sample_table) -> torch.Tensor:
    """A Shakespeare speech of sample_data/ as byte ids (its ASCII < 128), (2, 32): two windows."""
    text = next(
        t
        for i, t in zip(sample_table["id"].to_pylist(), sample_table["text"].to_pylist())
        if i.startswith("shakespeare-")
    )
    ids = torch.tensor([b % 128 for b in text.encode()[:64]], dtype=torch.long)
    return ids.view(2, 32)


def test_the_prefix_mask_reads_the_prefix_both_ways_and_the_targets_causally():
    prefix = torch.tensor([0, 5, 31])
    mask = prefix_lm_mask(prefix, 32)[:, 0]  # (B, T, T): [b, query, key]
    for b, p in enumerate(prefix.tolist()):
        for i in range(32):
            for j in range(32):
                # A prefix token sees the whole prefix; a target token never sees a later one.
                assert mask[b, i, j] == (j <= i or j < p), (p, i, j)
    assert torch.equal(mask[0], torch.ones(32, 32).tril().bool())  # no prefix: the causal mask


def test_a_prefix_token_reads_later_prefix_tokens_but_no_target_reads_a_later_token(speech):
    gpt, p = model(), 12
    prefix = torch.full((2,), p)
    before, _ = gpt(speech, speech, prefix)
    in_prefix = speech.clone()
    in_prefix[:, p - 1] = (in_prefix[:, p - 1] + 1) % CONFIG.vocab_size
    after, _ = gpt(in_prefix, in_prefix, prefix)
    assert not torch.allclose(before[:, : p - 1], after[:, : p - 1])  # the first prefix tokens saw the edit
    in_target = speech.clone()
    in_target[:, 20] = (in_target[:, 20] + 1) % CONFIG.vocab_size
    after, _ = gpt(in_target, in_target, prefix)
    torch.testing.assert_close(before[:, :20], after[:, :20])  # nothing before position 20 saw it


def test_the_prefix_decoder_loss_covers_the_target_part_only(speech):
    gpt, p = model(), 12
    x, y = speech[:, :-1], speech[:, 1:]
    logits, loss = gpt(x, y, torch.full((2,), p))
    # Position t predicts token t+1: the targets start with the prediction of token p, at t = p-1.
    expected = F.cross_entropy(logits[:, p - 1 :].reshape(-1, CONFIG.vocab_size), y[:, p - 1 :].reshape(-1))
    torch.testing.assert_close(loss, expected)


def test_a_prefix_of_length_zero_is_the_causal_model(speech):
    gpt = model()
    causal_logits, causal_loss = gpt(speech, speech)
    logits, loss = gpt(speech, speech, torch.zeros(2, dtype=torch.long))
    torch.testing.assert_close(logits, causal_logits)
    torch.testing.assert_close(loss, causal_loss)
