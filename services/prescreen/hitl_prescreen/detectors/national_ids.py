"""National identity numbers beyond the US SSN, each validated by its own check rule.

Schemes with a strong shape (a check letter or fixed punctuation) need no context:
Spanish DNI/NIE, Brazilian CPF in its dotted form, Italian codice fiscale, UK National
Insurance number. Bare digit runs that many things could be (Aadhaar, Canadian SIN,
Dutch BSN, French NIR, bare CPF) count only with the scheme's name nearby.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from stdnum.br import cpf
from stdnum.ca import sin
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.in_ import aadhaar
from stdnum.it import codicefiscale
from stdnum.nl import bsn

from hitl_prescreen.detectors.base import is_plain

_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


def _nino_valid(value: str) -> bool:
    """UK NINOs have no check digit: the prefix rules are all there is."""
    compact = value.replace(" ", "")
    return compact[:2] not in _NINO_BAD_PREFIXES


@dataclass(frozen=True)
class Scheme:
    label: str
    regex: re.Pattern[str]
    valid: Callable[[str], bool]
    context: re.Pattern[str] | None = None  # required nearby (before) when set
    hints: tuple[str, ...] = ()  # lower-case words one of which the context needs
    # Where matches lie (see national_ids): six or more digits in one run of digits and
    # " .-/()" for all but the codice fiscale, whose digits may all be letters.
    window: Literal["digits", "capitals"] = "digits"


_OMO = "[0-9LMNPQRSTUV]"  # codice fiscale digits may be replaced by these letters
SCHEMES: tuple[Scheme, ...] = (
    Scheme("Spanish DNI", re.compile(r"\d(?<![\w-]\d)\d{7}-?[A-Z](?![\w-])"), dni.is_valid),
    Scheme("Spanish NIE", re.compile(r"[XYZ](?<![\w-][XYZ])-?\d{7}-?[A-Z](?![\w-])"), nie.is_valid),
    Scheme(
        "Brazilian CPF",
        re.compile(r"\d(?<![\w.-]\d)\d{2}\.\d{3}\.\d{3}-\d{2}(?![\w-])"),
        cpf.is_valid,
    ),
    Scheme(
        "Brazilian CPF",
        re.compile(r"\d(?<![\w.-]\d)\d{10}(?![\w-])"),
        cpf.is_valid,
        re.compile(r"(?i)\bcpf\b"),
        ("cpf",),
    ),
    Scheme(
        "Italian codice fiscale",
        re.compile(
            rf"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]{{5}}{_OMO}{{2}}[A-EHLMPR-T]{_OMO}{{2}}[A-Z]{_OMO}{{3}}[A-Z]"
            r"(?![A-Za-z0-9])"
        ),
        codicefiscale.is_valid,
        window="capitals",
    ),
    Scheme(
        "UK National Insurance number",
        re.compile(
            r"[A-CEGHJ-PR-TW-Z](?<![A-Za-z0-9][A-CEGHJ-PR-TW-Z])"
            r"[A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])"
        ),
        _nino_valid,
    ),
    Scheme(
        "Aadhaar number",
        re.compile(r"[2-9](?<![\w-][2-9])\d{3} ?\d{4} ?\d{4}(?![\w-])"),
        aadhaar.is_valid,
        re.compile(r"(?i)\b(?:aadhaa?r|uidai)\b|आधार"),
        ("aadha", "uidai", "आधार"),
    ),
    Scheme(
        "Canadian SIN",
        re.compile(r"\d(?<![\w-]\d)\d{2}[ -]?\d{3}[ -]?\d{3}(?![\w-])"),
        sin.is_valid,
        re.compile(r"\bSIN\b|(?i:\bsocial insurance\b)"),
        ("sin", "social insurance"),
    ),
    Scheme(
        "Dutch BSN",
        re.compile(r"\d(?<![\w.-]\d)\d{3}\.?\d{2}\.?\d{3}(?![\w-])"),
        bsn.is_valid,
        re.compile(r"(?i)\b(?:bsn|burgerservicenummer)\b"),
        ("bsn", "burgerservicenummer"),
    ),
    Scheme(
        "French NIR",
        re.compile(
            r"[12](?<![\w-][12]) ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}(?![\w-])"
        ),
        nir.is_valid,
        re.compile(r"(?i)\b(?:nir|insee|sécurité sociale|securite sociale|sécu)\b"),
        ("nir", "insee", "sociale", "sécu"),
    ),
)
CONTEXT_WINDOW = 60

_SHAPED = tuple(scheme for scheme in SCHEMES if scheme.context is None)
_NAMED = tuple(scheme for scheme in SCHEMES if scheme.context is not None)


def national_ids(
    text: str, digits: tuple[int, int] | None = None, capitals: tuple[int, int] | None = None
) -> Iterator[tuple[int, int, str]]:
    """(start, end, scheme label) of each validated national id in ``text``.

    ``digits`` and ``capitals`` are the (start, end) spans outside which the schemes of that
    ``window`` cannot match (pii.digit_window and pii.capitals_window say why); the whole
    text when not given.
    """
    whole = (0, len(text))
    windows = {"digits": digits or whole, "capitals": capitals or whole}
    # (One combined alternation was measured slower than these separate scans.)
    for scheme in _SHAPED:
        start, end = windows[scheme.window]
        if start == end:
            continue  # an empty window, as in most texts
        for m in scheme.regex.finditer(text, start, end):
            if scheme.valid(m.group()):
                yield m.start(), m.end(), scheme.label
    start, end = windows["digits"]
    if start == end:
        return  # every named scheme has ``window="digits"``
    folds: bool | None = None
    lowered = ""
    for scheme in _NAMED:
        assert scheme.context is not None and scheme.window == "digits"
        matches = list(scheme.regex.finditer(text, start, end))
        if not matches:
            continue
        # The hints (the scheme's name anywhere in the text) gate the scan as they always
        # have. A context match puts a hint in the lower-cased text unless the text holds a
        # character of base.FOLDS_TO_ASCII, so only then can the gate change the result.
        if folds is None:
            folds = not is_plain(text)
            lowered = text.lower() if folds else ""
        if folds and not any(map(lowered.__contains__, scheme.hints)):
            continue
        for m in matches:
            before = text[max(0, m.start() - CONTEXT_WINDOW) : m.start()]
            if scheme.context.search(before) and scheme.valid(m.group()):
                yield m.start(), m.end(), scheme.label
