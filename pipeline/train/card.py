"""The model card of a build's model: model/card.json and model/card.md.

The architecture in the columns of the survey's model-card table (Zhao et al. 2023, "A Survey of
Large Language Models", table 3: category, size, normalisation, positional embedding, activation,
bias, layers, heads, hidden size, maximum context length), then the vocabulary, the training
(objective, steps, tokens seen, seed), the data mixture as tokens/mixture.json realised it, and
the final validation bits per byte, overall and per source. Only what a rerun reproduces goes in
(no timings), so the same build writes the same card.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.config import PretrainConfig
from pipeline.shards import write_bytes, write_json
from pipeline.train.model import ARCHITECTURE, mlp_hidden

CATEGORY = {"causal": "causal decoder", "prefix_lm": "prefix decoder"}


def model_card(cfg: PretrainConfig, record: dict, vocab_size: int, seed: int, mixture: dict | None) -> dict:
    """The card's fields from the pretrain config, the training record and the mixture."""
    sources = (mixture or {}).get("sources", {})
    return {
        "category": CATEGORY[cfg.objective],
        "parameters": record["params"],
        **ARCHITECTURE,
        "layers": cfg.n_layer,
        "heads": cfg.n_head,
        "hidden_size": cfg.n_embd,
        "mlp_hidden_size": mlp_hidden(cfg.n_embd),
        "max_context_length": cfg.block_size,
        "vocab_size": vocab_size,
        "objective": cfg.objective,
        "steps": record["steps"],
        "tokens_seen": record["tokens_seen"],
        "seed": seed,
        "mixture": {
            name: {key: source[key] for key in ("realised_share", "tokens_used", "repeats")}
            for name, source in sources.items()
        },
        "val_bpb": record["final_val_bpb"],
        "val_bpb_by_source": record.get("final_val_bpb_by_source") or {},
    }


def markdown(card: dict) -> str:
    """The card as a person reads it: the survey's table row, then the data and the result."""
    size = f"{card['parameters'] / 1e6:.2f}M"
    lines = [
        "# Model card",
        "",
        "| category | size | normalisation | PE | activation | bias | #L | #H | d_model | MCL |",
        "|---|---:|---|---|---|---|---:|---:|---:|---:|",
        f"| {card['category']} | {size} | {card['normalisation']} | {card['positional_embedding']} "
        f"| {card['activation']} | {'yes' if card['bias'] else 'no'} | {card['layers']} | {card['heads']} "
        f"| {card['hidden_size']} | {card['max_context_length']} |",
        "",
        f"- parameters: {card['parameters']:,} (input and output embeddings tied: {card['tied_embeddings']})",
        f"- vocabulary: {card['vocab_size']:,} tokens (byte-level BPE, tokenizer/tokenizer.json)",
        f"- MLP hidden size: {card['mlp_hidden_size']:,}",
        f"- objective: {card['objective']}, {card['steps']:,} steps, {card['tokens_seen']:,} tokens seen, "
        f"seed {card['seed']}",
        "",
        "## Data mixture",
        "",
        "| source | share of training tokens | tokens | repeats |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {s['realised_share']:.1%} | {s['tokens_used']:,} | {s['repeats']:.2f} |"
            for name, s in card["mixture"].items()
        ),
        "",
        "## Validation bits per byte",
        "",
        f"- overall: {_bpb(card['val_bpb'])}",
        *(f"- {name}: {_bpb(bpb)}" for name, bpb in card["val_bpb_by_source"].items()),
    ]
    return "\n".join(lines) + "\n"


def _bpb(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def write_card(model_dir: Path, card: dict) -> None:
    write_json(card, model_dir / "card.json")
    write_bytes(markdown(card).encode(), model_dir / "card.md")
