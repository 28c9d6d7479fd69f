"""The checks that follow the extractors (pipeline/extract/extractors.py), on real pages (the
committed dolma WARC fixtures, and trafilatura's evaluation pages in ../shared: those tests skip
without it, and each names the page and a snippet its annotators marked) and on pages written
for the tests."""

from __future__ import annotations

import gzip
import json

import pytest
import trafilatura
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

from pipeline.extract.extractors import (
    MIN_TEXT_CHARS,
    RESILIPARSE_OPTIONS,
    blocks,
    drop_boilerplate_lines,
    drop_navigation_runs,
    resiliparse_text,
    trafilatura_text,
)
from pipeline.extract.html import decode
from tests.extract.warcs import dolma_pages


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def dolma() -> dict[str, str]:
    return {url: decode(body) for url, body in dolma_pages()}


@pytest.fixture(scope="module")
def evaluation_pages(shared_data) -> dict[str, dict]:
    with gzip.open(shared_data / "web" / "trafilatura_dev.jsonl.gz", "rt", encoding="utf-8") as f:
        return {page["id"]: page for page in map(json.loads, f)}


def test_block_lines_say_what_resiliparse_plain_text_says(dolma):
    for page in dolma.values():
        tree = HTMLTree.parse(page)
        for main_content in (True, False):
            plain = extract_plain_text(tree, main_content=main_content, **RESILIPARSE_OPTIONS)
            assert _words(" ".join(block.text for block in blocks(tree, main_content))) == _words(plain)


def test_block_lines_mark_links_and_headings_on_a_real_page(dolma):
    found = {block.text.strip(): block for block in blocks(HTMLTree.parse(dolma["https://allenai.org/"]), True)}
    assert found["View open jobs"].links == 1.0 and not found["View open jobs"].heading
    assert found["Featured News"].heading and found["Featured News"].links == 0.0
    text = resiliparse_text(dolma["https://allenai.org/"])
    assert "View open jobs" not in text
    assert "EarthRanger is a real-time software solution" in text


def test_a_table_row_whose_cells_link_stays_as_data(dolma):
    page = dolma["https://soldaini.net/lineage/"]
    row = next(b for b in blocks(HTMLTree.parse(page), True) if "Siméon Denis Poisson" in b.text)
    assert "\t" in row.text and row.links == 0.0
    assert "Siméon Denis Poisson" in resiliparse_text(page)


def test_default_mode_drops_a_teaser_that_is_a_link_on_the_page(evaluation_pages):
    page = evaluation_pages["traf-abbf7d744529"]  # haufe.de: a related article's title, linked
    plain = trafilatura.extract(page["html"], url=page["url"], include_comments=False, include_tables=True)
    ours = _words(trafilatura_text(page["html"], page["url"]))
    assert "Verweigert der Anwalt die Maske," in _words(plain)
    assert "Verweigert der Anwalt die Maske," not in ours
    assert all(_words(snippet) in ours for snippet in page["must_keep"])


def test_default_mode_takes_back_the_lead_paragraph_trafilatura_leaves_out(evaluation_pages):
    page = evaluation_pages["traf-4089cc026e64"]  # netzpolitik.org: the lead sits above the article body
    plain = trafilatura.extract(page["html"], url=page["url"], include_comments=False, include_tables=True)
    ours = trafilatura_text(page["html"], page["url"])
    assert "Seit Dezember 2015" not in _words(plain)
    assert ours.startswith("Seit Dezember 2015 verschickt eine Cider Connection")
    assert all(_words(snippet) in _words(ours) for snippet in page["must_keep"])
    assert not any(_words(snippet) in _words(ours) for snippet in page["must_remove"])


@pytest.mark.parametrize(
    "page_id, label",
    [("traf-491f9835a054", "Das könnte Dich auch interessieren"), ("traf-e2569987c41a", "Mehr Interessantes")],
)
def test_fast_mode_drops_link_lists_with_the_headings_over_them(evaluation_pages, page_id, label):
    page = evaluation_pages[page_id]
    plain = extract_plain_text(HTMLTree.parse(page["html"]), main_content=True, **RESILIPARSE_OPTIONS)
    assert label in drop_navigation_runs(drop_boilerplate_lines(plain)), "the line rules alone keep the label"
    ours = _words(resiliparse_text(page["html"], page["url"]))
    assert label not in ours
    assert all(_words(snippet) in ours for snippet in page["must_keep"])


def test_default_mode_takes_the_fast_text_where_trafilatura_finds_next_to_nothing(evaluation_pages):
    page = evaluation_pages["traf-3792eacb4619"]  # onlinemarketing.de: trafilatura keeps one line
    plain = trafilatura.extract(page["html"], url=page["url"], include_comments=False, include_tables=True)
    ours = _words(trafilatura_text(page["html"], page["url"]))
    assert len(plain) < MIN_TEXT_CHARS
    assert all(_words(snippet) in ours for snippet in page["must_keep"])


def test_fast_mode_reads_the_whole_page_where_its_main_content_is_empty(evaluation_pages):
    page = evaluation_pages["traf-5563fc61a86c"]  # teslamag.de: resiliparse finds no main content
    plain = extract_plain_text(HTMLTree.parse(page["html"]), main_content=True, **RESILIPARSE_OPTIONS)
    ours = _words(resiliparse_text(page["html"], page["url"]))
    assert not plain.strip()
    assert all(_words(snippet) in ours for snippet in page["must_keep"])


def test_a_heading_also_linked_from_the_table_of_contents_stays(evaluation_pages):
    page = evaluation_pages["traf-0cf6b09f47b3"]  # selbstversorger.de: every section heading is in the TOC
    tree = HTMLTree.parse(page["html"])
    heading = "Ab wann legen Hühner Eier?"
    shares = {block.links for block in blocks(tree, main_content=False) if block.text.strip() == heading}
    assert shares == {0.0, 1.0}, "the heading, and its link in the table of contents"
    assert heading in trafilatura_text(page["html"], page["url"])


LIBRARY_PAGE = """<html><body><nav><a href="/">Home</a> <a href="/news">News</a></nav><article>
<h1>Library opens late</h1>
<h2>The council voted on Tuesday to keep the town library open until nine in the evening through the winter.</h2>
<h3>What changes</h3>
<p>{opening}</p><p>{volunteers}</p></article></body></html>""".format(
    opening="From November the library opens at ten and closes at nine on weekdays. " * 3,
    volunteers="Volunteers will help at the desk in the evening hours, the librarian said. " * 3,
)


def test_fast_mode_keeps_a_lead_set_in_a_heading_tag():
    # Written for this test: the lead is an <h2> followed by a subheading, the shape of a list's
    # label left with nothing under it, but it reads as a sentence.
    text = resiliparse_text(LIBRARY_PAGE)
    assert "The council voted on Tuesday to keep the town library open" in text
    assert "From November the library opens at ten" in text


def test_navigation_runs_know_the_ideographic_full_stop():
    # Written for this test: two short Chinese sentences, then a two-link menu.
    text = "市议会周二投票决定。\n图书馆冬天开到晚上九点。\nHome\nNews"
    assert drop_navigation_runs(text) == "市议会周二投票决定。\n图书馆冬天开到晚上九点。"


HARBOUR_PAGE = """<html><body><nav><a href="/">Home</a> <a href="/news">News</a></nav><article>
<h1>Harbour festival draws record crowds</h1>
<p>{crowds}</p>
<p>Tickets: <a href="https://example.org/tickets">the festival's page</a></p>
<p>{boats}</p>
<p>Foto: Anna Beispiel</p>
<p>Also new: <a href="/news/ferry">New ferry timetable starts on Monday for all island routes</a></p>
<p>{next_year}</p></article></body></html>""".format(
    crowds="More than forty thousand people came to the harbour festival on Saturday, the organisers said. " * 2,
    boats="Boats from twelve countries moored along the quay, and the market stayed open until midnight. " * 2,
    next_year="Next year the festival will run for three days instead of two, the town council decided. " * 2,
)


def test_default_mode_drops_a_linked_headline_but_not_a_short_link_in_the_text():
    # Written for this test: both lines are mostly link text; the headline-length one is a
    # teaser, the short one is the article's own link.
    plain = trafilatura.extract(HARBOUR_PAGE, include_comments=False, include_tables=True)
    text = trafilatura_text(HARBOUR_PAGE)
    assert "Tickets: the festival's page" in plain and "New ferry timetable" in plain
    assert "Tickets: the festival's page" in text
    assert "New ferry timetable" not in text
    assert "Next year the festival will run for three days" in text


def test_default_mode_drops_a_photo_credit():
    # Written for this test: trafilatura keeps the credit line; the line rules drop it in both modes.
    assert "Foto: Anna Beispiel" in trafilatura.extract(HARBOUR_PAGE, include_comments=False, include_tables=True)
    assert "Foto: Anna Beispiel" not in trafilatura_text(HARBOUR_PAGE)
    assert "Foto: Anna Beispiel" not in resiliparse_text(HARBOUR_PAGE)
    assert drop_boilerplate_lines("Foto: Anna Beispiel\nThe quay was full.") == "The quay was full."


HARBOUR_LEAD = "The town's harbour festival had more visitors than ever this year, and it will grow longer next summer."
HARBOUR_LEAD_PAGE = """<html><body><nav><a href="/">Home</a></nav><article>
<h2>Harbour festival draws record crowds</h2><div class="share"><p>{lead}</p></div>
<p>{crowds}</p><p>{boats}</p></article></body></html>""".format(
    lead=HARBOUR_LEAD,
    crowds="More than forty thousand people came to the harbour festival on Saturday, the organisers said. " * 2,
    boats="Boats from twelve countries moored along the quay, and the market stayed open until midnight. " * 2,
)


def test_default_mode_takes_back_a_lead_between_the_headline_and_the_body():
    # Written for this test: trafilatura keeps the headline and the body but not the lead, set in
    # a container of its own between them.
    plain = trafilatura.extract(HARBOUR_LEAD_PAGE, include_comments=False, include_tables=True)
    assert plain.startswith("Harbour festival draws record crowds") and HARBOUR_LEAD not in plain
    text = trafilatura_text(HARBOUR_LEAD_PAGE)
    assert text.startswith("Harbour festival draws record crowds\n" + HARBOUR_LEAD + "\nMore than forty thousand")
