"""Recognizers presidio lacks, as presidio recognizers (not a side regex pass).

Phone numbers: presidio's PhoneRecognizer accepts only numbers valid in 8 countries, so most
numbers written the way people write them elsewhere (`0496 46 46 70`, `(71) 4233-6306`,
`01.84.17.61.18`) pass through. Shapes that are phone numbers on their face score high on their
own; bare digit groups (`374 780 163`) only count when a phone word stands near them, because
without one they are as likely a quantity, a year range or a reference number.
"""

from __future__ import annotations

import regex
from presidio_analyzer import Pattern, PatternRecognizer, RecognizerResult

PHONE_SCORE = 0.6  # above the default privacy.min_score (0.4)
BARE_DIGITS_SCORE = 0.2  # below it, unless a phone word is near
MIN_DIGITS, MAX_DIGITS = 7, 15  # E.164 numbers have at most 15 digits
# Words that announce a phone number, in the corpus' languages; searched in a window around a hit.
PHONE_WORDS = regex.compile(
    r"\b(phone|tel|telephone|mobile|cell|fax|desk|office|call|calling|ring|sms|text me|whatsapp"
    r"|messages? to|answering|reach|contact|telefon\w*|tél[ée]phone|tel[ée]fono|телефон\w*|тел)\b",
    regex.IGNORECASE,
)
WINDOW_BEFORE, WINDOW_AFTER = 40, 20


class PhoneShapeRecognizer(PatternRecognizer):
    PATTERNS = [
        Pattern("international", r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(0\))?(?:[ .-]?\d{1,4}){2,5}\b", PHONE_SCORE),
        Pattern("area code in parentheses", r"(?<!\w)\(\d{2,4}\) ?\d{3,4}[-. ]\d{3,4}(?:x\d{1,5})?\b", PHONE_SCORE),
        Pattern("dashed or dotted 3-3-4", r"\b\d{3}([-.])\d{3}\1\d{4}(?:x\d{1,5})?\b", PHONE_SCORE),
        Pattern("dotted pairs", r"\b\d{2}(?:\.\d{2}){4}\b", PHONE_SCORE),
        Pattern("dashed pairs", r"\b\d{2}(?:-\d{2}){3}\b", PHONE_SCORE),
        Pattern("bare digit groups", r"\b\d{2,4}(?: \d{2,7}){1,3}\b", BARE_DIGITS_SCORE),
        Pattern("bare digits", r"\b\d{7,11}\b", BARE_DIGITS_SCORE),
    ]

    def __init__(self) -> None:
        super().__init__(supported_entity="PHONE_NUMBER", patterns=self.PATTERNS, name="PhoneShapeRecognizer")

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None, regex_flags=None) -> list[RecognizerResult]:
        found = []
        for result in super().analyze(text, entities, nlp_artifacts, regex_flags) or []:
            digits = sum(ch.isdigit() for ch in text[result.start : result.end])
            if not MIN_DIGITS <= digits <= MAX_DIGITS:
                continue
            if result.score < PHONE_SCORE:
                window = text[max(0, result.start - WINDOW_BEFORE) : result.end + WINDOW_AFTER]
                if PHONE_WORDS.search(window):
                    result.score = PHONE_SCORE
            found.append(result)
        return found
