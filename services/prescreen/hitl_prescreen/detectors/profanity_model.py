"""The alt-profanity-check model, evaluated without scikit-learn on the hot path.

The package ships a TF-IDF vectorizer and a calibrated linear SVM (5 folds, sigmoid
calibration). Scoring through scikit-learn costs ~3-4 ms per 2 KB text, mostly call
overhead. The same arithmetic in plain Python over the text's tokens is exact (a test
compares it with ``predict_prob``), an order of magnitude faster, and yields each
token's contribution, which gives the flag its span.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

TOKEN = re.compile(r"\b\w\w+\b")


@dataclass(frozen=True, eq=False)
class LinearProfanityModel:
    """idf and per-fold weights by term, plus per-fold intercepts and calibrations."""

    idf: dict[str, float]
    weights: dict[str, tuple[float, ...]]
    intercepts: tuple[float, ...]
    calibrations: tuple[tuple[float, float], ...]
    positive_sq: dict[str, float]  # max(0, largest fold weight) squared, per term
    positive_terms: frozenset[str]  # the terms with a positive weight in some fold

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

    def may_reach(self, terms: Iterable[str], threshold: float) -> bool:
        """Whether text with these (distinct) terms could score ``threshold`` or more."""
        risky = self.positive_terms.intersection(terms)
        return sum(map(self.positive_sq.__getitem__, risky)) >= self.reach_sq(threshold)

    def probability(self, counts: dict[str, int]) -> float:
        """P(profane) for a bag of lower-cased tokens, as ``predict_prob`` computes it."""
        norm_sq = 0.0
        folds = len(self.intercepts)
        dots = [0.0] * folds
        idf_of = self.idf
        weights_of = self.weights
        for term, count in counts.items():
            idf = idf_of.get(term)
            if idf is None:
                continue
            value = count * idf
            norm_sq += value * value
            for k, w in enumerate(weights_of[term]):
                dots[k] += value * w
        norm = math.sqrt(norm_sq) or 1.0
        total = 0.0
        for k in range(folds):
            decision = dots[k] / norm + self.intercepts[k]
            a, b = self.calibrations[k]
            total += 1.0 / (1.0 + math.exp(a * decision + b))
        return total / folds

    def term_weight(self, term: str) -> float:
        """Mean weight of a term across folds, times its idf: how much it pushes the score."""
        weights = self.weights.get(term)
        if weights is None:
            return 0.0
        return self.idf[term] * sum(weights) / len(weights)


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
        intercepts=tuple(float(fold.estimator.intercept_[0]) for fold in folds),
        calibrations=tuple(
            (float(fold.calibrators[0].a_), float(fold.calibrators[0].b_)) for fold in folds
        ),
    )
