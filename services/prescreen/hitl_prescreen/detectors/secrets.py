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
from itertools import compress

from pydantic import BaseModel, ConfigDict

from hitl_prescreen.detectors.base import ScreenContext, is_plain, make_flag, mask
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
    # starts at an uncommon character of the literal ("-", "_", ":", "J", "q", "z", "A", "B"),
    # with a lookbehind for the characters before it, so that re skips ahead to a few
    # candidates; all gates together make one quick first test that most texts fail.
    gate: re.Pattern[str] | None = None
    # ``hints`` (case-insensitive patterns): lower-case words, one of which str.lower(text)
    # must hold. Every match holds one in some letter case, which only a base.FOLDS_TO_ASCII
    # character can hide: such texts keep this gate as it always was, the others may use
    # the sharper ``narrow`` hints.
    hints: tuple[str, ...] = ()
    narrow: tuple[str, ...] = ()
    # Where matches may start, so that the regex is tried only there (a scan of 2 KB costs
    # ~40 µs, a try at one position ~0.2 µs): every match starts at most ``lead``
    # characters before a match of ``gate`` or, for case-insensitive patterns, before one
    # of the lower-case ``anchors`` in the lower-cased text (which no base.FOLDS_TO_ASCII
    # character hides, as above).
    anchors: tuple[str, ...] = ()
    lead: int = 0


class _Words:
    """Which of some lower-case ASCII words a text holds, lower-cased (``folds``: see
    above). Each search is a pass over the text, so words that share their first three
    letters ("login", "log in") are only looked for when those three are there."""

    def __init__(self, words: set[str]) -> None:
        self.words = tuple(sorted(words))
        groups: dict[str, list[str]] = {}
        for word in self.words:
            groups.setdefault(word[:3], []).append(word)
        self._single = tuple(g[0] for g in groups.values() if len(g) == 1)
        self._grouped = tuple((k.encode(), tuple(g)) for k, g in groups.items() if len(g) > 1)

    def in_text(self, text: str, folds: bool, utf8: bytes) -> set[str]:
        """The words in ``text``, whose UTF-8 bytes are ``utf8``."""
        if folds:
            lowered = text.lower()
            return set(compress(self.words, map(lowered.__contains__, self.words)))
        ascii_lowered = utf8.lower()
        found = set(compress(self._single, map(ascii_lowered.__contains__, _ascii(self._single))))
        for start, group in self._grouped:
            if start in ascii_lowered:
                found.update(compress(group, map(ascii_lowered.__contains__, _ascii(group))))
        return found


def _ascii(words: tuple[str, ...]) -> Iterator[bytes]:
    return map(str.encode, words)


def _starts(anchors: Iterator[int], lead: int) -> list[int]:
    """The positions at most ``lead`` before one of ``anchors``, in order."""
    return sorted({p for a in anchors for p in range(max(a - lead, 0), a + 1)})


def _gate_matches(gate: re.Pattern[str], text: str, at: re.Match[str] | None) -> Iterator[int]:
    """Where ``gate`` matches in ``text``, from ``at`` (its first match) on."""
    while at is not None:
        yield at.start()
        at = gate.search(text, at.start() + 1)


def _occurrences(encoded: bytes, words: tuple[str, ...]) -> Iterator[int]:
    """Where each of ``words`` is in ``encoded``."""
    for word in map(str.encode, words):
        at = encoded.find(word)
        while at != -1:
            yield at
            at = encoded.find(word, at + 1)


# Past this many positions to try, one scan of the text is cheaper.
_MAX_TRIES = 150


def _matches(regex: re.Pattern[str], text: str, starts: list[int]) -> Iterator[re.Match[str]]:
    r"""``regex.finditer(text)``, when ``starts`` (in order) holds every position where a
    match of ``regex`` may start: the regex is only tried there.

    finditer yields the leftmost match, then the leftmost one starting at or after its end,
    and so on (no pattern here matches the empty string). Trying the starts in order and
    skipping those inside the last match finds the same ones: ``match`` at a position tries
    exactly what a search does there, its lookbehinds and ``\b`` seeing the text before.
    """
    if len(starts) > _MAX_TRIES:
        yield from regex.finditer(text)
        return
    end = 0
    for start in starts:
        if start >= end and (m := regex.match(text, start)) is not None:
            yield m
            end = m.end()


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
        gate=re.compile("B(?<=-----B)EGIN "),
        lead=5,
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
        anchors=("secret",),
        lead=27,  # after "aws" and up to 24 characters
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
        lead=2,
        valid=lambda v: bool(re.search(r"\d", v) and re.search(r"[A-Za-z]{2}", v[3:])),
    ),
    _Pattern(
        "api_token",
        re.compile(r"(?<![\w-])[rs]k_(?:live|test)_[A-Za-z0-9]{16,99}(?![A-Za-z0-9])"),
        "critical",
        0.97,
        "Stripe secret key",
        gate=re.compile("_(?<=k_)(?:live|test)_"),
        lead=2,
    ),
    _Pattern(
        "api_token",
        re.compile(r"(?<![\w-])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"),
        "critical",
        0.98,
        "GitHub token",
        gate=re.compile("_(?<=gh[pousr]_)|_(?<=github_)pat_"),
        lead=6,
    ),
    _Pattern(
        "api_token",
        re.compile(r"(?<![\w-])xox[abposre]-[A-Za-z0-9-]{10,250}"),
        "critical",
        0.97,
        "Slack token",
        gate=re.compile("-(?<=xox[abposre]-)"),
        lead=4,
    ),
    _Pattern(
        "api_token",
        re.compile(r"(?<![\w-])AIza[0-9A-Za-z_\-]{35}(?![\w-])"),
        "high",
        0.95,
        "Google API key",
        gate=re.compile("z(?<=AIz)a"),
        lead=2,
    ),
    _Pattern(
        "api_token",
        re.compile(r"(?<![\w-])glpat-[A-Za-z0-9_\-]{20,}(?![\w-])"),
        "critical",
        0.97,
        "GitLab token",
        gate=re.compile("-(?<=glpat-)"),
        lead=5,
    ),
    _Pattern(
        "api_token",
        re.compile(r"(?<![\w-])(?:hf_[A-Za-z0-9]{34}|npm_[A-Za-z0-9]{36})(?![A-Za-z0-9])"),
        "critical",
        0.97,
        "Hugging Face or npm token",
        gate=re.compile("_(?<=hf_|pm_)"),
        lead=3,
    ),
    _Pattern(
        "password",
        re.compile(r"\bmysql(?:dump)?\b[^\n]*?\s-p([^\s\"'`]{6,128})"),
        "high",
        0.9,
        "Password on a mysql command line",
        gate=re.compile("q(?<=mysq)l"),
        lead=4,
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
        lead=21,  # after a letter and up to 20 scheme characters
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
        anchors=("pass", "pwd", "log"),
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
        lead=2,
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
        anchors=("pass", "pwd", "secret", "token", "api"),
        lead=7,  # "token" after "access_", "secret" after "client_"
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
        # All gates as one alternation, each ending in an empty group named "g" and its
        # index, which names the gate a match is of (at the end, so that re still skips
        # ahead to the gates' first characters). Each gate starts with a character no
        # other gate starts with, or with "-" or "_" and a lookbehind that needs another
        # character before it than the others do, and none starts inside another one's
        # match (a test checks): so the matches of the alternation, which do not overlap,
        # show every gate that matches in a text.
        self._gate_names = tuple(f"g{n}" for n in range(len(self.patterns)))
        self._any_gate = re.compile(
            "|".join(
                f"(?:{p.gate.pattern})(?P<{name}>)"
                for name, p in zip(self._gate_names, self.patterns, strict=True)
                if p.gate is not None
            )
        )
        self._words = _Words({w for p in self.patterns for w in p.narrow or p.hints})
        self._folds_words = _Words({w for p in self.patterns for w in p.hints})
        # Whether some pattern has neither a gate nor hints (then every text is scanned).
        self._ungated = any(p.gate is None and not p.hints for p in self.patterns)

    def patterns_to_scan(self, text: str) -> Iterator[_Pattern]:
        """The patterns, in order, but those that cheap tests prove cannot match ``text``."""
        return (pattern for pattern, _ in self.scans(text))

    def scans(self, text: str) -> Iterator[tuple[_Pattern, Iterator[re.Match[str]]]]:
        """Each pattern that cheap tests cannot rule out, in order, with its matches in
        ``text`` (those of ``pattern.regex.finditer(text)``)."""
        utf8 = text.encode("utf-8", "surrogatepass")
        folds = not is_plain(text, utf8)
        words = (self._folds_words if folds else self._words).in_text(text, folds, utf8)
        gate = self._any_gate.search(text)
        if gate is None and not words and not self._ungated:
            return  # most texts: each pattern has a gate or hints, and none is there
        # The gates in the text (see __init__). None matches before the first match of
        # any: each gate's search starts there (its lookbehind still sees the text before).
        first = gate.start() if gate is not None else 0
        gates = {m.lastgroup for m in self._any_gate.finditer(text, first)} if gate else ()
        encoded = b""  # the text lower-cased, a byte a character, once anchors need it
        for name, pattern in zip(self._gate_names, self.patterns, strict=True):
            at = None
            if pattern.gate is not None:
                if name not in gates:
                    continue
                at = pattern.gate.search(text, first)
            hints = pattern.hints if folds else pattern.narrow or pattern.hints
            if hints and words.isdisjoint(hints):
                continue
            if at is not None:
                starts = _starts(_gate_matches(pattern.gate, text, at), pattern.lead)
            elif pattern.anchors and not folds:
                encoded = encoded or text.encode("ascii", "replace").lower()
                # An anchor that is one of the words looked for is only there if found.
                anchors = tuple(
                    a for a in pattern.anchors if a in words or a not in self._words.words
                )
                starts = _starts(_occurrences(encoded, anchors), pattern.lead)
            else:
                yield pattern, pattern.regex.finditer(text)
                continue
            yield pattern, _matches(pattern.regex, text, starts)

    def detect(self, output: LLMOutput, context: ScreenContext) -> list[Flag]:
        text = output.output_text
        flags: list[Flag] = []
        taken: list[tuple[int, int]] = []
        for pattern, matches in self.scans(text):
            for m in matches:
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
