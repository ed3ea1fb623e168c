"""Credential detection: documented token shapes, spans on the secret value."""

from __future__ import annotations

import pytest

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
