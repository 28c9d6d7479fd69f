"""A variant's training tokens, made as the build made its own: the build's tokenizer, its
train/val split, its mixture arithmetic.

Each shard of the variant is encoded with the build's tokenizer (`encode_batches`): documents go
to train or val by the same seeded hash of their id as in the build, so no variant trains on a
document of the build's validation split, whatever it kept. The training documents are then
drawn into the sources' mixture (`mixture.mix`, the build's weights unless the variant gives its
own) as `train-*.bin` in the variant's folder. A rerun with the same inputs skips the work.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.ablate.variants import Build, documents, parts, shares
from pipeline.config import VariantConfig
from pipeline.shards import combined_fingerprint, fingerprint, write_json
from pipeline.stages import registry
from pipeline.tokenizer.encode import encode_batches
from pipeline.tokenizer.mixture import ENCODED, mix


def tokenizer_path(build: Build) -> Path:
    return build.dir / "tokenizer" / "tokenizer.json"


def prepare(build: Build, variant: VariantConfig, folder: Path) -> dict:
    """Encode and mix the variant's documents into `folder`; returns its record (documents and
    tokens per split, the mixture), written to `folder/_done.json`."""
    found = parts(build, variant)
    tokenizer = tokenizer_path(build)
    section = build.config.tokenizer
    weights = shares(build, variant)
    fp = combined_fingerprint(
        [variant.model_dump_json(), fingerprint(tokenizer), build.config.section_hash("tokenizer"), json.dumps(weights)]
        + [f"{part.name}:{part.source}:{fingerprint(path)}" for part in found for path in part.files]
    )
    done = folder / "_done.json"
    if done.exists() and list(folder.glob("train-*.bin")):
        record = json.loads(done.read_text())
        if record.get("fingerprint") == fp:
            return record | {"skipped": True}
    totals = {"train_docs": 0, "val_docs": 0, "train_tokens": 0, "train_bytes": 0}
    for part in found:
        table = documents(build, variant, part)
        stats = encode_batches(
            table.to_batches(max_chunksize=section.batch_size),
            tokenizer,
            folder / ENCODED,
            part.name,
            section,
            build.config.seed,
        )
        for key in totals:
            totals[key] += stats[key]
    max_epochs = {s.name: s.max_epochs for s in build.sources}
    vocab_size = int(build.summary(registry.get("tokenizer"))["vocab_size"])
    shards = [(part.name, part.source) for part in found]
    mixture = mix(folder, shards, weights, max_epochs, section.train_tokens, build.config.seed, vocab_size)
    record = totals | {"fingerprint": fp, "shards": len(found), "mixture": mixture}
    write_json(record, done)
    return record | {"skipped": False}
