"""PhoneShapeRecognizer: phone numbers as people write them, not every number in the text."""

from pipeline.privacy.recognizers import PhoneShapeRecognizer

# Formats from presidio-research's synthetic set (fake numbers), as planted in sample_data/.
SHAPED = ["+41 (0)38 549 02 90", "(71) 4233-6306", "(898)666-3621x0135", "201-948-1927", "01.84.17.61.18", "60-56-85-91"]


def found(text: str) -> list[str]:
    return [text[r.start : r.end] for r in PhoneShapeRecognizer().analyze(text, ["PHONE_NUMBER"]) if r.score >= 0.4]


def test_phone_shaped_numbers_are_found_without_context():
    for number in SHAPED:
        assert found(f"Le numéro {number} est le bon.") == [number]


def test_bare_digit_groups_need_a_phone_word_nearby():
    assert found("Phone:\n0496 46 46 70\n") == ["0496 46 46 70"]
    assert found("They're not answering at 374 780 163") == ["374 780 163"]
    assert found("The hall seats 374 780 163 people over three seasons.") == []


def test_years_and_short_numbers_are_not_phones():
    assert found("Call me in 1996, between 1645 and 1696, at 12 34.") == []
