"""PhoneShapeRecognizer: phone numbers as people write them, not every number in the text."""

from pipeline.privacy.recognizers import PhoneShapeRecognizer, SecretRecognizer, StreetAddressRecognizer

# Formats from presidio-research's synthetic set (fake numbers), as planted in sample_data/.
SHAPED = [
    "+41 (0)38 549 02 90",
    "(71) 4233-6306",
    "(898)666-3621x0135",
    "201-948-1927",
    "01.84.17.61.18",
    "60-56-85-91",
]


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


def secrets(text: str) -> list[str]:
    return [text[r.start : r.end] for r in SecretRecognizer().analyze(text, ["SECRET"])]


def addresses(text: str) -> list[str]:
    return [text[r.start : r.end] for r in StreetAddressRecognizer().analyze(text, ["STREET_ADDRESS"])]


# Credential shapes (the documented example values of AWS, GitHub, Slack and jwt.io, made up otherwise).
TOKENS = [
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_" + "wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO0pINUx",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
]


def test_token_shapes_are_secrets_wherever_they_stand():
    for token in TOKENS:
        assert secrets(f"Use {token} for the deploy.") == [token]


def test_assigned_secrets_and_url_passwords_lose_the_value_but_keep_the_name():
    assert secrets('api_key = "9f8e7d6c5b4a39f8e"') == ["9f8e7d6c5b4a39f8e"]
    assert secrets("export DB_PASSWORD=s3cr3t-Pa55") == ["s3cr3t-Pa55"]
    assert secrets("postgres://admin:hunter2x@db.internal:5432/app") == ["hunter2x"]
    block = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0\n-----END RSA PRIVATE KEY-----"
    assert secrets(f"key:\n{block}\n") == [block]


def test_prose_about_passwords_is_not_a_secret():
    assert secrets("The password: unchanged since the token ceremony in 2019.") == []
    assert secrets("Visit https://www.example.org/docs for the api key guide.") == []


def test_street_addresses_in_us_uk_and_german_formats():
    assert addresses("Ship to 350 Fifth Avenue, New York, NY 10118 by Friday.") == [
        "350 Fifth Avenue, New York, NY 10118"
    ]
    assert addresses("He lived at 221B Baker Street, London NW1 6XE for years.") == [
        "221B Baker Street, London NW1 6XE"
    ]
    assert addresses("Jacob lives on 90 Whitchurch Road street.") == ["90 Whitchurch Road"]
    assert addresses("Bitte an Hauptstraße 5, 10115 Berlin schicken.") == ["Hauptstraße 5, 10115 Berlin"]
    assert addresses("PSC 3294, Box 9168\nAPO AA 61487") == ["PSC 3294, Box 9168\nAPO AA 61487"]


def test_numbers_before_capitalised_words_are_not_addresses():
    assert addresses("In 1999 Three Men Walk into the 2 Great Halls of 1066 Battle Abbey.") == []


# Held-out sentences of issue 18 (presidio-research's synthetic style; the numbers are fake).
def test_a_number_right_after_a_word_naming_it_is_a_phone_number():
    assert found("I didn't get any message on my registered 668 5702") == ["668 5702"]
    assert found("My CN number is 13812345678") == ["13812345678"]


def test_a_number_after_another_kind_of_number_word_is_not_a_phone_number():
    assert found("My account number is 40881234 and my order number: 7734512") == []
    assert found("The number of seats was 1234567 in the end.") == []
