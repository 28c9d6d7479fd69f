"""A compact GPT: a causal Transformer decoder in the style of nanoGPT, with the modern parts.

Differences from GPT-2, each the common choice of recent small models (LLaMA, modded-nanogpt):
RMSNorm instead of LayerNorm, rotary position embeddings instead of a learned position table,
a SwiGLU MLP, no biases. Input and output embeddings are tied (one matrix), which saves
vocab_size * n_embd parameters: most of the model at our sizes.

As a prefix decoder (`prefix_len` given: the survey's "prefix decoder", as in UniLM and GLM), the
first prefix_len tokens of a sequence attend to each other in both directions and the rest
causally; the loss covers the predictions that read the whole prefix (the target part) only.

Dropout (off by default) is nanoGPT's: on the attention weights and after each residual branch's
output projection, in training mode only. It is a training setting, not part of the architecture:
it changes no weight, so it is an argument of GPT rather than a GPTConfig field (checkpoints and
--resume compare GPTConfig).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# What the code below builds, in the columns of the survey's model-card table (Zhao et al. 2023,
# "A Survey of Large Language Models", table 3); model/card.json adds the sizes (card.py).
ARCHITECTURE = {
    "normalisation": "pre-norm RMSNorm",
    "positional_embedding": "RoPE (rotary)",
    "activation": "SwiGLU",
    "bias": False,
    "tied_embeddings": True,
}


@dataclass
class GPTConfig:
    vocab_size: int = 8192
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 128  # longest context the rotary tables are built for


class RMSNorm(nn.Module):
    """Scale by the root mean square; no mean subtraction, no bias (Zhang & Sennrich 2019)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32: under bf16 autocast the mean of squares loses too many bits.
        y = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return y.type_as(x) * self.weight


def rotary_tables(head_dim: int, block_size: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of position * frequency, (block_size, head_dim/2) each (Su et al. 2021)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(block_size, dtype=torch.float32), inv_freq)  # (T, hd/2)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x1, x2) of x (B, nh, T, hd) by its position's angle."""
    x1, x2 = x.float().chunk(2, dim=-1)  # (B, nh, T, hd/2) each
    rotated = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return rotated.type_as(x)


def prefix_lm_mask(prefix_len: torch.Tensor, T: int) -> torch.Tensor:
    """(B, 1, T, T) bool, True where query i may attend to key j: j <= i (causal), or j inside
    the sequence's prefix (j < prefix_len), which every position reads whole."""
    pos = torch.arange(T, device=prefix_len.device)
    causal = pos[None, :] <= pos[:, None]  # (T, T): [i, j] = key j not after query i
    in_prefix = pos[None, None, :] < prefix_len[:, None, None]  # (B, 1, T): key j in the prefix
    return (causal[None] | in_prefix)[:, None]  # (B, 1, T, T), broadcast over the heads


IGNORE = -1  # cross_entropy's ignore_index: a position outside the loss


def target_only(targets: torch.Tensor, prefix_len: torch.Tensor) -> torch.Tensor:
    """targets (B, T) with IGNORE where the position's prediction is a prefix token: position t
    predicts token t+1, which is the prefix's own (and visible to it) while t + 1 < prefix_len."""
    pos = torch.arange(targets.size(1), device=targets.device)
    return targets.masked_fill(pos[None, :] + 1 < prefix_len[:, None], IGNORE)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig, dropout: float = 0.0):
        super().__init__()
        assert config.n_embd % config.n_head == 0, "n_embd must be a multiple of n_head"
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.dropout = dropout
        self.resid_dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """mask: (B, 1, T, T) bool of the keys each query may read; None: causal."""
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)  # (B, T, C) each
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hd)
        # Rotating q and k (not v) makes q.k depend on the distance between positions only.
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        # SDPA takes no module state: its dropout must be switched off by hand outside training.
        p = self.dropout if self.training else 0.0
        # The causal case keeps is_causal: without a mask tensor SDPA can pick its flash kernel.
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=p, is_causal=mask is None
        )  # (B, nh, T, hd)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble the heads side by side
        return self.resid_dropout(self.c_proj(y))


def mlp_hidden(n_embd: int) -> int:
    """SwiGLU's hidden size: 8/3 n_embd keeps the parameter count of GPT-2's 4 n_embd two-matrix
    MLP; rounded up to a multiple of 64."""
    return 64 * math.ceil(8 * n_embd / 3 / 64)


class SwiGLU(nn.Module):
    """silu(x W1) * (x W3), then W2 (Shazeer 2020), W1 and W3 of mlp_hidden(n_embd) columns."""

    def __init__(self, config: GPTConfig, dropout: float = 0.0):
        super().__init__()
        hidden = mlp_hidden(config.n_embd)
        self.c_fc = nn.Linear(config.n_embd, 2 * hidden, bias=False)  # gate and value in one matmul
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.c_fc(x).chunk(2, dim=-1)  # (B, T, hidden) each
        return self.dropout(self.c_proj(F.silu(gate) * value))


class Block(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: GPTConfig, dropout: float = 0.0):
        super().__init__()
        self.norm_1 = RMSNorm(config.n_embd)
        self.attn = CausalSelfAttention(config, dropout)
        self.norm_2 = RMSNorm(config.n_embd)
        self.mlp = SwiGLU(config, dropout)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = x + self.attn(self.norm_1(x), cos, sin, mask)
        return x + self.mlp(self.norm_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig, dropout: float = 0.0):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config, dropout) for _ in range(config.n_layer))
        self.norm_f = RMSNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: the same matrix reads and writes tokens
        # Derived from the config, so not saved in checkpoints (persistent=False).
        cos, sin = rotary_tables(config.n_embd // config.n_head, config.block_size)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

        self.apply(self._init_weights)
        # GPT-2: scale the projections that write into the residual stream by 1/sqrt(2 n_layer),
        # so the stream's variance does not grow with depth (2 residual adds per block).
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        """Trainable parameters; the tied embedding counts once."""
        return sum(p.numel() for p in self.parameters())

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, prefix_len: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx, targets: (B, T) token ids; prefix_len: (B,) read as a prefix decoder, None: causal."""
        B, T = idx.size()
        if self.config.block_size < T:
            raise ValueError(f"sequence of {T} tokens is longer than block_size {self.config.block_size}")
        cos, sin = self.rope_cos[:T], self.rope_sin[:T]  # (T, hd/2)
        mask = None if prefix_len is None else prefix_lm_mask(prefix_len, T)
        x = self.wte(idx)  # (B, T, C)
        for block in self.blocks:
            x = block(x, cos, sin, mask)
        x = self.norm_f(x)
        if targets is None:
            # Sampling needs the last position only: skip the (T, vocab) matmul for the rest.
            return self.lm_head(x[:, [-1], :]), None  # (B, 1, vocab)
        logits = self.lm_head(x)  # (B, T, vocab)
        if prefix_len is not None:
            targets = target_only(targets, prefix_len)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE)
        return logits, loss

    @torch.no_grad()
    def generate(
        self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None
    ) -> torch.Tensor:
        """Extend idx (B, T) by sampling max_new_tokens tokens, one at a time."""
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size :]  # rotary tables stop at block_size
            logits, _ = self(context)
            logits = logits[:, -1, :].float() / temperature  # (B, vocab)
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
                logits[logits < kth] = -float("inf")
            next_token = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)  # (B, 1)
            idx = torch.cat((idx, next_token), dim=1)
        return idx
