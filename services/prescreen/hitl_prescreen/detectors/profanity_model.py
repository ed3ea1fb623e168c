"""The alt-profanity-check model, evaluated without scikit-learn on the hot path.

The package ships a TF-IDF vectorizer and a calibrated linear SVM (5 folds, sigmoid
calibration). Scoring through scikit-learn costs ~3-4 ms per 2 KB text, mostly call
overhead. The same arithmetic in plain Python over the text's tokens is exact (a test
compares it with ``predict_prob``), an order of magnitude faster, and yields each
token's contribution, which gives the flag its span.

Most sentences cannot reach the threshold, and cheap bounds say so without scoring
them: ``may_reach`` and ``probability_if_reaches`` per sentence, ``SentenceGate`` for
all sentences of a text at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache, reduce
from itertools import accumulate, repeat
from operator import add, mul
from typing import NamedTuple
from zlib import adler32

from hitl_prescreen.detectors.base import is_plain

TOKEN = re.compile(r"\b\w\w+\b")
TOKEN_ASCII = re.compile(r"\b\w\w+\b", re.ASCII)  # the same tokens in ASCII text, faster

_STOP = 0x2E  # b"."
_UNSURE = b"\t"  # what flat shows for each '?' of encoded (see _FLAT)
STOP_CODE = 255  # a sentence stop in SentenceGate's codes
MAX_CODE = 126  # term codes fit in 7 bits (a caller may use the 8th) and stay under 255


def _flat_byte(c: int) -> int:
    if c >= 0x80:  # the first byte of a non-ASCII character in UTF-8
        return _UNSURE[0]
    char = chr(c).lower()
    if char in "abcdefghijklmnopqrstuvwxyz0123456789_":
        return ord(char)
    if char in ".!\n":
        return _STOP
    return _UNSURE[0] if char == "?" else 0x20


# bytes.translate table and bytes to delete, from the text's UTF-8 bytes to ``flat`` in
# one pass: ASCII word characters lower-cased, '.' '!' newline -> '.', '?' and each
# non-ASCII character (its first byte; the others, 0x80-0xBF, are deleted) -> tab, all
# else blank. So ``flat`` has a byte per character. A tab separates words as a blank
# does, and it marks the stretches that hold a '?' or a non-ASCII character, which
# ``encoded`` shows as '?'.
_FLAT = bytes(map(_flat_byte, range(256)))
_UTF8_CONTINUATION = bytes(range(0x80, 0xC0))

# str.lower() turns two non-ASCII characters into ASCII ones: U+0130 (capital I with dot,
# into "i" and a combining dot: the text grows) and the Kelvin sign (into "k"). Every
# other character lower-cases to one character, ASCII ones as bytes.lower() does them and
# non-ASCII ones to non-ASCII ones (a test checks every code point). So on plain text
# (base.is_plain), lower-casing the ASCII bytes of the text (as _FLAT does) is lower-casing
# the text, and lower-casing the whole text (~3x the cost of the rest of ``ascii_view``)
# is skipped.
_LOWERS_TO_ASCII = ("\u0130", "\u212a")


class AsciiView(NamedTuple):
    """A text lower-cased and seen one byte a character, for fast C-level passes over it."""

    text: str  # the text itself
    plain: bool  # whether the text has no base.FOLDS_TO_ASCII character
    lowered: str | None  # text.lower() when building the view needed it, else None
    flat: bytes  # encoded, [a-z0-9_] kept, '.', '!' and newline made '.', '?' a tab, all
    # else blank
    words: list[bytes]  # the words of flat, each '.' a word of its own

    @property
    def encoded(self) -> bytes:
        """``text.lower().encode("ascii", "replace")``: each non-ASCII character is '?'.
        Made when asked for (seldom), like ``lower()``."""
        source = self.text if self.lowered is None else self.lowered
        return source.encode("ascii", "replace").lower()

    def lower(self) -> str:
        """``text.lower()``; its positions are those of ``encoded``."""
        return self.text.lower() if self.lowered is None else self.lowered

    @property
    def same_length(self) -> bool:
        """Whether lower-casing kept the text's length (so positions in ``encoded`` are the
        text's): only U+0130 grows, and then ``lowered`` was computed."""
        return self.lowered is None or len(self.lowered) == len(self.text)


def ascii_view(text: str) -> AsciiView:
    """The ``AsciiView`` of a text: a few C-level passes, ~12 µs on 2 KB."""
    # (UTF-8 rather than ASCII with '?': encoding is faster, or even done already.)
    utf8 = text.encode("utf-8", "surrogatepass")
    plain = is_plain(text, utf8)
    lowered = None
    if not plain and any(map(text.__contains__, _LOWERS_TO_ASCII)):
        lowered = text.lower()
        utf8 = lowered.encode("utf-8", "surrogatepass")
    flat = utf8.translate(_FLAT, _UTF8_CONTINUATION)
    return AsciiView(text, plain, lowered, flat, flat.replace(b".", b" . ").split())


# The low 16 bits of zlib.adler32(b) are 1 + sum(b) modulo 65521: sum(b) itself while that
# is under 65520, so whenever ``b`` holds fewer than this many codes (each <= MAX_CODE).
_ADLER_SUMS = 65520 // MAX_CODE


def _at_least(pieces: list[bytes], least: int, codes: int) -> list[int]:
    """Indices of the pieces whose bytes add up to ``least`` or more; ``codes`` is at least
    their total length. With adler32 when it sums exactly: ~2x faster than sum()."""
    if codes < _ADLER_SUMS:
        return [k for k, a in enumerate(map(adler32, pieces)) if a & 0xFFFF > least]
    return [k for k, piece in enumerate(pieces) if sum(piece) >= least]


@dataclass(frozen=True, eq=False)
class SentenceGate:
    """Which sentences of a text may reach a threshold, for all of them at once, cheaply.

    Why: one ``TOKEN.findall`` plus ``may_reach`` per sentence was most of the detector's
    time, yet ~96% of sentences are then skipped. This works on the words of the whole
    text's ``AsciiView`` (a few C-level passes) and returns the stretches of text that
    may reach the threshold; only sentences in those are tokenized and scored.

    First it is ``may_reach`` on stretches, and never drops a sentence ``may_reach`` keeps:

    * Each term's code is ``positive_sq / unit`` rounded up (with a 1e-9 margin), and a
      stretch passes when its words' codes add up to ``need`` = ``reach_sq / unit``
      rounded down. Repeated words count again, so the sum only errs upwards.
    * Every ASCII token ``TOKEN`` finds in the lower-cased text is also a word of the
      view: its neighbours are non-word characters, and '?', like every character but
      ``[a-z0-9_]``, becomes a blank. Tokens with non-ASCII letters ("naïve") split into
      ASCII pieces, which only adds words.
    * A non-ASCII vocabulary term ("beyoncé") shows as its ASCII pieces ("beyonc"), so its
      code is added to its longest piece's. The few "wide" ones, without any ASCII
      ("迷惑"), show as a run of at least two tabs: a stretch with such a run is kept when
      its words' codes and those of the wide terms in the text add up to ``need``.
    * Stretches end only at '.', '!' and newlines; '?' and CJK stops (which ``_SENTENCE``
      also splits on) do not end them, so one stretch may hold several sentences and
      adds up all their words.

    Then, a stretch with neither '?' nor non-ASCII characters holds exactly one sentence,
    and its words of two or more characters are that sentence's tokens: those stretches
    also get (a slightly looser form of) the much tighter bound of
    ``probability_if_reaches``, which drops ~97% of them. So a dropped sentence cannot
    reach the threshold, though it may pass ``may_reach``.
    """

    codes: dict[bytes, int]  # ASCII term or piece of a non-ASCII term -> code; "." -> 255
    need: int  # at most MAX_CODE, so one word at MAX_CODE passes on its own
    wide: tuple[tuple[str, int], ...]  # terms without ASCII letters, and their codes
    # For ASCII terms: idf times the term's largest fold weight ("lift") + 1j * idf ** 2,
    # so that one lookup per word and one sum give both sums ``_may_reach`` needs.
    lift_idf_sq: dict[bytes, complex]
    reach: float  # the decision bound: sqrt(reach_sq), or -inf when there is none

    def word_codes(self, words: list[bytes]) -> bytes:
        """Each word's code (0 for words that are not terms), STOP_CODE for each stop."""
        return bytes(map(self.codes.get, words, repeat(0)))

    def stretches(self, view: AsciiView, codes: bytes) -> list[tuple[int, int]]:
        """[start, end) of the stretches of the text that may reach the threshold, in text
        order; ``codes`` is ``word_codes(view.words)``. Positions are those of
        ``view.encoded``: the text's when lower-casing kept its length."""
        pieces = codes.split(b"\xff")  # the codes of each stretch's words
        least = self.need - self.wide_total  # what a stretch needs with every wide term
        candidates = _at_least(pieces, least, len(codes))
        if not candidates:
            return []
        # The text of each stretch, up to the last candidate.
        flat_pieces = view.flat.split(b".", candidates[-1] + 1)
        need = None  # self.need less the codes of the wide terms in the text, when known
        kept = []
        for k in candidates:
            piece = flat_pieces[k]
            total = sum(pieces[k])
            if total < self.need:
                # Short on its own words: only a wide term of the stretch can make up for
                # it, and its characters would show as two tabs or more.
                if _UNSURE * 2 not in piece:
                    continue
                if need is None:
                    lowered = view.lower()
                    need = self.need - sum(code for term, code in self.wide if term in lowered)
                if total < need:
                    continue
            # Without a tab (a '?' in encoded) the stretch is one sentence, all ASCII.
            if _UNSURE not in piece and not self._may_reach(piece.split()):
                continue
            kept.append(k)
        if not kept:
            return []
        ends = list(accumulate(map(len, flat_pieces)))  # of each stretch (but the last)
        return [(ends[k - 1] + k, ends[k] + k) if k else (0, ends[0]) for k in kept]  # + stops

    @cached_property
    def wide_total(self) -> int:
        """The codes of all wide terms: the most they can lower ``need`` by."""
        return sum(code for _, code in self.wide)

    def _may_reach(self, words: list[bytes]) -> bool:
        """Whether a sentence of these words (its tokens, and 1-character words, which are
        not terms) passes the bound of ``probability_if_reaches``, slightly loosened.

        That bound is sum(c * lift) / sqrt(sum((c * idf) ** 2)) over its terms with
        counts c. Summing over the words instead, without counting them, gives the same
        numerator and sum(c * idf ** 2) <= sum((c * idf) ** 2) under the root: a bound at
        least as high when the numerator is positive, and negative (under ``reach`` > 0)
        when it is not.
        """
        # Real and imaginary parts add up separately, in order: the same floats as two sums.
        total = sum(map(self.lift_idf_sq.get, words, repeat(0j)))
        norm = math.sqrt(total.imag) or 1.0
        return total.real / norm >= self.reach - 1e-9  # margin for rounding, as there


@dataclass(frozen=True, eq=False)
class LinearProfanityModel:
    """idf and per-fold weights by term, plus per-fold intercepts and calibrations."""

    idf: dict[str, float]
    weights: dict[str, tuple[float, ...]]
    intercepts: tuple[float, ...]
    calibrations: tuple[tuple[float, float], ...]
    positive_sq: dict[str, float]  # max(0, largest fold weight) squared, per term
    positive_terms: frozenset[str]  # the terms with a positive weight in some fold
    stop_words: frozenset[str] = frozenset()  # the vectorizer's, which are not terms
    top_weight: dict[str, float] = field(init=False, repr=False)  # largest fold weight
    increasing: bool = field(init=False, repr=False)  # probability grows with decisions

    def __post_init__(self) -> None:
        object.__setattr__(self, "top_weight", {t: max(w) for t, w in self.weights.items()})
        # The bounds (reach_sq, gate, probability_if_reaches) assume this; it holds for
        # the packaged model (a test checks).
        object.__setattr__(self, "increasing", all(a < 0 for a, _ in self.calibrations))

    def ceiling(self, bound: float) -> float:
        """The probability a text reaches when every fold's decision is ``bound`` above its
        intercept: the most any text whose weight bound is ``bound`` can score."""
        total = 0.0
        for (a, b), intercept in zip(self.calibrations, self.intercepts, strict=True):
            total += 1.0 / (1.0 + math.exp(a * (bound + intercept) + b))
        return total / len(self.intercepts)

    @lru_cache(maxsize=16)  # noqa: B019 - one model per process, a few thresholds
    def reach_sq(self, threshold: float) -> float:
        """Squared weight bound below which no text can score ``threshold`` or more.

        By Cauchy-Schwarz a fold's decision exceeds its intercept by at most the norm of
        the text's positive weights, so a sentence whose terms' summed ``positive_sq``
        stays under this value cannot reach ``threshold`` and need not be scored.
        """
        low, high = 0.0, 100.0
        for _ in range(60):
            mid = (low + high) / 2
            if self.ceiling(mid) < threshold:
                low = mid
            else:
                high = mid
        return low * low

    @lru_cache(maxsize=16)  # noqa: B019 - one model per process, a few thresholds
    def gate(self, threshold: float, resolution: int = 100) -> SentenceGate:
        """A ``SentenceGate`` for ``threshold``: codes in units of ``reach_sq / resolution``.

        Cached (~20 ms to build); gates are never changed."""
        reach = self.reach_sq(threshold)
        if reach <= 0 or not self.increasing:  # no bound: let everything through
            return SentenceGate({b".": STOP_CODE}, 0, (), {}, -math.inf)
        if resolution >= MAX_CODE:  # then a word capped at MAX_CODE could fall short
            raise ValueError(f"resolution must be under {MAX_CODE}")
        unit = reach / resolution

        def code(positive_sq: float) -> int:
            return min(MAX_CODE, int(positive_sq * (1 + 1e-9) / unit) + 1)

        codes: dict[bytes, int] = {}
        wide = []
        for term in sorted(self.positive_terms):
            pieces = re.findall("[a-z0-9_]+", term)  # what the gate sees of the term
            if not pieces:
                wide.append((term, code(self.positive_sq[term])))
                continue
            key = term.encode() if term.isascii() else max(pieces, key=len).encode()
            codes[key] = min(MAX_CODE, codes.get(key, 0) + code(self.positive_sq[term]))
        codes[b"."] = STOP_CODE
        need = int(reach * (1 - 1e-9) / unit)
        return SentenceGate(codes, need, tuple(wide), self._lift_idf_sq, math.sqrt(reach))

    @cached_property
    def _lift_idf_sq(self) -> dict[bytes, complex]:
        """``SentenceGate.lift_idf_sq``: for the ASCII terms, by bytes."""
        return {
            term.encode(): complex(idf * self.top_weight[term], idf * idf)
            for term, idf in self.idf.items()
            if term.isascii()
        }

    def may_reach(self, terms: Iterable[str], threshold: float) -> bool:
        """Whether text with these (distinct) terms could score ``threshold`` or more."""
        risky = self.positive_terms.intersection(terms)
        return sum(map(self.positive_sq.__getitem__, risky)) >= self.reach_sq(threshold)

    def probability(self, counts: dict[str, int]) -> float:
        """P(profane) for a bag of lower-cased tokens, as ``predict_prob`` computes it."""
        return self._probability(*self._tf_idf(counts))

    def probability_if_reaches(self, counts: dict[str, int], threshold: float) -> float | None:
        """``probability(counts)``, or None when a cheap bound shows it is under ``threshold``.

        With tf-idf values v >= 0, every fold's decision is above its intercept by
        sum(v * w) / |v| <= sum(v * top_weight) / |v|. If that is under sqrt(reach_sq),
        the probability is under ``ceiling(sqrt(reach_sq))``, itself under ``threshold``.
        Far tighter than ``may_reach`` (it sees counts, the norm and negative weights): of
        the sentences ``may_reach`` keeps in the benchmark, ~3% pass, and the five dot
        products of the exact score are skipped for the rest.
        """
        terms, values, norm = self._tf_idf(counts)
        reach = self.reach_sq(threshold)
        if reach > 0 and self.increasing:
            bound = sum(map(mul, values, map(self.top_weight.__getitem__, terms))) / norm
            if bound < math.sqrt(reach) - 1e-9:  # margin for rounding in either sum
                return None
        return self._probability(terms, values, norm)

    def _tf_idf(self, counts: dict[str, int]) -> tuple[list[str], list[float], float]:
        """The vocabulary terms among ``counts``, their tf-idf values, and the values' norm."""
        idf_of = self.idf
        terms = [term for term in counts if term in idf_of]
        values = list(map(mul, map(counts.__getitem__, terms), map(idf_of.__getitem__, terms)))
        return terms, values, math.sqrt(reduce(add, map(mul, values, values), 0.0)) or 1.0

    def _probability(self, terms: list[str], values: list[float], norm: float) -> float:
        """Each sum runs in C (``reduce`` over ``map``) but adds the same products in the
        same order, from 0.0, as a plain loop over the terms would: the same float."""
        folds = len(self.intercepts)
        # The terms' weights, one column per fold (zip(*[]) would give no columns at all).
        rows = map(self.weights.__getitem__, terms)
        columns = zip(*rows, strict=True) if terms else repeat((), folds)
        total = 0.0
        for column, intercept, (a, b) in zip(
            columns, self.intercepts, self.calibrations, strict=True
        ):
            dot = reduce(add, map(mul, values, column), 0.0)
            decision = dot / norm + intercept
            total += 1.0 / (1.0 + math.exp(a * decision + b))
        return total / folds

    def term_weight(self, term: str) -> float:
        """Mean weight of a term across folds, times its idf: how much it pushes the score."""
        return self._term_weights.get(term, 0.0)

    @cached_property
    def _term_weights(self) -> dict[str, float]:
        return {t: self.idf[t] * sum(w) / len(w) for t, w in self.weights.items()}


@lru_cache(maxsize=1)
def load_model() -> LinearProfanityModel:
    """Read the packaged model once per process (about half a second)."""
    from profanity_check import profanity_check as packaged

    vectorizer = packaged.vectorizer
    stop = vectorizer.get_stop_words() or frozenset()
    idf_values = vectorizer.idf_
    idf: dict[str, float] = {}
    columns: dict[str, int] = {}
    for term, column in vectorizer.vocabulary_.items():
        if term in stop:
            continue
        idf[term] = float(idf_values[column])
        columns[term] = int(column)
    folds = packaged.model.calibrated_classifiers_
    coefs = [fold.estimator.coef_[0] for fold in folds]
    weights = {term: tuple(float(c[col]) for c in coefs) for term, col in columns.items()}
    return LinearProfanityModel(
        idf=idf,
        weights=weights,
        positive_sq={term: max(0.0, *w) ** 2 for term, w in weights.items()},
        positive_terms=frozenset(term for term, w in weights.items() if max(w) > 0),
        stop_words=frozenset(stop),
        intercepts=tuple(float(fold.estimator.intercept_[0]) for fold in folds),
        calibrations=tuple(
            (float(fold.calibrators[0].a_), float(fold.calibrators[0].b_)) for fold in folds
        ),
    )
