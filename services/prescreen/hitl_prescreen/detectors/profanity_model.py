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
from dataclasses import dataclass
from functools import lru_cache

TOKEN = re.compile(r"\b\w\w+\b")


@dataclass(frozen=True)
class LinearProfanityModel:
    """idf and per-fold weights by term, plus per-fold intercepts and calibrations."""

    idf: dict[str, float]
    weights: dict[str, tuple[float, ...]]
    intercepts: tuple[float, ...]
    calibrations: tuple[tuple[float, float], ...]

    def probability(self, counts: dict[str, int]) -> float:
        """P(profane) for a bag of lower-cased tokens, as ``predict_prob`` computes it."""
        norm_sq = 0.0
        folds = len(self.intercepts)
        dots = [0.0] * folds
        for term, count in counts.items():
            idf = self.idf.get(term)
            if idf is None:
                continue
            value = count * idf
            norm_sq += value * value
            for k, w in enumerate(self.weights[term]):
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
        intercepts=tuple(float(fold.estimator.intercept_[0]) for fold in folds),
        calibrations=tuple(
            (float(fold.calibrators[0].a_), float(fold.calibrators[0].b_)) for fold in folds
        ),
    )
