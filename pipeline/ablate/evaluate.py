"""The text every model of an ablation is scored on, and its bits per byte under a model.

Default: the build's own validation split (`tokens/val-*.bin`, per source). It is what the build
says its model should model, and no variant trains on one of its documents (the split is by id,
data.py). Its bias: it is filtered text, so it favours the variants that were filtered the same
way; and a variant that was not deduplicated may hold copies of its documents under other ids,
which favours it. `--eval PATH` scores held-out text of the user's instead.

Scoring reads every token shard in consecutive windows of block_size tokens (the last one
shorter), so every token after a shard's first is predicted once, and the same windows for every
model: bits per byte = summed loss in nats / ln 2 / the text's UTF-8 bytes (the `<|endoftext|>`
delimiters count as tokens, not bytes, as in the pretrain stage).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.json as pajson
import torch

from pipeline.ablate.variants import Build
from pipeline.errors import InputError
from pipeline.shards import combined_fingerprint, fingerprint, read_input_shard, write_json
from pipeline.stages import registry
from pipeline.tokenizer.encode import encode, load_tokenizer, with_delimiters
from pipeline.tokenizer.token_file import read_tokens, write_tokens
from pipeline.train.model import GPT

ALL = "all"
EVAL_SUFFIXES = (".txt", ".parquet", ".jsonl", ".jsonl.gz")


@dataclass(frozen=True)
class EvalText:
    """Token shards and the UTF-8 bytes of their text, overall (`all`) and per group (source)."""

    description: str
    groups: dict[str, tuple[tuple[Path, ...], int]]
    fingerprint: str

    @property
    def paths(self) -> list[Path]:
        return list(self.groups[ALL][0])

    @property
    def tokens(self) -> int:
        return sum(len(read_tokens(p)) for p in self.paths)


def validation_split(build: Build) -> EvalText:
    """The build's validation split, overall and per source (from the tokenizer stage's records)."""
    tokens = build.summary(registry.get("tokenizer"))
    if tokens is None:
        raise InputError(f"{build.dir}: no tokens/ yet. Run the tokenizer stage first.")
    folder = build.dir / registry.get("tokenizer").out
    by_source: dict[str, tuple[list[Path], int]] = {}
    for record in tokens["shards"]:
        if record["extra"]["val_tokens"]:
            paths, nbytes = by_source.setdefault(record["source"], ([], 0))
            by_source[record["source"]] = (
                paths + [folder / f"val-{record['name']}.bin"],
                nbytes + record["extra"]["val_bytes"],
            )
    if not by_source:
        raise InputError(f"{folder}: the validation split is empty; raise tokenizer.val_fraction or pass --eval.")
    groups = {ALL: (tuple(p for paths, _ in by_source.values() for p in paths), sum(b for _, b in by_source.values()))}
    if len(by_source) > 1:
        groups |= {source: (tuple(paths), nbytes) for source, (paths, nbytes) in by_source.items()}
    fp = combined_fingerprint([fingerprint(p) for p in groups[ALL][0]])
    return EvalText("the build's validation split", groups, fp)


def held_out(build: Build, spec: str, folder: Path) -> EvalText:
    """Held-out text (a file or folder of *.txt, one document a file, or Parquet / JSON Lines with
    a `text` column) encoded with the build's tokenizer into `folder/eval.bin`."""
    root = Path(spec)
    files = sorted(p for p in root.rglob("*") if p.name.endswith(EVAL_SUFFIXES)) if root.is_dir() else [root]
    if not root.exists() or not files:
        raise InputError(
            f"--eval {spec}: no such file, or no *.txt / *.parquet / *.jsonl in it. Point it at held-out text."
        )
    texts: list[str] = []
    for path in files:
        texts += _texts(path)
    tokenizer_path = build.dir / "tokenizer" / "tokenizer.json"
    fp = combined_fingerprint([fingerprint(p) for p in files] + [fingerprint(tokenizer_path)])
    out = folder / "eval.bin"
    done = folder / "_done.json"
    if not (out.exists() and done.exists() and fp in done.read_text()):
        tokenizer = load_tokenizer(tokenizer_path)
        flat, lengths = with_delimiters(encode(tokenizer, texts))
        write_tokens(out, flat, np.cumsum(lengths) - lengths, tokenizer.get_vocab_size())
        write_json({"fingerprint": fp, "files": [str(p) for p in files]}, done)
    nbytes = sum(len(t.encode()) for t in texts)
    return EvalText(spec, {ALL: ((out,), nbytes)}, fp)


def _texts(path: Path) -> list[str]:
    if path.suffix == ".txt":
        try:
            return [path.read_text(encoding="utf-8")]
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read it as UTF-8 text ({exc}).") from None
    if path.suffix == ".parquet":
        return read_input_shard(path)["text"].to_pylist()
    try:
        table = pajson.read_json(path)
    except Exception as exc:  # pyarrow's own error types vary by what is wrong with the line
        raise InputError(f"{path}: not JSON Lines ({str(exc).splitlines()[0]}). One JSON object per line.") from None
    if "text" not in table.column_names:
        raise InputError(f'{path}: no field "text" (fields: {", ".join(table.column_names)}).')
    return [t for t in table["text"].to_pylist() if t is not None]


@torch.no_grad()
def summed_loss(model: GPT, paths: list[Path] | tuple[Path, ...], batch_size: int, device: torch.device) -> float:
    """Cross-entropy in nats summed over every predicted token of the shards."""
    T = model.config.block_size
    model.eval()
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    )
    total = 0.0
    for path in paths:
        tokens = torch.from_numpy(np.asarray(read_tokens(path), dtype=np.int64))
        full = (len(tokens) - 1) // T
        windows = [(i * T, T) for i in range(full)]
        if (rest := len(tokens) - 1 - full * T) > 0:
            windows.append((full * T, rest))
        for first in range(0, len(windows), batch_size):
            batch = windows[first : first + batch_size]
            for length in sorted({n for _, n in batch}):  # the shorter last window goes alone
                starts = [s for s, n in batch if n == length]
                x = torch.stack([tokens[s : s + length] for s in starts]).to(device)
                y = torch.stack([tokens[s + 1 : s + 1 + length] for s in starts]).to(device)
                with autocast:
                    _, loss = model(x, y)
                total += loss.item() * y.numel()
    return total


def bits_per_byte(model: GPT, text: EvalText, batch_size: int, device: torch.device) -> dict[str, float]:
    """Bits per byte of the text under the model, overall (`all`) and per group."""
    losses = {
        name: summed_loss(model, paths, batch_size, device) for name, (paths, _) in text.groups.items() if name != ALL
    }
    if not losses:
        losses[ALL] = summed_loss(model, text.paths, batch_size, device)
    else:
        losses[ALL] = sum(losses.values())
    return {name: round(losses[name] / math.log(2) / text.groups[name][1], 6) for name in text.groups}
