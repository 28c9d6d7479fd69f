"""What a shard costs the privacy stage, for the order its jobs start in (steps.longest_first).

spaCy's NER, which only documents in `ner_languages` get, is nearly all of the stage's time: on
issue 25's corpus a 0.5 MB shard of English web pages took 12 s, one of declarations in other
languages 0.02-0.2 s. Shards are cut by bytes, so a file that holds its English documents
together makes a few shards that take most of the stage; started first, they no longer end last.
Read from the shard's `lang` column alone (quality's label), not its text: light enough for the
flow's process, which orders the jobs. Imports no presidio.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.config import PrivacyConfig

# A byte of an NER document costs about this many bytes of the patterns alone (the figures above).
NER_WEIGHT = 50


def shard_cost(path: Path, cfg: PrivacyConfig) -> float:
    """The shard's bytes on disk, weighted by the share of its documents that get NER (all of
    them when the shard has no `lang` column: the stage then detects languages itself)."""
    size = float(path.stat().st_size)
    if "lang" not in pq.read_schema(path).names:
        return size * NER_WEIGHT
    langs = pq.read_table(path, columns=["lang"]).column("lang")
    ner = pc.sum(pc.is_in(langs, pa.array(list(cfg.ner_languages), pa.string()))).as_py() or 0
    return size * (1 + (NER_WEIGHT - 1) * ner / max(1, len(langs)))
