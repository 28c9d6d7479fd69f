"""Text from a build's trained model: its tokenizer encodes the prompt, the checkpoint continues it."""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.errors import InputError
from pipeline.tokenizer.encode import decode, encode, load_tokenizer
from pipeline.tokenizer.train import EOT_ID
from pipeline.train.model import GPT, GPTConfig


def load_model(ckpt_path: Path, device: torch.device) -> GPT:
    if not ckpt_path.exists():
        raise InputError(f"{ckpt_path}: no checkpoint. Run the pretrain stage first (--stages pretrain).")
    state = torch.load(ckpt_path, map_location=device, weights_only=False)
    model = GPT(GPTConfig(**state["model_config"])).to(device)
    model.load_state_dict(state["model"])
    return model.eval()


def sample(
    build_dir: Path,
    prompt: str,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = 50,
    seed: int = 0,
) -> str:
    """The prompt and its continuation, cut at the first <|endoftext|> the model writes."""
    tokenizer_path = build_dir / "tokenizer" / "tokenizer.json"
    if not tokenizer_path.exists():
        raise InputError(f"{tokenizer_path}: no tokenizer. Run the tokenizer stage first (--stages tokenizer).")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_model(build_dir / "model" / "ckpt.pt", device)
    tokenizer = load_tokenizer(tokenizer_path)
    torch.manual_seed(seed)
    # Training documents start with the delimiter, so the prompt reads as the start of a document.
    prompt_ids = [EOT_ID] + encode(tokenizer, [prompt])[0]
    idx = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    new_ids = model.generate(idx, max_new_tokens, temperature, top_k)[0, len(prompt_ids) :].tolist()
    if EOT_ID in new_ids:  # the model ended the document
        new_ids = new_ids[: new_ids.index(EOT_ID)]
    # Decoded together: a character whose bytes straddle the prompt's end comes out whole.
    return decode(tokenizer, prompt_ids[1:] + new_ids)
