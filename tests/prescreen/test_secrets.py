"""Credential detection: documented token shapes, spans on the secret value."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hitl_prescreen.detectors.base import FOLDS_TO_ASCII, is_plain
from hitl_prescreen.detectors.secrets import SecretsConfig, SecretsDetector
from tests.prescreen.helpers import run, spans

pytestmark = pytest.mark.unit
SECRETS = SecretsDetector()
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


@pytest.mark.parametrize(
    ("text", "category", "value"),
    [
        ("key AKIAIOSFODNN7EXAMPLE in env", "aws_access_key", "AKIAIOSFODNN7EXAMPLE"),
        (
            "aws secret: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.",
            "aws_secret_key",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        (
            "use `sk-proj-4fG7hJ2kL9mN3pQ8rS1tU6vW0xYz` here",
            "api_token",
            "sk-proj-4fG7hJ2kL9mN3pQ8rS1tU6vW0xYz",
        ),
        (
            "token ghp_14kodRvCrsSzJyndPqOauMf3F1rGbVH484yM, thanks",
            "api_token",
            "ghp_14kodRvCrsSzJyndPqOauMf3F1rGbVH484yM",
        ),
        ("slack xoxb-2048-4096-AbCdEfGhIjKl ok", "api_token", "xoxb-2048-4096-AbCdEfGhIjKl"),
        (
            "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "api_token",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        ),
        (f"Bearer {JWT} end", "jwt", JWT),
        ("DB password: Tr0ub4dor&3 then", "password", "Tr0ub4dor&3"),
        ('export PGPASSWORD="s3cr3t-Pa55"', "password", "s3cr3t-Pa55"),
    ],
)
def test_secret_shapes(text, category, value):
    assert spans(SECRETS, text) == [(category, value)]


def test_private_key_block_span_covers_the_block():
    block = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
        "-----END OPENSSH PRIVATE KEY-----"
    )
    text = f"Here it is:\n{block}\nKeep it safe."
    assert spans(SECRETS, text) == [("private_key", block)]


@pytest.mark.parametrize(
    "text",
    [
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 fixed it",
        "request id 123e4567-e89b-12d3-a456-426614174000",
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "Your password is stored hashed; reset the password: <your password>.",
        "set password=******** and token: ${API_TOKEN}",
        "we use scikit-learn and sk-learn style APIs",
        "The header eyJhbGciOi is the start of a JWT",
        "Set api_key to your key from the dashboard.",
    ],
)
def test_look_alikes_are_quiet(text):
    assert spans(SECRETS, text) == []


def test_explanations_never_repeat_the_whole_secret():
    flags = run(SECRETS, "token ghp_14kodRvCrsSzJyndPqOauMf3F1rGbVH484yM")
    assert "ghp_14kodRvCrsSzJyndPqOauMf3F1rGbVH484yM" not in flags[0].explanation


def test_passwords_can_be_switched_off():
    assert spans(SecretsDetector(SecretsConfig(passwords=False)), "password: Tr0ub4dor&3") == []


# --- The cheap tests that skip scans must never skip one that could match. ---

FOLDS = FOLDS_TO_ASCII
TOKENS = [
    "AKIAIOSFODNN7EXAMPLE",
    "A3TX",
    "sk-proj-4fG7hJ2kL9mN3pQ8rS1tU6vW0xYz",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "rk_test_",
    "ghp_14kodRvCrsSzJyndPqOauMf3F1rGbVH484yM",
    "github_pat_",
    "xoxb-2048-4096-AbCdEfGhIjKl",
    "AIzaSyA1234567890abcdefghijklmnopqrstu",
    "glpat-abcdefghij0123456789",
    "hf_abcdefghijklmnopqrstuvwxyz01234567",
    "npm_abcdefghijklmnopqrstuvwxyz0123456789",
    "postgres://admin:Hunter2xyz@db.example.com",
    JWT,
    "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----",
]
KEYWORDS = [
    "password",
    "PASSWD",
    "Pwd",
    "pass",
    "passphrase",
    "secret",
    "aws secret",
    "api_key",
    "API KEY",
    "apikey",
    "Access-Token",
    "auth token",
    "client_secret",
    "db_pass",
    "key",
    "token",
    "mysql -u root -p",
    "Login 'bob' /",
    "log in `bob` /",
]
# A keyword, perhaps with one letter swapped for a non-ASCII character that folds onto it.
SWAPS = [None, ("i", "\u0131"), ("s", "\u017f"), ("k", "\u212a"), ("I", "\u0130"), ("s", "S")]
KEYWORD = st.tuples(st.sampled_from(KEYWORDS), st.sampled_from(SWAPS)).map(
    lambda pair: pair[0].replace(*pair[1]) if pair[1] else pair[0]
)
ASSIGNMENT = st.tuples(
    KEYWORD,
    st.sampled_from([": ", "=", " = ", ":=", " is ", " to ", " of ", " "]),
    st.sampled_from(["Tr0ub4dor&3", "'pa55Word!'", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPL3KEY"]),
).map("".join)
TEXTS = st.lists(
    st.one_of(
        st.sampled_from(TOKENS),
        ASSIGNMENT,
        st.text(alphabet="aAkKsS_-:/.= '\"`09\n\u00e9\u0131\U0001f60a", max_size=8),
    ),
    max_size=6,
).map(" ".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS)
def test_skipped_patterns_could_not_have_matched(text):
    scanned = list(SECRETS.patterns_to_scan(text))
    folds = any(ch in text for ch in FOLDS)
    for pattern in SECRETS.patterns:
        if folds and pattern.hints:
            # Case-insensitive patterns on such text keep their gate exactly as it was.
            was_scanned = any(hint in text.lower() for hint in pattern.hints)
            assert (pattern in scanned) == was_scanned, pattern.label
        elif pattern not in scanned:
            assert pattern.regex.search(text) is None, pattern.label


def test_folds_to_ascii_holds_every_character_that_lowers_or_matches_like_ascii():
    """Without these, ASCII-lowered UTF-8 finds the words str.lower() and (?i) find."""
    everything = "".join(map(chr, range(0x80, 0x110000)))
    matches_ascii = set(re.findall(r"(?i)[a-z]", everything))
    lowers_to_ascii = {ch for ch in everything if re.search(r"[\x00-\x7f]", ch.lower())}
    assert matches_ascii | lowers_to_ascii == set(FOLDS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # (?i) matches the dotless i as "i", and the hint "key" lets the scan run, as before
        ("ap\u0131_key = Zx81kfjQ0p", [("password", "Zx81kfjQ0p")]),
        ("ap\u0131 key is Zx81kfjQ0p", [("password", "Zx81kfjQ0p")]),
        # (?i) matches the long s as "s", but no hint is in the lower-cased text: no scan
        ("\u017fecret = Zx81kfjQ0p", []),
    ],
)
def test_text_with_folding_characters_is_gated_as_before(text, expected):
    assert spans(SECRETS, text) == expected


# --- The scans must find exactly what a scan of the whole text finds. ---

# Tokens and their pieces glued to each other and to characters the gates and lookbehinds
# look at, so that matches start right after, inside or around others.
GLUED = st.lists(
    st.one_of(
        st.sampled_from(TOKENS),
        ASSIGNMENT,
        st.sampled_from(["sk-", "k_", "gh", "_pat_", "xox", "AIza", "A", "-", "_", "B", "EGIN "]),
        st.text(alphabet="aAkKsS_-:/.= '\"`09\n\u00e9\u0131\U0001f60a", max_size=4),
    ),
    max_size=10,
).map("".join)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(TEXTS, GLUED))
# Matches that start as far before their gate or anchor as the pattern allows (its lead).
@example(text="AWS" + "x" * 24 + "secret: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPL3KEY")
@example(text="a" + "b" * 20 + "://admin:Hunter2xyz@db.example.com")
@example(text="client_secret=Zx81kfjQ0p, access-token: Zx81kfjQ0q and github_pat_" + "a" * 22)
def test_scans_find_what_a_scan_of_the_whole_text_finds(text):
    for pattern, matches in SECRETS.scans(text):
        expected = [(m.span(), m.groups()) for m in pattern.regex.finditer(text)]
        assert [(m.span(), m.groups()) for m in matches] == expected, pattern.label


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(TEXTS, GLUED))
@example(text="sk-----BEGIN RSA PRIVATE KEY----- AKIAKIA ghp_pat_ sk_live_")
def test_the_gates_alternation_shows_every_gate_in_the_text(text):
    found = {m.lastgroup for m in SECRETS._any_gate.finditer(text)}
    expected = {
        name
        for name, p in zip(SECRETS._gate_names, SECRETS.patterns, strict=True)
        if p.gate is not None and p.gate.search(text)
    }
    assert found == expected


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(TEXTS, GLUED), folds=st.booleans())
def test_words_are_found_as_a_plain_search_finds_them(text, folds):
    words = SECRETS._folds_words if folds else SECRETS._words
    lowered = text.lower() if folds else text.encode().lower().decode()
    found = words.in_text(text, folds, text.encode())
    assert found == {w for w in words.words if w in lowered}


def test_many_possible_starts_fall_back_to_one_scan():
    text = " ".join(["secret"] * 40) + " aws secret: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPL3KEY"
    scans = dict(SECRETS.scans(text))
    aws = next(p for p in scans if p.category == "aws_secret_key")
    assert [m.span() for m in scans[aws]] == [m.span() for m in aws.regex.finditer(text)]
    assert spans(SECRETS, text) == [("aws_secret_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPL3KEY")]


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(TEXTS, GLUED, st.text(max_size=30)))
@example(text="\u0130\u0131\u017f\u212a")
def test_the_byte_test_for_folding_characters_is_the_plain_one(text):
    assert is_plain(text, text.encode()) == (not any(c in text for c in FOLDS))
    for c in FOLDS:  # each one alone, and among other characters of the same blocks
        for t in (c, f"\u0100{c}\u2129", f"x{c}y"):
            assert not is_plain(t, t.encode())
