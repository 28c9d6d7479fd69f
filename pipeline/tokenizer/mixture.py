"""The mixture, realised in the token shards a trainer reads.

Each source's training documents (encoded per shard into `tokens/_encoded/`) are repeated or
subsampled, whole and seeded, so that the training tokens match the sources' target shares, then
shuffled across sources and shards and written as `tokens/train-NNNNN.bin`: a trainer that reads
the shards in order sees a mixed stream, and one that samples windows (ours) draws each source in
its share. `tokens/mixture.json` says what came of each source.

The arithmetic (`plan`): the budget is `tokenizer.train_tokens`, or every training token the
sources hold. Each source wants its share of the budget; one that would need more than
`max_epochs` repeats of its documents is capped there, and its shortfall goes to the others in
proportion to their weights, until no source is over its cap. A source left with no documents
after filtering gets nothing, and the others share the budget. Peers: dolma's mixer and
Megatron-LM's blended datasets (weights per dataset).
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np

from pipeline.shards import combined_fingerprint, write_json
from pipeline.stage import BuildContext
from pipeline.tokenizer import token_file

TOKENS_PER_SHARD = 100_000_000  # llm.c's FineWeb shards hold 100M tokens: a few hundred MB each
ENCODED = "_encoded"  # where the encode step writes each shard's training tokens


def plan(
    available: dict[str, int], shares: dict[str, float], max_epochs: dict[str, float], budget: int
) -> dict[str, float]:
    """Training tokens wanted from each source: its share of `budget`, capped at max_epochs
    times what it has, the rest of the capped sources' shares spread over the others."""
    wanted = {source: 0.0 for source in available}
    open_ = {source for source, tokens in available.items() if tokens > 0}
    left = float(budget)
    while open_:
        weight = sum(shares[source] for source in open_)
        capped = {s for s in open_ if left * shares[s] / weight > max_epochs[s] * available[s]}
        if not capped:
            wanted |= {source: left * shares[source] / weight for source in open_}
            break
        for source in capped:
            wanted[source] = max_epochs[source] * available[source]
            left -= wanted[source]
        open_ -= capped
    return wanted


def draw(lengths: np.ndarray, tokens: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of whole documents whose lengths add up to about `tokens`: every document
    floor(tokens / total) times, then for the rest a seeded random order of them, each taken while
    it brings the sum closer to the rest (so a few long documents do not overshoot it)."""
    total = int(lengths.sum())
    if total == 0 or tokens <= 0:
        return np.zeros(0, dtype=np.int64)
    repeats, rest = divmod(tokens, total)
    order = rng.permutation(len(lengths))
    # Every document of the prefix that stays under the rest, then the others that fit the gap.
    fits = int(np.searchsorted(np.cumsum(lengths[order]), rest, side="right"))
    chosen, filled = list(order[:fits]), int(lengths[order[:fits]].sum())
    for doc in order[fits:]:
        if filled + lengths[doc] - rest <= rest - filled:  # closer to the rest with it than without
            chosen.append(doc)
            filled += int(lengths[doc])
    return np.concatenate([np.tile(np.arange(len(lengths)), int(repeats)), np.array(chosen, dtype=np.int64)])


def mixture_step(ctx: BuildContext) -> dict:
    """Build step of the tokenizer stage: the mixed training shards and tokens/mixture.json."""
    records = ctx.records["encode"]
    sources = ctx.sources
    weights = sum(source.weight for source in sources)
    shares = {source.name: source.weight / weights for source in sources}
    max_epochs = {source.name: source.max_epochs for source in sources}
    fingerprint = combined_fingerprint(
        [r["fingerprint"] for r in records]
        + [ctx.config_hash]
        + [f"{s.name}:{shares[s.name]!r}:{s.max_epochs!r}" for s in sources]
    )
    out = ctx.folder / "mixture.json"

    def mix_and_write() -> dict:
        vocab_size = int(ctx.artifacts["tokenizer_train"]["vocab_size"])
        shards = [(r["name"], r["source"]) for r in records]
        mixture = mix(ctx.folder, shards, shares, max_epochs, ctx.config.train_tokens, ctx.seed, vocab_size)
        write_json(mixture, out)
        return mixture | {"note": _note(mixture)}

    return ctx.once("mixture", fingerprint, [out], mix_and_write)


def mix(
    folder: Path,
    shards: list[tuple[str, str]],
    shares: dict[str, float],
    max_epochs: dict[str, float],
    budget: int,
    seed: int,
    vocab_size: int,
) -> dict:
    """Draw the mixture from the encoded shards `folder/_encoded/train-<name>.bin` of (name,
    source) `shards` and write it as `folder/train-*.bin`; returns what came of each source.
    budget: training tokens to draw, 0 = every training token the sources hold."""
    files = [folder / ENCODED / f"train-{name}.bin" for name, _ in shards]
    tokens = [token_file.read_tokens(path) for path in files]
    # Per shard: each document's start and length in tokens (its delimiter included).
    starts = [token_file.read_doc_offsets(path) for path in files]
    lengths = [np.diff(np.append(s, len(t))) for s, t in zip(starts, tokens)]
    by_source = {name: [i for i, (_, source) in enumerate(shards) if source == name] for name in shares}
    available = {name: int(sum(lengths[i].sum() for i in owned)) for name, owned in by_source.items()}
    budget = budget or sum(available.values())
    wanted = plan(available, shares, max_epochs, budget)

    picks = []  # (n_docs, 2): shard index, document index of every document drawn
    for name, owned in by_source.items():
        if not owned:
            continue
        shard_of = np.concatenate([np.full(len(lengths[i]), i) for i in owned])
        doc_of = np.concatenate([np.arange(len(lengths[i])) for i in owned])
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])  # a source's draw is its own
        chosen = draw(np.concatenate([lengths[i] for i in owned]), wanted[name], rng)
        picks.append(np.stack([shard_of[chosen], doc_of[chosen]], axis=1))
    picks = np.concatenate(picks) if picks else np.zeros((0, 2), dtype=np.int64)
    picks = picks[np.random.default_rng(seed).permutation(len(picks))]  # a mixed stream
    written = _write_shards(folder, picks, tokens, starts, lengths, vocab_size)
    used = {name: sum(written[i] for i in owned) for name, owned in by_source.items()}

    total_used = sum(used.values())
    return {
        "budget_tokens": int(budget),
        "train_tokens": total_used,
        "sources": {
            name: {
                "documents": int(sum(len(lengths[i]) for i in by_source[name])),
                "tokens_available": available[name],
                "tokens_used": used[name],
                "repeats": round(used[name] / available[name], 4) if available[name] else 0.0,
                "max_epochs": max_epochs[name],
                "target_share": round(shares[name], 6),
                # The share the plan gives it once capped sources' shortfalls are spread.
                "planned_share": round(wanted[name] / budget, 6) if budget else 0.0,
                "realised_share": round(used[name] / total_used, 6) if total_used else 0.0,
                "capped": available[name] > 0 and math.isclose(wanted[name], max_epochs[name] * available[name]),
                "shortfall_tokens": max(0, round(shares[name] * budget) - used[name]),
            }
            for name in shares
        },
    }


def _write_shards(
    folder: Path, picks: np.ndarray, tokens: list, starts: list, lengths: list, vocab_size: int
) -> list[int]:
    """The drawn documents, in order, as train-NNNNN.bin shards of up to TOKENS_PER_SHARD
    tokens; returns the tokens written from each encoded shard."""
    for stale in folder.glob("train-*.bin"):  # a smaller mixture than the last one has fewer shards
        stale.unlink()
    doc_lengths = np.array([lengths[s][d] for s, d in picks], dtype=np.int64)
    used = [0] * len(tokens)
    shard, begin, total = 0, 0, 0
    for end in range(1, len(picks) + 1):
        total += int(doc_lengths[end - 1])
        if total >= TOKENS_PER_SHARD or end == len(picks):
            chunk = picks[begin:end]
            body = np.concatenate([tokens[s][starts[s][d] : starts[s][d] + lengths[s][d]] for s, d in chunk])
            offsets = np.concatenate([[0], np.cumsum(doc_lengths[begin:end])[:-1]])
            token_file.write_tokens(folder / f"train-{shard:05d}.bin", body, offsets, vocab_size)
            for s, d in chunk:
                used[s] += int(lengths[s][d])
            shard, begin, total = shard + 1, end, 0
    return used


def _note(mixture: dict) -> str:
    shares = ", ".join(
        f"{name} {s['realised_share']:.1%}" for name, s in mixture["sources"].items() if s["tokens_available"]
    )
    return f"{mixture['train_tokens']:,} training tokens: {shares}"
