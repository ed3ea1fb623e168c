"""Credential detection: documented token shapes, spans on the secret value."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hitl_prescreen.detectors import secrets as secrets_module
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

FOLDS = secrets_module._FOLDS_TO_ASCII
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
