"""Statistical outliers against the app's own running baseline.

Features per output: length (log of characters), character entropy (bits per char),
share of letters outside the Latin script, share of digits. The baseline holds a
Welford mean and M2 per feature per app; it lives in Redis (see ``baseline_store``)
and this module only reads it. An item is flagged when a feature's z-score passes the
threshold, once the app has enough items for the baseline to mean something.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import compress, repeat
from operator import mul, truediv
from typing import NamedTuple

import numpy as np  # loaded with the profanity model anyway (scikit-learn needs it)
from pydantic import BaseModel, ConfigDict, Field

from hitl_prescreen.detectors.base import ScreenContext, make_flag
from hitl_shared.events import Flag, LLMOutput

FEATURES = ("log_length", "entropy", "non_latin_share", "digit_share")
_DESCRIPTIONS = {
    "log_length": "length",
    "entropy": "character entropy",
    "non_latin_share": "share of non-Latin letters (language/script mix)",
    "digit_share": "share of digits",
}


# Script of the letters a declared language is written in, by code point range.
SCRIPTS: dict[str, tuple[tuple[int, int], ...]] = {
    "latin": ((0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F), (0x1E00, 0x1EFF)),
    "cyrillic": ((0x400, 0x52F),),
    "greek": ((0x370, 0x3FF),),
    "arabic": ((0x600, 0x6FF), (0x750, 0x77F)),
    "hebrew": ((0x590, 0x5FF),),
    "devanagari": ((0x900, 0x97F),),
    "cjk": ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF)),
    "thai": ((0xE00, 0xE7F),),
}
_LATIN_LANGUAGES = (
    "en de fr es it pt nl sv da no nb fi pl cs sk hu ro hr sl tr id ms vi ca et lv lt"
)
LANGUAGE_SCRIPT = {
    **dict.fromkeys(_LATIN_LANGUAGES.split(), "latin"),
    **dict.fromkeys(["ru", "uk", "bg", "sr", "be", "kk", "mk"], "cyrillic"),
    **dict.fromkeys(["zh", "ja", "ko"], "cjk"),
    **dict.fromkeys(["ar", "fa", "ur"], "arabic"),
    "el": "greek",
    "he": "hebrew",
    "hi": "devanagari",
    "mr": "devanagari",
    "th": "thai",
}


_ASCII = bytes(range(128))
_ASCII_CHARS = tuple(map(chr, range(128)))
# The quick count serves texts of up to this many characters, at most this many non-ASCII:
# it costs a call per distinct character, where Counter costs a step per character.
QUICK_CHARS = 8192
QUICK_OTHERS = 64
_NO_ASCII = [0] * 128


class Tally(NamedTuple):
    """How often each character occurs in a text, and the sums the features and the
    language check need, taken in the one pass over the distinct characters.

    ``ordered`` holds the count of every distinct character in order of first appearance
    (the order ``Counter(text)`` would list them in, which the entropy sum follows). Each
    character's count is also in ``ascii`` (by code point) or in ``other``, not both.
    """

    ordered: list[int]
    ascii: list[int]
    other: dict[str, int]
    letters: int  # characters with isalpha()
    non_latin: int  # letters above U+024F
    latin: int  # letters of the latin script (SCRIPTS["latin"])
    digits: int  # characters with isdigit()


@lru_cache(maxsize=64)  # shared by the features and the language check of one item
def tally(text: str) -> Tally:
    """Character counts without a dict update per character (``Counter`` costs ~50 us on
    2 KB, this ~25): ASCII is counted by ``bincount`` over the UTF-8 bytes, the few other
    characters in what is left once the ASCII bytes are deleted, and the order of first
    appearance comes from one ``find`` per distinct character. Long texts, and texts with
    many characters outside ASCII, are counted by Counter (as fast, or faster, there)."""
    if len(text) > QUICK_CHARS:
        return _counted(text)
    try:
        data = text.encode()
    except UnicodeEncodeError:  # lone surrogates
        return _counted(text)
    rest = data.translate(None, _ASCII).decode() if len(data) != len(text) else ""
    if len(rest) > QUICK_OTHERS:
        return _counted(text)
    ascii_counts = np.bincount(np.frombuffer(data, np.uint8), minlength=128)[:128].tolist()
    present = compress(_ASCII_CHARS, ascii_counts), compress(ascii_counts, ascii_counts)
    counts = dict(zip(*present, strict=True))
    other: dict[str, int] = {}
    for ch in rest:
        other[ch] = other.get(ch, 0) + 1
    counts.update(other)
    ordered = list(map(counts.__getitem__, sorted(counts, key=text.find)))
    return _summed(ordered, ascii_counts, other)


def _counted(text: str) -> Tally:
    """The plain count, every character's in ``other``."""
    counts = Counter(text)
    return _summed(list(counts.values()), _NO_ASCII, counts)


def _summed(ordered: list[int], ascii_counts: list[int], other: dict[str, int]) -> Tally:
    """The tally with its sums: ASCII by ranges of code points, the rest one by one."""
    letters = latin = _ascii_letters(ascii_counts)  # ASCII letters are all latin
    digits = sum(ascii_counts[48:58])  # 0-9: the only ASCII digits
    non_latin = 0
    for ch, count in other.items():
        is_letter, above_latin, in_latin, is_digit = _facts(ch)
        if is_letter:
            letters += count
            non_latin += above_latin * count
            latin += in_latin * count
        elif is_digit:
            digits += count
    return Tally(ordered, ascii_counts, other, letters, non_latin, latin, digits)


@lru_cache(maxsize=65536)
def _facts(ch: str) -> tuple[bool, bool, bool, bool]:
    """Whether a character is a letter, a letter above U+024F, a latin letter, a digit."""
    letter = ch.isalpha()
    return letter, letter and ord(ch) > 0x24F, _in_script(ch, "latin") is True, ch.isdigit()


@lru_cache(maxsize=64)
def _ascii_in_script(script: str) -> tuple[bool, ...]:
    """For each ASCII character, whether it is a letter of ``script``."""
    return tuple(bool(_in_script(ch, script)) for ch in _ASCII_CHARS)


@lru_cache(maxsize=65536)
def _in_script(ch: str, script: str) -> bool | None:
    """None for a non-letter, else whether the letter belongs to ``script``."""
    if not ch.isalpha():
        return None
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in SCRIPTS[script])


def _ascii_letters(counts: list[int]) -> int:
    return sum(counts[65:91]) + sum(counts[97:123])  # A-Z, a-z: the only ASCII letters


def script_share(text: str, script: str) -> tuple[float, int]:
    """Share of the text's letters written in ``script``, and the number of letters."""
    counts = tally(text)
    if script == "latin":  # the common case: summed by tally already
        inside = counts.latin
    else:
        inside = sum(compress(counts.ascii, _ascii_in_script(script)))
        for ch, count in counts.other.items():
            if _in_script(ch, script):
                inside += count
    letters = counts.letters
    return (inside / letters if letters else 1.0), letters


class AnomalyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    min_samples: int = Field(default=50, ge=2)
    z_threshold: float = Field(default=4.0, gt=0)
    language_check: bool = Field(
        default=True, description="Flag text mostly outside the declared language's script"
    )
    min_letters: int = Field(default=20, ge=1)
    min_script_share: float = Field(default=0.5, ge=0, le=1)
    min_std: dict[str, float] = Field(
        default_factory=lambda: {
            "log_length": 0.25,
            "entropy": 0.15,
            "non_latin_share": 0.05,
            "digit_share": 0.02,
        },
        description="Floor of each feature's deviation, so a uniform app is not too touchy",
    )


@lru_cache(maxsize=64)  # computed for the detector, then again for the baseline update
def features(text: str) -> dict[str, float]:
    """The feature vector of one output text (treat the result as read-only)."""
    n = len(text)
    if n == 0:
        return dict.fromkeys(FEATURES, 0.0)
    counts = tally(text)
    # -sum(p * log2(p)) over the characters in order of first appearance: the same terms
    # added in the same order as before, so the same float (baselines hold these values).
    shares = list(map(truediv, counts.ordered, repeat(n)))
    entropy = -sum(map(mul, shares, map(math.log2, shares)))
    letters, non_latin, digits = counts.letters, counts.non_latin, counts.digits
    return {
        "log_length": math.log1p(n),
        "entropy": entropy,
        "non_latin_share": non_latin / letters if letters else 0.0,
        "digit_share": digits / n,
    }


@dataclass
class Baseline:
    """Welford accumulators for one app: count, and mean / M2 per feature."""

    count: int = 0
    mean: dict[str, float] = field(default_factory=dict)
    m2: dict[str, float] = field(default_factory=dict)

    def std(self, name: str) -> float:
        if self.count < 2:
            return 0.0
        return math.sqrt(self.m2.get(name, 0.0) / (self.count - 1))

    def add(self, values: dict[str, float]) -> None:
        """One Welford step (the Redis script does the same arithmetic)."""
        self.count += 1
        for name, x in values.items():
            mean = self.mean.get(name, 0.0)
            delta = x - mean
            mean += delta / self.count
            self.mean[name] = mean
            self.m2[name] = self.m2.get(name, 0.0) + delta * (x - mean)


@lru_cache(maxsize=256)
def _script_of(language: str) -> str | None:
    """The script a declared language (a tag such as "en-GB") is written in, if known."""
    return LANGUAGE_SCRIPT.get(language.split("-")[0].lower())


class AnomalyDetector:
    name = "anomaly"

    def __init__(self, config: AnomalyConfig | None = None) -> None:
        self.config = config or AnomalyConfig()

    def _language(self, output: LLMOutput) -> list[Flag]:
        script = _script_of(output.language)
        if script is None:
            return []
        share, letters = script_share(output.output_text, script)
        if letters < self.config.min_letters or share >= self.config.min_script_share:
            return []
        return [
            make_flag(
                self.name,
                "language_mismatch",
                "low",
                1.0 - share,
                0,
                len(output.output_text),
                f"Declared language '{output.language}' but only {share:.0%} of the letters "
                f"are {script} script",
            )
        ]

    def detect(self, output: LLMOutput, context: ScreenContext) -> list[Flag]:
        flags = self._language(output) if self.config.language_check else []
        baseline = context.baseline
        if baseline is None or baseline.count < self.config.min_samples:
            return flags
        values = features(output.output_text)
        min_std, threshold = self.config.min_std, self.config.z_threshold
        for name, x in values.items():
            std = max(baseline.std(name), min_std.get(name, 1e-6))
            z = (x - baseline.mean.get(name, 0.0)) / std
            if abs(z) < threshold:
                continue
            direction = "above" if z > 0 else "below"
            flags.append(
                make_flag(
                    self.name,
                    f"outlier_{name}",
                    "low",
                    min(1.0, abs(z) / (2 * self.config.z_threshold)),
                    0,
                    len(output.output_text),
                    f"Unusual {_DESCRIPTIONS[name]} for {output.app}: z={z:+.1f} "
                    f"({direction} the app's baseline of {baseline.count} items)",
                )
            )
        return flags
