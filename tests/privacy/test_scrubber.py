"""PII scrubbing on real text: recall per entity type, placeholders, patterns without NER, shards.

Detected values are never printed: failures and the recall table name document ids and types.
"""

from __future__ import annotations

import json
import random
from collections import Counter

import pyarrow as pa
import pytest

from pipeline.config import PrivacyConfig
from pipeline.privacy.scrubber import PII_COUNTS_TYPE, detect, run_shard, scrub_texts
from pipeline.stage import ShardContext

STRUCTURED = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IP_ADDRESS", "IBAN_CODE", "US_SSN"]
# Character-span recall on presidio's synthetic set. Phone numbers there are random digits in many
# national formats: presidio's own recognizer (valid numbers of 8 regions) finds ~0.6 of them,
# our PhoneShapeRecognizer the rest.
MIN_RECALL = {t: 0.99 for t in STRUCTURED} | {"PERSON": 0.55}  # issue 5: structured >= 0.99


@pytest.fixture(scope="module")
def synth(shared_data) -> list[dict]:
    """presidio-research's synthetic sentences (fake values) with labelled character spans."""
    return [json.loads(line) for line in (shared_data / "pii/presidio_synth_dev.jsonl").open()]


@pytest.fixture(scope="module")
def synth_detections(synth) -> list[list]:
    return detect([r["text"] for r in synth], ["en"] * len(synth), PrivacyConfig())


@pytest.fixture(scope="module")
def synth_detections_in_name_windows(synth) -> list[list]:
    return detect([r["text"] for r in synth], ["en"] * len(synth), PrivacyConfig(ner_mode="windows"))


def _span_scores(synth, detections, label: str) -> tuple[float, float]:
    """Character-level recall (gold chars covered by a same-type detection) and precision."""
    gold_chars = found_chars = both = 0
    for row, found in zip(synth, detections):
        gold = {c for s in row["spans"] if s["label"] == label for c in range(s["start"], s["end"])}
        hits = {c for r in found if r.entity_type == label for c in range(r.start, r.end)}
        gold_chars += len(gold)
        found_chars += len(hits)
        both += len(gold & hits)
    return both / max(gold_chars, 1), both / max(found_chars, 1)


@pytest.mark.parametrize("label", [*STRUCTURED, "PERSON"])
def test_recall_per_entity_type_on_presidio_synthetic_sentences(synth, synth_detections, label):
    recall, precision = _span_scores(synth, synth_detections, label)
    n = sum(s["label"] == label for r in synth for s in r["spans"])
    print(f"{label}: {n} spans, char recall {recall:.3f}, char precision {precision:.3f}")
    assert recall >= MIN_RECALL[label]
    if label == "PERSON":
        assert precision >= 0.5  # NER on short sentences: bounded, not exact


@pytest.mark.parametrize("label", [*STRUCTURED, "STREET_ADDRESS", "PERSON"])
def test_name_windows_keep_recall_within_half_a_point_on_presidio_synthetic_sentences(
    synth, synth_detections, synth_detections_in_name_windows, label
):
    """`ner_mode: windows` (NER reads only around possible names) against the whole-document NER."""
    recall, _ = _span_scores(synth, synth_detections_in_name_windows, label)
    exact, _ = _span_scores(synth, synth_detections, label)
    print(f"{label}: char recall {exact:.4f} whole documents, {recall:.4f} name windows")
    assert recall >= exact - 0.005


def test_name_windows_keep_person_recall_on_lower_case_posts(shared_data):
    """WNUT-17 posts: names are often in lower case there (short posts are read whole)."""
    rows = [json.loads(line) for line in (shared_data / "pii/wnut17_dev.jsonl").open()]
    gold = [{"spans": [s | {"label": "PERSON"} for s in r["spans"] if s["label"] == "person"]} for r in rows]
    texts, langs = [r["text"] for r in rows], ["en"] * len(rows)
    exact, _ = _span_scores(gold, detect(texts, langs, PrivacyConfig()), "PERSON")
    windows, _ = _span_scores(gold, detect(texts, langs, PrivacyConfig(ner_mode="windows")), "PERSON")
    assert exact > 0.4
    assert windows >= exact - 0.005


def test_scrubbed_synthetic_sentences_keep_no_structured_value(synth):
    rows = [r for r in synth if any(s["label"] in STRUCTURED for s in r["spans"])]
    scrubbed, counts = scrub_texts([r["text"] for r in rows], ["en"] * len(rows), PrivacyConfig())
    survivors = Counter()
    for row, text in zip(rows, scrubbed):
        for span in row["spans"]:
            if span["label"] in STRUCTURED and span["text"] in text:
                survivors[span["label"]] += 1
                print("survives:", row["id"], span["label"])
    assert not survivors, dict(survivors)
    placeholders = Counter(f"<{t}>" for c in counts for t in c)
    assert all(placeholders[f"<{t}>"] > 0 for t in STRUCTURED)
    assert all(f"<{t}>" in text for text, c in zip(scrubbed, counts) for t in c)


def test_german_fortune_loses_an_inserted_email_without_ner(shared_data):
    rows = [json.loads(line) for line in (shared_data / "corpora/fortunes_multilingual.jsonl").open()]
    fortune = next(r for r in rows if r["id"] == "fortune-de-00000")  # the professor and his bicycle
    address = "h.mueller@uni-beispiel.de"
    text = fortune["text"].replace("\n", f" Fragen an {address}.\n", 1)
    (scrubbed,), (counts,) = scrub_texts([text], ["de"], PrivacyConfig())
    assert address not in scrubbed
    assert "<EMAIL_ADDRESS>" in scrubbed
    assert counts.get("EMAIL_ADDRESS") == 1
    assert "PERSON" not in counts  # German text gets no (English) NER
    assert scrubbed.replace(" Fragen an <EMAIL_ADDRESS>.", "") == fortune["text"]


def test_run_shard_scrubs_planted_pii_in_sample_data_and_keeps_every_row(sample_table, ground_truth):
    pii = ground_truth["pii"]
    ids = set(random.Random(3).sample(sorted(pii), 50))
    table = sample_table.filter(pa.array([i in ids for i in sample_table["id"].to_pylist()]))
    result = run_shard(
        table, ShardContext(PrivacyConfig(), stage="privacy")
    )  # no `lang` column: it identifies languages

    assert result.kept.num_rows == table.num_rows and result.removed.num_rows == 0
    assert result.kept.column_names == [*table.column_names, "pii_counts"]
    assert result.kept.schema.field("pii_counts").type == PII_COUNTS_TYPE
    assert result.kept["id"].to_pylist() == table["id"].to_pylist()
    out = dict(zip(result.kept["id"].to_pylist(), result.kept["text"].to_pylist()))
    survivors = [
        (doc_id, e["type"])
        for doc_id in sorted(ids)
        for e in pii[doc_id]
        if e["type"] in ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IP_ADDRESS", "IBAN_CODE", "US_SSN")
        and e["value"] in out[doc_id]
    ]
    assert survivors == []
    assert result.extra["ner_documents"] > 0
    assert sum(v for k, v in result.extra.items() if k.startswith("pii:")) == sum(
        sum(m.values()) for m in (dict(x) for x in result.kept["pii_counts"].to_pylist())
    )


def test_run_shard_gives_an_empty_map_to_a_clean_document_and_is_deterministic():
    table = pa.table(
        {
            "id": ["a", "b"],
            "text": ["To be, or not to be: that is the question.", "Write to ophelia@elsinore.dk today."],
            "lang": ["en", "en"],
        }
    )
    ctx = ShardContext(PrivacyConfig(), stage="privacy")
    first, second = run_shard(table, ctx), run_shard(table, ctx)
    assert first.kept.equals(second.kept) and first.extra == second.extra
    assert first.kept["pii_counts"].to_pylist() == [[], [("EMAIL_ADDRESS", 1)]]
    assert first.kept["text"].to_pylist()[1] == "Write to <EMAIL_ADDRESS> today."
    assert first.extra["pii:EMAIL_ADDRESS"] == 1 and first.extra["pii:PERSON"] == 0


# One made-up value of every entity type the stage scrubs by default, in the phrase it is planted with.
PLANTED = {
    "EMAIL_ADDRESS": "Write to marta.kowalski@poczta-wp.pl about it.",
    "PHONE_NUMBER": "Call +44 20 7946 0958 tonight.",
    "CREDIT_CARD": "The card 4539 1488 0343 6467 was charged.",
    "IBAN_CODE": "Pay into DE89 3704 0044 0532 0130 00 by Monday.",
    "IP_ADDRESS": "Logins came from 81.2.69.160 and 2a00:1450:4001:82b::200e.",
    "US_SSN": "His SSN is 536-90-4399.",
    "MAC_ADDRESS": "The laptop's MAC is 00:1A:2B:3C:4D:5E.",
    "STREET_ADDRESS": "Ship to 350 Fifth Avenue, New York, NY 10118 or Hauptstraße 5, 10115 Berlin.",
    "SECRET": "Deploy with AKIAIOSFODNN7EXAMPLE and postgres://admin:hunter2x@db.internal/app.",
    "PERSON": "Yesterday Barack Obama spoke.",
}
PLANTED_VALUES = {
    "EMAIL_ADDRESS": ["marta.kowalski@poczta-wp.pl"],
    "PHONE_NUMBER": ["+44 20 7946 0958"],
    "CREDIT_CARD": ["4539 1488 0343 6467"],
    "IBAN_CODE": ["DE89 3704 0044 0532 0130 00"],
    "IP_ADDRESS": ["81.2.69.160", "2a00:1450:4001:82b::200e"],
    "US_SSN": ["536-90-4399"],
    "MAC_ADDRESS": ["00:1A:2B:3C:4D:5E"],
    "STREET_ADDRESS": ["350 Fifth Avenue", "Hauptstraße 5", "10118", "10115"],
    "SECRET": ["AKIAIOSFODNN7EXAMPLE", "hunter2x"],
    "PERSON": ["Barack Obama"],
}


def _shakespeare_speeches(shared_data, n: int) -> list[str]:
    text = (shared_data / "corpora/tinyshakespeare.txt").read_text()[:1003854]
    return [s for s in text.split("\n\n") if len(s) > 300][:n]


def test_every_supported_entity_type_planted_in_real_paragraphs_is_scrubbed(shared_data):
    assert set(PLANTED) == set(PrivacyConfig().entities)
    speeches = _shakespeare_speeches(shared_data, len(PLANTED))
    texts = [s.replace("\n", f" {PLANTED[t]}\n", 2) for s, t in zip(speeches, PLANTED)]
    scrubbed, counts = scrub_texts(texts, ["en"] * len(texts), PrivacyConfig())
    survivors = [t for text, t in zip(scrubbed, PLANTED) for v in PLANTED_VALUES[t] if v in text]
    assert survivors == []
    assert all(c.get(t, 0) >= 2 for c, t in zip(counts, PLANTED))  # planted twice in each


def test_allow_list_keeps_documentation_addresses_and_public_resolvers():
    text = "Mail admin@example.com or ops@corp-mail.net; DNS 8.8.8.8, gateway 192.0.2.7, host 81.2.69.160."
    (scrubbed,), _ = scrub_texts([text], ["en"], PrivacyConfig())
    assert scrubbed == "Mail admin@example.com or <EMAIL_ADDRESS>; DNS 8.8.8.8, gateway 192.0.2.7, host <IP_ADDRESS>."
    (unlisted,), _ = scrub_texts([text], ["en"], PrivacyConfig(allow_list=[]))
    assert "example.com" not in unlisted and "8.8.8.8" not in unlisted


def test_a_per_entity_threshold_overrides_min_score_for_that_entity_only():
    text = "Barack Obama wrote to michelle@whitehouse.gov."
    _, (default,) = scrub_texts([text], ["en"], PrivacyConfig())
    _, (strict,) = scrub_texts([text], ["en"], PrivacyConfig(entity_min_scores={"PERSON": 0.95}))
    assert default == {"EMAIL_ADDRESS": 1, "PERSON": 1}
    assert strict == {"EMAIL_ADDRESS": 1}  # spaCy's PERSON hits score 0.85


def test_ner_pipe_alone_gives_the_same_detections_as_presidios_analyze(shared_data):
    # The stage runs spaCy's `ner` pipe alone and the full pipeline only where context words
    # count; naive presidio runs the full pipeline on every text.
    from pipeline.privacy.engine import ner_analyzer

    texts = _shakespeare_speeches(shared_data, 30) + [PLANTED[t] for t in PLANTED]
    cfg = PrivacyConfig(allow_list=[])
    naive = [
        sorted(
            (r.entity_type, r.start, r.end)
            for r in ner_analyzer().analyze(t, "en", entities=cfg.entities, score_threshold=cfg.min_score)
        )
        for t in texts
    ]
    fast = [sorted((r.entity_type, r.start, r.end) for r in found) for found in detect(texts, ["en"] * len(texts), cfg)]
    assert fast == naive
    assert sum(map(len, naive)) > 20
