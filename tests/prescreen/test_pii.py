"""PII detection: validated findings, exact spans, quiet on look-alikes."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hitl_prescreen.detectors import pii
from hitl_prescreen.detectors.base import FOLDS_TO_ASCII
from hitl_prescreen.detectors.national_ids import (
    CONTEXT_WINDOW,
    SCHEMES,
    national_ids,
)
from hitl_prescreen.detectors.pii import PiiConfig, PiiDetector, card_brand
from tests.prescreen.helpers import spans

pytestmark = pytest.mark.unit
PII = PiiDetector()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Card 4111 1111 1111 1111 is on file.", "4111 1111 1111 1111"),
        ("Mastercard 2221-0000-0000-0009 works", "2221-0000-0000-0009"),
        ("amex 378282246310005.", "378282246310005"),
        ("Discover 6011 1111 1111 1117 ok", "6011 1111 1111 1117"),
        ("JCB: 3530111333300000", "3530111333300000"),
        ("Diners 3056 9309 0259 04 ok", "3056 9309 0259 04"),
    ],
)
def test_luhn_valid_cards_of_every_brand_are_flagged_on_their_digits(text, expected):
    assert spans(PII, text) == [("payment_card", expected)]


@pytest.mark.parametrize(
    "text",
    [
        "Order 4111 1111 1111 1112 has shipped.",  # fails Luhn
        "Tracking 1234567812345678 ready",  # fails Luhn
        "Reference 0000000000000000",  # Luhn-valid, no card brand
        "IBAN DE88 3704 0044 0532 0130 00 (wrong check digits)",
        "Release 10.0.19041.1 is out; v2.3.4 too.",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "id 123e4567-e89b-12d3-a456-426614174000",
        "SSN 078-05-1120 is the famous invalid one; 666-12-3456 too",
        "logo@2x.png and 2024-01-15",
        "It costs $1,299.00 for 12 months, 3 pack, 250 ml.",
        "Localhost 127.0.0.1 and 0.0.0.0",
    ],
)
def test_look_alikes_are_not_flagged(text):
    assert spans(PII, text) == []


def test_each_category_with_exact_spans():
    text = (
        "Mail jane.doe@example.co.uk, call +44 20 7946 0958 or (415) 555-2671, "
        "IBAN GB82 WEST 1234 5698 7654 32, SSN 536-22-1234, from 203.0.113.9."
    )
    assert spans(PII, text) == [
        ("email", "jane.doe@example.co.uk"),
        ("phone", "+44 20 7946 0958"),
        ("phone", "(415) 555-2671"),
        ("iban", "GB82 WEST 1234 5698 7654 32"),
        ("us_ssn", "536-22-1234"),
        ("ip_address", "203.0.113.9"),
    ]


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("Son portable : 06 59 17 28 64.", "06 59 17 28 64"),
        ("Ruf an: 030 1234567", "030 1234567"),
        ("WhatsApp 98765 43210 anytime", "98765 43210"),
        ("Ligue (11) 91234-5678 hoje", "(11) 91234-5678"),
        ("電話 090-1234-5678 まで", "090-1234-5678"),
        ("mobile 0412 345 678", "0412 345 678"),
        ("phone number 4155552671", "4155552671"),
        ("Tel. 0044 20 7946 0958", "0044 20 7946 0958"),
    ],
)
def test_international_phone_formats(text, number):
    assert spans(PII, text) == [("phone", number)]


def test_bare_digit_runs_need_phone_context():
    assert spans(PII, "Order 4155552671 shipped") == []
    assert spans(PII, "Call 4155552671 today") == [("phone", "4155552671")]


def test_ipv6_and_private_addresses():
    found = spans(PII, "Hosts 2001:db8::8a2e:370:7334 and 10.1.2.3 and fe80::1")
    assert [c for c, _ in found] == ["ip_address"] * 3
    quiet = PiiDetector(PiiConfig(flag_private_ips=False))
    assert spans(quiet, "Host 10.1.2.3 and 81.2.69.160") == [("ip_address", "81.2.69.160")]


def test_categories_can_be_switched_off():
    only_email = PiiDetector(PiiConfig(categories=("email",)))
    assert spans(only_email, "a@b.io 4111 1111 1111 1111") == [("email", "a@b.io")]


def test_card_brand_rules():
    assert card_brand("4111111111111111") == "Visa"
    assert card_brand("5555555555554444") == "Mastercard"
    assert card_brand("9111111111111111") is None


def test_adjacent_numbers_do_not_hide_a_card():
    text = "Qty 3 4111111111111111 ok"
    assert spans(PII, text) == [("payment_card", "4111111111111111")]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Su DNI es 12345678Z.", "12345678Z"),
        ("NIE X1234567L en el expediente", "X1234567L"),
        ("CPF 390.533.447-05 no cadastro", "390.533.447-05"),
        ("Codice fiscale RSSMRA85T10A562S", "RSSMRA85T10A562S"),
        ("NI number AB 12 34 56 C on the payslip", "AB 12 34 56 C"),
        ("Aadhaar: 2345 6789 0124", "2345 6789 0124"),
        ("BSN 111222333 staat op de pas", "111222333"),
        ("NIR 2 95 10 99 126 111 93 (sécurité sociale)", "2 95 10 99 126 111 93"),
    ],
)
def test_national_ids_are_validated_by_their_own_rules(text, value):
    assert spans(PII, text) == [("national_id", value)]


@pytest.mark.parametrize(
    "text",
    [
        "DNI 12345678A has the wrong letter",
        "CPF 390.533.447-06 fails its check digits",
        "Order 111222333 shipped",  # a valid BSN shape, but no BSN context
        "Aadhaar is India's id scheme; reference 2345 6789 0125 failed",
    ],
)
def test_national_id_look_alikes_are_quiet(text):
    assert [c for c, _ in spans(PII, text) if c == "national_id"] == []


# --- Scanning only where a match can lie finds what scanning the whole text finds. ---

# Pieces that form, or almost form, what the scans look for; joined with random characters.
PIECES = [
    "4111 1111 1111 1111",
    "4111111111111111",
    "378282246310005",
    "536-22-1234",
    "SSN 536221234",
    "DE89 3704 0044 0532 0130 00",
    "GB82WEST12345698765432",
    "Su DNI es 12345678Z",
    "X-1234567-L",
    "390.533.447-05",
    "CPF 39053344705",
    "RSSMRA85T10A562S",
    "AB 12 34 56 C",
    "Aadhaar: 2345 6789 0124",
    "SIN 046 454 286",
    "BSN 111.22.333",
    "NIR 1 85 05 2A 123 456 78",
    "jane.doe@example.co.uk",
    "a@b.io",
    "203.0.113.9",
    "1.2.3.4",
    "10.1.2.345",
    "+44 20 7946 0958",
    "(415) 555-2671",
    "(+1) 415.555.2671",
    "call 4155552671",
    "\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660Z",  # Arabic-Indic digits, a DNI shape
    "\uff14\uff11\uff11\uff11 1111 1111",  # fullwidth digits
    # Names of schemes with a letter that only case-insensitive matching equates to ASCII
    "B\u017fN 111222333",
    "U\u0130DA\u0130 2345 6789 0124",
    "\u0131nsee 2 95 10 99 126 111 93",
    "2001:db8::8a2e:370:7334",
    "fe80::1",
    "1:2:3:4:5:6:7:8",
    "1.2.3.4567",
    "12 34 56 78 90 12 34",
]
TEXTS = st.lists(
    st.one_of(
        st.sampled_from(PIECES),
        st.text(
            alphabet="0123456789 .-/()+@:_ABXYZabz\n,\u0663\uff11\u0131\u00e9\U0001f60a",
            max_size=10,
        ),
    ),
    max_size=8,
).map("".join)
DIGIT_SCANS = [pii._CARD, pii._SSN, pii._SSN_BARE, pii._IPV4] + [
    s.regex for s in SCHEMES if s.window == "digits"
]
CAPITAL_SCANS = [pii._IBAN] + [s.regex for s in SCHEMES if s.window == "capitals"]


def _matches(regex: re.Pattern[str], text: str, window: tuple[int, int]) -> list[tuple[int, int]]:
    return [m.span() for m in regex.finditer(text, *window)]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS)
def test_windows_hold_every_match(text):
    whole = (0, len(text))
    digits, capitals = pii.digit_window(text), pii.capitals_window(text)
    for regex in DIGIT_SCANS:
        assert _matches(regex, text, digits) == _matches(regex, text, whole), regex.pattern
    for regex in CAPITAL_SCANS:
        assert _matches(regex, text, capitals) == _matches(regex, text, whole), regex.pattern
    assert _matches(pii._EMAIL, text, pii.email_window(text)) == _matches(pii._EMAIL, text, whole)
    if pii.may_hold_ipv6(text):
        ipv6 = pii.ipv6_window(text)
        assert _matches(pii._IPV6, text, ipv6) == _matches(pii._IPV6, text, whole)
    # Phone-shaped runs of too few digits may be cut differently, validated phones may not.
    config = PiiConfig()
    assert list(pii._phones(text, config, [], digits)) == list(pii._phones(text, config, [], whole))
    assert list(national_ids(text, digits, capitals)) == list(national_ids(text))


def _hint_gated_national_ids(text: str) -> list[tuple[int, int, str]]:
    """What national_ids found when every named scheme needed a hint in text.lower()."""
    found = []
    lowered = text.lower()
    for scheme in sorted(SCHEMES, key=lambda scheme: scheme.context is not None):
        if scheme.hints and not any(hint in lowered for hint in scheme.hints):
            continue
        for m in scheme.regex.finditer(text):
            before = text[max(0, m.start() - CONTEXT_WINDOW) : m.start()]
            named = scheme.context is None or scheme.context.search(before)
            if named and scheme.valid(m.group()):
                found.append((m.start(), m.end(), scheme.label))
    return found


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS)
def test_named_schemes_find_what_the_hint_gate_let_through(text):
    assert list(national_ids(text)) == _hint_gated_national_ids(text)


# The phone pattern as a plain alternation, before its first character became one class.
PLAIN_PHONE = re.compile(
    r"(?:\((?<![\w+.,/-]\()\+?\(?\d|\+(?<![\w+.,/-]\+)\(?\d|\d(?<![\w+.,/-]\d))"
    r"[\d \-.()/]{5,22}\d(?![\w/]|[.,]\d)",
    re.ASCII,
)


@settings(max_examples=300, deadline=None)
@given(text=TEXTS)
def test_phone_pattern_matches_as_the_plain_alternation(text):
    whole = (0, len(text))
    assert _matches(pii._PHONE, text, whole) == _matches(PLAIN_PHONE, text, whole)


def test_no_decimal_digit_lies_between_ascii_and_u0660():
    """_DIGIT_RUN finds its first digit through the class [0-9\\u0660-\\U0010ffff]."""
    assert re.findall(r"\d", "".join(map(chr, range(0x80, 0x660)))) == []


def test_folds_to_ascii_holds_every_character_a_hint_letter_matches_otherwise():
    """Elsewhere, a case-insensitive match of a hint letter lower-cases to that letter."""
    letters = {ch for scheme in SCHEMES for hint in scheme.hints for ch in hint}
    everything = "".join(map(chr, range(0x110000)))
    odd = {
        ch
        for letter in letters
        for ch in re.findall(f"(?i){re.escape(letter)}", everything)
        if ch.lower() != letter
    }
    assert odd <= set(FOLDS_TO_ASCII)


# --- PiiDetector.hits against the plain forms of its shortcuts. ---

# Digit runs of every shape: separators, dotted quads, runs just too short, other digits
RUNS = st.text(alphabet="0123456789 .-/()\u0663\uff11ABx:", max_size=40)


@settings(max_examples=1000, deadline=None)
@given(text=st.one_of(TEXTS, RUNS))
@example("1.2.3.45678 9")  # a dotted quad ending mid-run
@example("1.2.3.4.5.6")  # six digits: a run, not a dotted quad
@example("AB12 CD 1234567")
def test_one_scan_finds_what_the_digit_run_and_capitals_scans_find(text):
    whole = (0, len(text))
    landmarks = list(pii._LANDMARKS.finditer(text))
    runs = [m.span() for m in landmarks if m.lastgroup is None]
    capitals = [m.span() for m in landmarks if m.lastgroup == "capitals"]
    assert runs == _matches(pii._DIGIT_RUN, text, whole)
    assert capitals == _matches(pii._CAPITALS, text, whole)
    assert pii.windows(text) == (pii.digit_window(text), pii.capitals_window(text))


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(TEXTS, st.text(alphabet=":a0 \n", max_size=20)))
def test_ipv6_gate_is_the_plain_check(text):
    assert pii.may_hold_ipv6(text) == ("::" in text or text.count(":") >= 7)


def _hits_of_every_producer(detector: PiiDetector, text: str) -> list[pii._Hit]:
    """PiiDetector.hits as first written: every producer, over the whole text."""
    whole = (0, len(text))
    config, taken = detector.config, []
    producers = [
        ("payment_card", pii._cards(text, whole)),
        ("iban", pii._ibans(text, whole)),
        ("us_ssn", pii._ssns(text, whole)),
        ("national_id", pii._national_ids(text, whole, whole)),
        ("email", pii._emails(text, whole)),
        ("ip_address", pii._ips(text, config, whole, whole)),
        ("phone", pii._phones(text, config, taken, whole)),
    ]
    found = []
    for category, produced in producers:
        if category not in config.categories:
            continue
        for hit in produced:
            if not pii._overlaps(hit, taken):
                taken.append((hit.start, hit.end))
                found.append(hit)
    return sorted(found, key=lambda h: h.start)


ONLY_SOME = PiiDetector(PiiConfig(categories=("iban", "email", "phone")))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS)
def test_hits_are_those_of_every_producer_over_the_whole_text(text):
    assert PII.hits(text) == _hits_of_every_producer(PII, text)
    assert ONLY_SOME.hits(text) == _hits_of_every_producer(ONLY_SOME, text)
