"""Write the broken input shards of tests/bad_inputs/ from the real text of sample_data/.

Each case is a folder holding one kind of breakage, the way it arrives from a real producer: a
copy cut short, a renamed column, a non-string column, nulls, empty strings, bytes that are not
UTF-8, a JSON surrogate escape, no rows, ids that repeat across shards. The test
(tests/test_bad_inputs.py) states what the build does with each. Run from the repo root:

    .venv/bin/python tests/bad_inputs/make_bad_inputs.py

Cases that git cannot hold (an empty folder, a file without read permission, a 50 MB document)
are made by the test itself.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).parent
SAMPLE = HERE.parent.parent / "sample_data" / "part-00000.parquet"


def texts(n: int) -> list[str]:
    """The first n documents of the sample: real text, attributed in sample_data/README.md."""
    return pq.read_table(SAMPLE, columns=["text"]).slice(0, n)["text"].to_pylist()


def write(case: str, name: str, table: pa.Table | None = None, data: bytes | None = None) -> None:
    folder = HERE / case
    folder.mkdir(exist_ok=True)
    if table is not None:
        pq.write_table(table, folder / name)
    else:
        (folder / name).write_bytes(data)


def main() -> None:
    for old in HERE.iterdir():
        if old.is_dir():
            shutil.rmtree(old)
    docs = texts(8)
    ids = [f"doc-{i}" for i in range(len(docs))]
    good = pa.table({"id": ids, "text": docs})

    full = HERE / "full.parquet"
    pq.write_table(good, full)
    write("truncated_parquet", "part-00000.parquet", data=full.read_bytes()[: full.stat().st_size // 2])
    full.unlink()
    write("no_text_column", "part-00000.parquet", good.rename_columns(["id", "body"]))
    write("text_wrong_type", "part-00000.parquet", pa.table({"id": ids, "text": [len(t) for t in docs]}))
    write("null_text", "part-00000.parquet", pa.table({"id": ids, "text": docs[:3] + [None] + docs[4:]}))
    write("empty_texts", "part-00000.parquet", pa.table({"id": ids, "text": docs[:2] + ["", "   \n\t "] + docs[4:]}))
    # Parquet stores strings as bytes and does not check them: a Latin-1 writer's bytes get through.
    raw = [t.encode("utf-8") for t in docs]
    raw[5] = docs[5].encode("utf-8")[:40] + "café".encode("latin-1") + docs[5].encode("utf-8")[40:]
    offsets = [0]
    for r in raw:
        offsets.append(offsets[-1] + len(r))
    latin1 = pa.Array.from_buffers(
        pa.string(), len(raw), [None, pa.array(offsets, pa.int32()).buffers()[1], pa.py_buffer(b"".join(raw))]
    )
    write("invalid_utf8_parquet", "part-00000.parquet", pa.table({"id": ids, "text": latin1}))
    lines = [json.dumps({"id": i, "text": t}, ensure_ascii=False) for i, t in zip(ids, docs)]
    jsonl = "\n".join(lines).encode("utf-8")
    # A JSONL file written by a Latin-1 producer: one line's accented letters are single bytes.
    accented = next(i for i, t in enumerate(docs) if any(0x80 <= ord(c) <= 0xFF for c in t))
    latin1_line = lines[accented].encode("latin-1", errors="replace")
    jsonl = [line.encode("utf-8") for line in lines]
    write(
        "invalid_utf8_jsonl",
        "docs.jsonl",
        data=b"\n".join(jsonl[:accented] + [latin1_line] + jsonl[accented + 1 :]) + b"\n",
    )
    # JSON can escape half of a UTF-16 pair; the text is cut in the middle of an emoji's pair.
    head, tail = docs[0][:60], docs[0][60:]
    surrogate = '{"id": "split-pair", "text": ' + json.dumps(head)[:-1] + "\\ud83d" + json.dumps(tail)[1:] + "}"
    write("lone_surrogate_jsonl", "docs.jsonl", data=("\n".join(lines[:4] + [surrogate] + lines[4:]) + "\n").encode())
    write("not_json_jsonl", "docs.jsonl", data=("\n".join(lines[:2] + [lines[2][:-9]] + lines[3:]) + "\n").encode())
    write(
        "jsonl_without_text",
        "docs.jsonl",
        data=("\n".join(lines[:6] + [lines[6].replace('"text"', '"body"')]) + "\n").encode(),
    )
    write("zero_rows", "part-00000.parquet", good.slice(0, 0))
    write("duplicate_ids_across_shards", "part-00000.parquet", good.slice(0, 4))
    write("duplicate_ids_across_shards", "part-00001.parquet", pa.table({"id": ids[3:], "text": docs[3:]}))


if __name__ == "__main__":
    main()
