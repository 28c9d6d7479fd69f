"""Recognizers presidio lacks, as presidio recognizers (not a side regex pass).

Phone numbers: presidio's PhoneRecognizer accepts only numbers valid in 8 countries, so most
numbers written the way people write them elsewhere (`0496 46 46 70`, `(71) 4233-6306`,
`01.84.17.61.18`) pass through. Shapes that are phone numbers on their face score high on their
own; bare digit groups (`374 780 163`) only count when a phone word stands near them, because
without one they are as likely a quantity, a year range or a reference number, or when a word
that names a phone number stands right before them ("my registered 668 5702", "my number is
...").
"""

from __future__ import annotations

import regex
from presidio_analyzer import AnalysisExplanation, EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import IbanRecognizer

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
# Words too common to count anywhere in the window ("the number of seats", "registered in 1999")
# that name a phone number when they stand right before one, up to a linking word or two ("My CN
# number is 13812345678", "on my registered 668 5702"). "number" after the name of another kind
# of number (card, account, order, ...) does not.
RIGHT_BEFORE = regex.compile(
    r"(?:\b(?<!\b(?:card|account|acct|order|reference|ref|serial|tracking|invoice|policy|customer|member"
    r"|id|passport|licen[cs]e|registration|model|part|case|ticket|flight|confirmation|transaction|routing"
    r"|tax|security|house|room|page|item|batch|version|claim|patient|employee|student|vat|bank|pin)\s+)"
    r"(?:number|no|nr|num)\.?|\bregistered|\bmobile|\bcell|\bphone|\btel|\bwhatsapp|\bcall|\btext)"
    r"(?:\s+(?:is|was|at|on|to|me|my|here|now))*\s*[:#]?\s*$",
    regex.IGNORECASE,
)
RIGHT_BEFORE_CHARS = 48  # how far back RIGHT_BEFORE looks


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
                before = text[max(0, result.start - RIGHT_BEFORE_CHARS) : result.start]
                if PHONE_WORDS.search(window) or RIGHT_BEFORE.search(before):
                    result.score = PHONE_SCORE
            found.append(result)
        return found


class _GroupPatternRecognizer(EntityRecognizer):
    """Regexes whose reported span is one capture group (the secret, not `password=` before it).

    presidio's PatternRecognizer reports the whole match; a secret's label or a URL's user name
    is not PII, so these report `group` only. No context words: a shape is enough.
    """

    ENTITY = ""
    PATTERNS: list[tuple[str, str, int, float]] = []  # (name, regex, group, score)
    FLAGS = 0

    def __init__(self) -> None:
        super().__init__(supported_entities=[self.ENTITY], name=type(self).__name__)
        self._compiled = [(name, regex.compile(rx, self.FLAGS), g, s) for name, rx, g, s in self.PATTERNS]

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        if entities and self.ENTITY not in entities:
            return []
        found = []
        for name, rx, group, score in self._compiled:
            for m in rx.finditer(text):
                start, end = m.span(group)
                found.append(
                    RecognizerResult(
                        self.ENTITY,
                        start,
                        end,
                        score,
                        analysis_explanation=AnalysisExplanation(self.name, score, pattern_name=name),
                        recognition_metadata={
                            RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                        },
                    )
                )
        return found


SECRET_SCORE = 0.8


class SecretRecognizer(_GroupPatternRecognizer):
    """Credentials of well-known shapes (gitleaks-style rules) and values assigned to secret names."""

    ENTITY = "SECRET"
    PATTERNS = [
        (
            "aws access key id",
            r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{16}\b",
            0,
            SECRET_SCORE,
        ),
        ("github token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b", 0, SECRET_SCORE),
        ("slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,250}", 0, SECRET_SCORE),
        ("slack webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9_/]{20,}", 0, SECRET_SCORE),
        ("google api key", r"\bAIza[0-9A-Za-z_-]{35}\b", 0, SECRET_SCORE),
        ("stripe key", r"\b[sr]k_(?:live|test)_[0-9A-Za-z]{16,}\b", 0, SECRET_SCORE),
        ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", 0, SECRET_SCORE),
        (
            "private key block",
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
            0,
            SECRET_SCORE,
        ),
        # `api_key = "..."`, `"client_secret": "..."`, `password: ...`: the value, 8+ characters
        # with a digit or a symbol, so prose like "password: unchanged" stays.
        (
            "assigned secret",
            r"(?i)\b(?:[a-z0-9_.-]*(?:api[_-]?key|apikey|secret|token|passwd|password|pwd|access[_-]?key|auth)[a-z0-9_.-]*)"
            r"[\"']?\s*(?:=|:|=>)\s*[\"']?((?=[^\s\"',;]*[\d_/+=!@#$%^&*-])[^\s\"',;]{8,})",
            1,
            SECRET_SCORE,
        ),
        # scheme://user:password@host
        ("password in url", r"(?i)\b[a-z][a-z0-9+.-]*://[^\s:/@]+:([^\s:/@]+)@", 1, SECRET_SCORE),
    ]
    FLAGS = regex.DOTALL


ADDRESS_SCORE = 0.6
_STREET_TYPES = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace"
    r"|Close|Crescent|Gardens|Square|Sq|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Trail|Row|Grove|Mews"
    r"|Creek)"  # not Walk, Park, Hill, Green, View: "1999 Three Men Walk" is a title
)
_UNIT = r"(?:,?[ \t]+(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor)\.?[ \t]*#?\w+)*"
_US_CITY_STATE_ZIP = r",?[ \t]*\n?[ \t]*[A-Z][\w'.-]*(?:[ \t][A-Z][\w'.-]*){0,3},?[ \t]+[A-Z]{2}[ \t]+\d{5}(?:-\d{4})?"
_UK_TOWN_POSTCODE = r",?[ \t]*\n?[ \t]*(?:[A-Z][\w'-]*,?[ \t]){0,3}[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2}\b"
_DE_SUFFIX = r"(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|steig|pfad|chaussee|markt|graben)"


class StreetAddressRecognizer(_GroupPatternRecognizer):
    """Street addresses in US, UK and German formats (presidio has none).

    A house number next to a street word (`221B Baker Street`, `Hauptstraße 5`) is the anchor;
    unit, city, state and postcode that follow in the usual order are taken into the span.
    """

    ENTITY = "STREET_ADDRESS"
    PATTERNS = [
        (
            "us/uk street",
            r"\b\d{1,6}[A-Za-z]?(?:[ \t]\d{1,5})?[ \t]+(?:[A-Z][\w'.-]*[ \t]+){1,4}"
            + _STREET_TYPES
            + r"\b(?:(?<=St|Ave|Rd|Blvd|Ln|Dr|Ct|Pl|Sq|Pkwy|Hwy|Cir)\.)?"
            + _UNIT
            + r"(?:"
            + _US_CITY_STATE_ZIP
            + "|"
            + _UK_TOWN_POSTCODE
            + ")?",
            0,
            ADDRESS_SCORE,
        ),
        (
            "de street",
            r"\b[A-ZÄÖÜ][\wäöüß-]*" + _DE_SUFFIX + r"[ \t]+\d{1,4}[a-z]?(?:-\d{1,4}[a-z]?)?\b"
            r"(?:,?[ \t]*\n?[ \t]*\d{5}[ \t]+[A-ZÄÖÜ][\wäöüß-]+)?",
            0,
            ADDRESS_SCORE,
        ),
        (
            "de street, two words",
            r"\b[A-ZÄÖÜ][\wäöüß-]+[ \t](?:Straße|Str\.|Weg|Gasse|Platz|Allee|Ring|Damm)[ \t]+\d{1,4}[a-z]?\b"
            r"(?:,?[ \t]*\n?[ \t]*\d{5}[ \t]+[A-ZÄÖÜ][\wäöüß-]+)?",
            0,
            ADDRESS_SCORE,
        ),
        (
            "us military",
            r"\b(?:PSC|Unit)[ \t]\d{4},?[ \t]Box[ \t]\d{4}(?:,?\s*(?:APO|FPO|DPO)[ \t]A[AEP][ \t]\d{5})?",
            0,
            ADDRESS_SCORE,
        ),
        ("apartment", r"\b(?:Apt|Apartment)\.?[ \t]#?\d{1,5}\b", 0, ADDRESS_SCORE),
    ]


class EmailOnIpRecognizer(PatternRecognizer):
    """E-mail addresses whose domain is an IP address (`name@1.2.3.4`, RFC 5321's `name@[1.2.3.4]`,
    `name@[IPv6:...]`): presidio's e-mail recognizer wants a domain with a public suffix, so only
    the IP was found and the user name stayed. The whole address is the e-mail; scoring above the
    IP recognizer (0.6) makes the anonymizer keep it over the IP inside it."""

    PATTERNS = [
        Pattern("e-mail on an IPv4 address", r"\b[\w.+-]+@(?:\d{1,3}\.){3}\d{1,3}\b", 0.8),
        Pattern("e-mail on an address literal", r"\b[\w.+-]+@\[(?:IPv6:[0-9A-Fa-f:.]+|(?:\d{1,3}\.){3}\d{1,3})\]", 0.8),
    ]

    def __init__(self) -> None:
        super().__init__(supported_entity="EMAIL_ADDRESS", patterns=self.PATTERNS, name="EmailOnIpRecognizer")


class ExactIbanRecognizer(IbanRecognizer):
    """presidio's IBAN recognizer, matched case-sensitively and validated on the exact match.

    The registry builds presidio's with the engine's case-insensitive flags, and its validation
    accepts (at the pattern's score, above privacy.min_score) a match that is an IBAN only once
    upper-cased: "LV80 bANK ..." or an IBAN with the next word joined ("... 7601 failed"). IBANs
    are written in capitals (ISO 13616); only a match whose checksum and country format hold as
    written is one.
    """

    def __init__(self) -> None:
        super().__init__(regex_flags=regex.DOTALL | regex.MULTILINE, name="ExactIbanRecognizer")

    def validate_result(self, pattern_text: str) -> bool:
        return super().validate_result(pattern_text) is True  # None: valid only upper-cased
