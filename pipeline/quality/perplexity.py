"""Metric filter: each document's perplexity under a reference language model (CCNet style).

CCNet (Wenzek et al. 2020) scores web text with a language model trained on Wikipedia and cuts
each language into head / middle / tail buckets by perplexity. Here the reference corpus is a
folder of `<lang>.txt` files, one document per line (default: sample_data/reference, lingua
sentences and UDHR paragraphs); each language gets its own model, and a document is scored by
the model of its `lang` (no reference for the language: perplexity and bucket are null).

The model is a byte n-gram model (order 5: four bytes of context) with interpolated Kneser-Ney
smoothing (Chen & Goodman 1998: absolute discount D = n1 / (n1 + 2 n2) per order, lower orders
on continuation counts, the unigram level interpolated with the uniform distribution over the
256 byte values, so every byte sequence has a probability). Why this model rather than CCNet's
5-gram KenLM over SentencePiece tokens or a neural model:
- no extra tokenizer to train first, and no unknown symbols: the vocabulary is the 256 bytes;
- an n-gram of at most 8 bytes is its own exact 64-bit key, so training is `np.unique` and
  scoring is `np.searchsorted` over sorted key tables, once per distinct n-gram of a batch (a
  byte's probability depends on the n-gram ending with it alone): vectorised, no hashing
  collisions, a few MB of memory, trained in about a second from the reference set (a neural model would need
  minutes of training and a GPU-scale budget for the same role);
- Kneser-Ney is the smoothing that makes small n-gram models good: it is what KenLM does.

Text is normalised first as CCNet does (lower case, digits as 0, whitespace runs as one space)
and every document is preceded by order-1 padding bytes (the `<s>` of a byte model). Perplexity
is per byte: exp(-mean ln p(byte | 4 bytes before)).

Buckets: the cut-offs are per-language percentiles (`head_percentile`, `tail_percentile`) of the
perplexities of the reference documents themselves, each scored by a model trained on the other
folds (5-fold), so a reference document is judged as unseen text is. The final model is trained
on all of the reference.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import PerplexityConfig
from pipeline.shards import atomic_path, combined_fingerprint, fingerprint

DEFAULT_REFERENCE = Path(__file__).resolve().parents[2] / "sample_data" / "reference"
FOLDS = 5  # cut-offs come from held-out perplexities, each fold scored by the other four
PAD = 0  # the byte before a document: contexts at its start are padding
BUCKETS = ("head", "middle", "tail")
_DIGIT = re.compile(r"\d")
_cache: dict[str, Reference] = {}


def normalise(text: str) -> str:
    """CCNet's normalisation (less accent stripping): lower case, digits as 0, single spaces."""
    return " ".join(_DIGIT.sub("0", text.lower()).split())


def _encode(texts: list[str], order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All texts as one byte array, each after order-1 PAD bytes; (bytes, positions of the real
    bytes, byte count per text)."""
    encoded = [normalise(t).encode() for t in texts]
    pad = bytes([PAD]) * (order - 1)
    data = np.frombuffer(b"".join(pad + e for e in encoded), dtype=np.uint8)
    real = np.frombuffer(b"".join(b"\0" * (order - 1) + b"\1" * len(e) for e in encoded), dtype=np.uint8)
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    return data, np.flatnonzero(real), lengths


def _keys(data: np.ndarray, ends: np.ndarray, k: int) -> np.ndarray:
    """The k bytes ending at each position of `ends` as one uint64 (latest byte lowest)."""
    key = np.zeros(len(ends), dtype=np.uint64)
    for back in range(k):
        key |= data[ends - back].astype(np.uint64) << np.uint64(8 * back)
    return key


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct values, sorted; index of each value among them), as np.unique gives, faster:
    an unstable argsort (ties are equal values, so their order does not matter)."""
    order = np.argsort(values)
    ordered = values[order]
    new = np.empty(len(values), dtype=bool)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return ordered[new], inverse


def _lookup(table: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index into sorted `table`, whether the key is there) for each key."""
    index = np.minimum(np.searchsorted(table, keys), len(table) - 1)
    return index, table[index] == keys


@dataclass
class _Order:
    """The n-grams of one order: key = context << 8 | next byte, sorted."""

    keys: np.ndarray  # uint64
    counts: np.ndarray  # int64: raw counts at the top order, continuation counts below it
    contexts: np.ndarray  # uint64, sorted: the distinct contexts (keys >> 8)
    context_totals: np.ndarray  # int64: sum of counts per context
    context_types: np.ndarray  # int64: distinct next bytes per context
    discount: float

    @classmethod
    def build(cls, keys: np.ndarray, counts: np.ndarray) -> _Order:
        contexts, starts, types = np.unique(keys >> np.uint64(8), return_index=True, return_counts=True)
        n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
        discount = n1 / (n1 + 2 * n2) if n1 else 0.5  # Chen & Goodman's estimate
        return cls(keys, counts, contexts, np.add.reduceat(counts, starts), types, discount)


class NgramModel:
    """Interpolated Kneser-Ney byte n-gram model; `orders[k-1]` holds the k-grams."""

    def __init__(self, orders: list[_Order]) -> None:
        self.orders = orders

    @classmethod
    def train(cls, texts: list[str], order: int) -> NgramModel:
        data, ends, _ = _encode(texts, order)
        keys, counts = np.unique(_keys(data, ends, order), return_counts=True)
        orders = []
        for k in range(order, 0, -1):
            orders.append(_Order.build(keys, counts))
            # Kneser-Ney: a (k-1)-gram counts the distinct bytes seen before it, not its tokens.
            keys, counts = np.unique(keys & np.uint64((1 << (8 * (k - 1))) - 1), return_counts=True)
        return cls(orders[::-1])

    def log_probs(self, data: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """ln p(byte | context) of the byte at each position of `ends`."""
        p = np.full(len(ends), 1 / 256)  # below the unigram level: uniform over byte values
        keys = np.zeros(len(ends), dtype=np.uint64)
        for k, o in enumerate(self.orders, start=1):
            keys |= data[ends - (k - 1)].astype(np.uint64) << np.uint64(8 * (k - 1))  # one byte further back
            i, hit = _lookup(o.keys, keys)
            count = np.where(hit, o.counts[i], 0)
            j, seen = _lookup(o.contexts, keys >> np.uint64(8))
            total = np.where(seen, o.context_totals[j], 1)
            backoff = o.discount * np.where(seen, o.context_types[j], 0) * p
            # An unseen context leaves the lower order's probability as it is.
            p = np.where(seen, (np.maximum(count - o.discount, 0) + backoff) / total, p)
        return np.log(p)

    def next_byte_probs(self, context: str) -> np.ndarray:
        """p(b | context) for all 256 byte values b (they sum to 1)."""
        order = len(self.orders)
        head = bytes([PAD]) * (order - 1) + context.encode()
        data = np.frombuffer(b"".join(head + bytes([b]) for b in range(256)), dtype=np.uint8)
        ends = np.arange(1, 257) * len(head + b"x") - 1
        return np.exp(self.log_probs(data, ends))

    def perplexities(self, texts: list[str]) -> np.ndarray:
        """Per-byte perplexity of each text (NaN for a text with nothing left to score)."""
        order = len(self.orders)
        data, ends, lengths = _encode(texts, order)
        # A byte's probability depends on the n-gram that ends with it alone, and text repeats its
        # n-grams (web pages: ~10 bytes per distinct 5-gram), so each distinct one is scored once.
        grams, inverse = _distinct(_keys(data, ends, order))
        columns = grams.astype("<u8").view(np.uint8).reshape(-1, 8)[:, order - 1 :: -1]  # its bytes, in order
        log_p = self.log_probs(columns.ravel(), np.arange(order - 1, columns.size, order))[inverse]
        doc = np.repeat(np.arange(len(texts)), lengths)
        nll = -np.bincount(doc, weights=log_p, minlength=len(texts))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.exp(nll / lengths)


@dataclass
class Reference:
    """One model per reference language, with its (head, tail) perplexity cut-offs."""

    models: dict[str, NgramModel]
    cutoffs: dict[str, tuple[float, float]]

    def score(self, texts: list[str], langs: list[str]) -> tuple[list[float | None], list[str | None]]:
        """(perplexity, bucket) per text; both None when its language has no reference."""
        ppl: list[float | None] = [None] * len(texts)
        buckets: list[str | None] = [None] * len(texts)
        for lang, model in self.models.items():
            rows = [i for i, code in enumerate(langs) if code == lang]
            if not rows:
                continue
            head, tail = self.cutoffs[lang]
            for i, value in zip(rows, model.perplexities([texts[i] for i in rows]).tolist()):
                if value == value:  # NaN: nothing to score
                    ppl[i] = value
                    buckets[i] = "head" if value <= head else "tail" if value > tail else "middle"
        return ppl, buckets

    def save(self, path: Path) -> None:
        arrays = {"cutoffs": np.array([json.dumps(self.cutoffs, sort_keys=True)])}
        for lang, model in self.models.items():
            for k, o in enumerate(model.orders, start=1):
                for field in ("keys", "counts", "contexts", "context_totals", "context_types"):
                    arrays[f"{lang}/{k}/{field}"] = getattr(o, field)
                arrays[f"{lang}/{k}/discount"] = np.array(o.discount)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: Path) -> Reference:
        with np.load(path) as z:
            cutoffs = {lang: tuple(c) for lang, c in json.loads(str(z["cutoffs"][0])).items()}
            models = {}
            for lang in cutoffs:
                orders, k = [], 1
                while f"{lang}/{k}/keys" in z:
                    fields = [
                        z[f"{lang}/{k}/{f}"] for f in ("keys", "counts", "contexts", "context_totals", "context_types")
                    ]
                    orders.append(_Order(*fields, float(z[f"{lang}/{k}/discount"])))
                    k += 1
                models[lang] = NgramModel(orders)
        return cls(models, cutoffs)


def reference_files(cfg: PerplexityConfig) -> dict[str, Path]:
    folder = Path(cfg.reference_dir) if cfg.reference_dir else DEFAULT_REFERENCE
    files = {p.stem: p for p in sorted(folder.glob("*.txt"))}
    if not files:
        raise ValueError(f"quality.perplexity.reference_dir: no <lang>.txt files in {folder}")
    return files


def reference_fingerprint(cfg: PerplexityConfig) -> str:
    """Of the reference files' names and bytes and the model settings: what decides the model."""
    parts = [f"{lang}:{fingerprint(path)}" for lang, path in reference_files(cfg).items()]
    return combined_fingerprint(parts + [cfg.model_dump_json()])


def train_reference(cfg: PerplexityConfig) -> Reference:
    models, cutoffs = {}, {}
    for lang, path in reference_files(cfg).items():
        docs = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(docs) < FOLDS:
            raise ValueError(f"{path}: {len(docs)} reference documents; need at least {FOLDS} (one per line)")
        held_out = np.concatenate(
            [
                NgramModel.train([d for i, d in enumerate(docs) if i % FOLDS != fold], cfg.order).perplexities(
                    docs[fold::FOLDS]
                )
                for fold in range(FOLDS)
            ]
        )
        head, tail = np.percentile(held_out[~np.isnan(held_out)], [cfg.head_percentile, cfg.tail_percentile])
        cutoffs[lang] = (round(float(head), 6), round(float(tail), 6))
        models[lang] = NgramModel.train(docs, cfg.order)
    return Reference(models, cutoffs)


def reference_model(cfg: PerplexityConfig, path: Path | None = None) -> Reference:
    """The reference model, once per process: loaded from `path` (trained by the build's global
    step) or, without one, trained here from the reference files."""
    # A model file is rewritten when the reference changes: its mtime is part of the key.
    key = f"{path}@{path.stat().st_mtime_ns}" if path else reference_fingerprint(cfg)
    if key not in _cache:
        _cache[key] = Reference.load(path) if path else train_reference(cfg)
    return _cache[key]
