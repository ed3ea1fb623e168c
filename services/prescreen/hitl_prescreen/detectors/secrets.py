"""Credentials in the output: cloud keys, API tokens, JWTs, private keys, passwords.

Each pattern matches a documented token shape (fixed prefix, alphabet and length), and
the loose ones are validated (a JWT's header must decode to JSON naming an ``alg``;
a password value must not be a placeholder), so hashes, git SHAs and UUIDs stay quiet.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from hitl_prescreen.detectors.base import ScreenContext, make_flag, mask
from hitl_shared.events import Flag, LLMOutput, Severity


class SecretsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    passwords: bool = True


@dataclass(frozen=True)
class _Pattern:
    category: str
    regex: re.Pattern[str]
    severity: Severity
    score: float
    label: str
    group: int = 0
    valid: Callable[[str], bool] | None = None
    # Cheap tests that skip the scan when it cannot match (a scan costs ~30x more).
    # ``gate`` (case-sensitive patterns) finds a literal every match holds as written. It
    # starts at an uncommon character of the literal ("-", "_", ":", "J", "q", "z", "A"),
    # with a lookbehind for the characters before it, so that re skips ahead to a few
    # candidates; all gates together make one quick first test that most texts fail.
    gate: re.Pattern[str] | None = None
    # ``hints`` (case-insensitive patterns): lower-case words, one of which str.lower(text)
    # must hold. Every match holds one in some letter case, which only a _FOLDS_TO_ASCII
    # character can hide: such texts keep this gate as it always was, the others may use
    # the sharper ``narrow`` hints.
    hints: tuple[str, ...] = ()
    narrow: tuple[str, ...] = ()


# Non-ASCII characters that case-fold onto ASCII letters: str.lower() turns U+0130 (capital
# I with dot) and U+212A (Kelvin sign) into "i" plus a combining dot and "k", and
# re.IGNORECASE also matches U+0131 (dotless i) with "i" and U+017F (long s) with "s".
# Without them, an ASCII word is in str.lower(text) exactly when it is in the UTF-8 bytes
# with their ASCII letters lower-cased (far cheaper), and so is every case-insensitive match
# of it. (Same characters as national_ids.FOLDS_TO_ASCII.)
_FOLDS_TO_ASCII = ("\u0130", "\u0131", "\u017f", "\u212a")


def _words_in(text: str, words: frozenset[str], folds: bool) -> set[str]:
    """The lower-case ASCII ``words`` found in ``text`` lower-cased (``folds``: see above)."""
    if folds:
        lowered = text.lower()
        return {w for w in words if w in lowered}
    ascii_lowered = text.encode().lower()
    return {w for w in words if w.encode() in ascii_lowered}


def _jwt_valid(token: str) -> bool:
    header = token.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


_PLACEHOLDER = re.compile(
    r"(?i)^(?:\*+|x+|\.+|<.*>|\{.*\}|\[.*\]|\$\{?\w+\}?|%\w+%|"
    r".*(?:your|example|placeholder|redacted|dummy|changeme|here|password|secret|token).*|"
    r"none|null|true|false|required|optional|hidden|masked|n/?a)$"
)


def _password_valid(value: str) -> bool:
    value = value.rstrip(".,;:)")
    if len(value) < 6 or _PLACEHOLDER.match(value) or len(set(value)) < 3:
        return False
    # A real password mixes character classes; a plain word is prose ("password is stored").
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z0-9]"))
    return classes >= 2


_PATTERNS: tuple[_Pattern, ...] = (
    _Pattern(
        "private_key",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|.*)",
            re.DOTALL,
        ),
        "critical",
        0.99,
        "Private key block",
        gate=re.compile("-----BEGIN "),
    ),
    _Pattern(
        "aws_access_key",
        re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Z0-9])"),
        "critical",
        0.98,
        "AWS access key id",
        gate=re.compile("A(?:KIA|SIA|BIA|CCA|3T)"),
    ),
    _Pattern(
        "aws_secret_key",
        re.compile(
            r"(?i)(?=[as])(?:aws.{0,24})?secret(?:[ _-]?access)?(?:[ _-]?key)?\W{0,4}(?:is\W{0,3})?"
            r"(?-i:([A-Za-z0-9/+]{40}))(?![A-Za-z0-9/+=])"
        ),
        "critical",
        0.95,
        "AWS secret access key",
        hints=("secret",),
        group=1,
        valid=lambda v: bool(re.search(r"[A-Z]", v) and re.search(r"[a-z]", v)),
    ),
    _Pattern(
        "api_token",
        re.compile(r"(?<![\w-])sk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,200}"),
        "critical",
        0.97,
        "API secret key (sk-)",
        gate=re.compile("-(?<=sk-)"),
        valid=lambda v: bool(re.search(r"\d", v) and re.search(r"[A-Za-z]{2}", v[3:])),
    ),
    _Pattern(
        "api_token",
        re.compile(r"(?<![\w-])[rs]k_(?:live|test)_[A-Za-z0-9]{16,99}(?![A-Za-z0-9])"),
        "critical",
        0.97,
        "Stripe secret key",
        gate=re.compile("_(?<=k_)(?:live|test)_"),
    ),
    _Pattern(
        "api_token",
        re.compile(r"(?<![\w-])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"),
        "critical",
        0.98,
        "GitHub token",
        gate=re.compile("_(?<=gh[pousr]_)|_(?<=github_)pat_"),
    ),
    _Pattern(
        "api_token",
        re.compile(r"(?<![\w-])xox[abposre]-[A-Za-z0-9-]{10,250}"),
        "critical",
        0.97,
        "Slack token",
        gate=re.compile("-(?<=xox[abposre]-)"),
    ),
    _Pattern(
        "api_token",
        re.compile(r"(?<![\w-])AIza[0-9A-Za-z_\-]{35}(?![\w-])"),
        "high",
        0.95,
        "Google API key",
        gate=re.compile("z(?<=AIz)a"),
    ),
    _Pattern(
        "api_token",
        re.compile(r"(?<![\w-])glpat-[A-Za-z0-9_\-]{20,}(?![\w-])"),
        "critical",
        0.97,
        "GitLab token",
        gate=re.compile("-(?<=glpat-)"),
    ),
    _Pattern(
        "api_token",
        re.compile(r"(?<![\w-])(?:hf_[A-Za-z0-9]{34}|npm_[A-Za-z0-9]{36})(?![A-Za-z0-9])"),
        "critical",
        0.97,
        "Hugging Face or npm token",
        gate=re.compile("_(?<=hf_|pm_)"),
    ),
    _Pattern(
        "password",
        re.compile(r"\bmysql(?:dump)?\b[^\n]*?\s-p([^\s\"'`]{6,128})"),
        "high",
        0.9,
        "Password on a mysql command line",
        gate=re.compile("q(?<=mysq)l"),
        group=1,
        valid=lambda v: len(v) >= 6,
    ),
    _Pattern(
        "password",
        re.compile(r"\b[a-z][a-z0-9+.-]{1,20}://[^:/\s@`'\"]{1,64}:(\S{3,128})@[\w.-]+"),
        "high",
        0.93,
        "Password in a connection URL",
        gate=re.compile("://"),
        group=1,
        valid=lambda v: not _PLACEHOLDER.match(v) and len(set(v)) >= 3,
    ),
    _Pattern(
        "password",
        re.compile(
            r"(?i)\b(?:password|passwd|pwd|passphrase)\s+(?:of\s+)?[`'\"]([^`'\"\s]{6,128})[`'\"]"
            r"|\blog\s?in\b[^\n]{0,40}?[`'\"][\w.@-]{1,64}[`'\"]\s*/\s*[`'\"]([^`'\"\s]{6,128})[`'\"]"
        ),
        "high",
        0.9,
        "Password in the text",
        hints=("pass", "pwd", "login", "log in"),
        group=-1,
        valid=_password_valid,
    ),
    _Pattern(
        "jwt",
        re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"),
        "high",
        0.95,
        "JSON Web Token",
        gate=re.compile("J(?<=eyJ)"),
        valid=_jwt_valid,
    ),
    _Pattern(
        "password",
        re.compile(
            r"(?i)(?=[psacd])(?:(?:password|passwd|passwort|passphrase)"
            r"|\b(?:pwd|passcode|pass|secret|api[_ -]?key|"
            r"access[_ -]?token|auth[_ -]?token|client[_ -]?secret|db[_ -]?pass(?:word)?))"
            r"(?:\s+(?:is|was|will be|to|of)|\s*(?::=|=|:))\s*[\"'`]?([^\s\"'`]{6,128})"
        ),
        "high",
        0.9,
        "Password or secret assignment",
        hints=("pass", "pwd", "secret", "key", "token"),
        narrow=("pass", "pwd", "secret", "token", "api"),  # "key" is in "keep", "monkey"
        group=1,
        valid=_password_valid,
    ),
)


class SecretsDetector:
    """Credential-shaped strings, one flag each, spans on the secret value itself."""

    name = "secrets"

    def __init__(self, config: SecretsConfig | None = None) -> None:
        self.config = config or SecretsConfig()
        self.patterns = tuple(
            p for p in _PATTERNS if self.config.passwords or p.category != "password"
        )
        self._any_gate = re.compile(
            "|".join(f"(?:{p.gate.pattern})" for p in self.patterns if p.gate is not None)
        )
        self._words = frozenset(w for p in self.patterns for w in p.narrow or p.hints)
        self._folds_words = frozenset(w for p in self.patterns for w in p.hints)

    def patterns_to_scan(self, text: str) -> Iterator[_Pattern]:
        """The patterns, in order, but those that cheap tests prove cannot match ``text``."""
        folds = any(map(text.__contains__, _FOLDS_TO_ASCII))
        words = _words_in(text, self._folds_words if folds else self._words, folds)
        any_gate = self._any_gate.search(text) is not None
        for pattern in self.patterns:
            if pattern.gate is not None and not (any_gate and pattern.gate.search(text)):
                continue
            hints = pattern.hints if folds else pattern.narrow or pattern.hints
            if hints and words.isdisjoint(hints):
                continue
            yield pattern

    def detect(self, output: LLMOutput, context: ScreenContext) -> list[Flag]:
        text = output.output_text
        flags: list[Flag] = []
        taken: list[tuple[int, int]] = []
        for pattern in self.patterns_to_scan(text):
            for m in pattern.regex.finditer(text):
                group = pattern.group
                if group < 0:  # the first alternative's group that matched
                    group = next(i for i in range(1, len(m.groups()) + 1) if m.group(i))
                start, end = m.span(group)
                value = text[start:end].rstrip(".,;:)")
                end = start + len(value)
                if pattern.valid is not None and not pattern.valid(value):
                    continue
                if any(start < b and a < end for a, b in taken):
                    continue
                taken.append((start, end))
                flags.append(
                    make_flag(
                        self.name,
                        pattern.category,
                        pattern.severity,
                        pattern.score,
                        start,
                        end,
                        f"{pattern.label} {mask(value)}",
                    )
                )
        return sorted(flags, key=lambda f: f.start)
