"""Where spaCy's NER can find a name, so that it reads only there (`privacy.ner_mode: windows`).

spaCy's NER (en_core_web_sm) decides at each token from that token's neighbourhood: its own
tok2vec sees four tokens either side of a token (four layers of window one), and the transition
model reads the current token, the one before it and, inside an entity, the entity's first
token. So a name read in a window that runs a few tokens past it on either side is, nearly
always, found as in the whole document. NER reads windows from BEFORE tokens before to AFTER
tokens after every token that can be part of a name, and the entities it finds there go back
into the whole document at their exact character offsets; the rest of the text is not read.
Documents of under WHOLE_UNDER tokens are read whole.

A token can be part of a name when it is capitalised, except "I" and a stop word opening a
sentence ("The", "It": capitalised by position alone), and when its sentence has no capital
letter at all (chat written in lower case, where names are too). What this misses: a name in
lower case within a longer text that uses capitals, and entities the whole-document model finds
only from farther context; in Shakespeare's verse most of the differences are lower-case words
that the whole-document model calls a PERSON in one context and not in another. Recall and
speed against the whole-document NER and naive presidio: bench/results/privacy_speed.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Set

from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import filter_spans, minibatch

# Tokens of context before and after a possible name: the NER decides at a token from the
# tok2vec outputs at that token and the one before it, and each of those reaches four tokens out.
BEFORE, AFTER = 5, 4
# Shorter documents are read whole: windows would save little there, and short texts (posts,
# chat) are where names most often go without capitals.
WHOLE_UNDER = 64
_SENTENCE_ENDS = (".", "!", "?")


def name_tokens(doc: Doc, stop_words: Set[str]) -> list[int]:
    """Indices of the tokens that can be part of a name (see the module docstring), in order."""
    found: list[int] = []
    sentence: list[int] = []  # the current sentence's words
    capitals = False  # ... whether one has a capital letter
    opens = True  # the next word opens a sentence
    for token in doc:
        text = token.text
        if token.is_space:
            opens = opens or "\n" in text
        else:
            if text[0].isupper() and text != "I" and not (opens and token.lower_ in stop_words):
                found.append(token.i)
            capitals = capitals or any(map(str.isupper, text))
            sentence.append(token.i)
            opens = text.endswith(_SENTENCE_ENDS)
        if opens or token.i == len(doc) - 1:  # the sentence ends here
            if not capitals:
                found += sentence
            sentence, capitals = [], False
    return found


def windows(doc: Doc, stop_words: Set[str]) -> list[tuple[int, int]]:
    """Token ranges [start, end) from BEFORE tokens before a possible name to AFTER tokens after
    it, overlapping ones merged; a document of under WHOLE_UNDER tokens is one range."""
    if len(doc) < WHOLE_UNDER:
        return [(0, len(doc))] if len(doc) else []
    merged: list[tuple[int, int]] = []
    for i in name_tokens(doc, stop_words):
        start, end = max(i - BEFORE, 0), min(i + AFTER + 1, len(doc))
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def ner_in_windows(nlp: Language, texts: Iterable[str], batch_size: int) -> Iterator[Doc]:
    """Each text tokenized, with the entities spaCy's NER finds in its name windows.

    `nlp` must have its `ner` pipe alone enabled while the docs are drawn; `batch_size` texts at
    a time are tokenized and their windows read together."""
    stop_words = nlp.Defaults.stop_words
    for batch in minibatch(texts, batch_size):
        docs = [nlp.make_doc(text) for text in batch]
        cuts = [[(doc[a].idx, doc[b - 1].idx + len(doc[b - 1])) for a, b in windows(doc, stop_words)] for doc in docs]
        read = nlp.pipe([doc.text[a:b] for doc, spans in zip(docs, cuts) for a, b in spans], batch_size=batch_size)
        for doc, spans in zip(docs, cuts):
            ents = []
            for offset, _ in spans:
                for ent in next(read).ents:
                    start, end = ent.start_char + offset, ent.end_char + offset
                    span = doc.char_span(start, end, ent.label_, alignment_mode="expand")
                    if span is not None:
                        ents.append(span)
            doc.ents = filter_spans(ents)
            yield doc
