"""Small exact statistics the feedback loop needs, without a numeric library at runtime.

Agreement (Cohen's kappa, Krippendorff's alpha), the Beta quantile behind adaptive
sampling, and the two tests behind prompt A/B verdicts. Each is checked against
textbook values in the tests.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import permutations


def cohen_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa of two raters over the same items; None when undefined.

    ``pairs`` holds (rater A's category, rater B's category) per item.
    """
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(1 for a, b in pairs if a == b) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[c] * second[c] for c in first) / (n * n)
    if expected >= 1.0:
        return None  # both raters used one and the same category: chance explains everything
    return (observed - expected) / (1.0 - expected)


def krippendorff_alpha_nominal(units: Iterable[Sequence[Hashable]]) -> float | None:
    """Krippendorff's alpha for nominal data, any number of raters, missing values allowed.

    ``units`` holds the values assigned to each unit (item); units with fewer than two
    values are not pairable and are left out, as in Krippendorff (2011).
    """
    coincidence: defaultdict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for values in units:
        m = len(values)
        if m < 2:
            continue
        for i, j in permutations(range(m), 2):
            coincidence[(values[i], values[j])] += 1.0 / (m - 1)
    totals: defaultdict[Hashable, float] = defaultdict(float)
    for (c, _), weight in coincidence.items():
        totals[c] += weight
    n = sum(totals.values())
    if n <= 1:
        return None
    disagreement = sum(w for (c, k), w in coincidence.items() if c != k)
    expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k)
    if expected == 0:
        return None  # a single category overall: agreement is not measurable
    return 1.0 - (n - 1) * disagreement / expected


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """Regularized incomplete beta I_x(a, b), the CDF of Beta(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def beta_quantile(q: float, a: float, b: float) -> float:
    """Inverse CDF of Beta(a, b) by bisection (monotone, 1e-12 absolute)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} outside [0, 1]")
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if beta_cdf(mid, a, b) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2.0


def normal_sf(z: float) -> float:
    """Upper tail of the standard normal."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@dataclass(frozen=True)
class ProportionTest:
    """Result of comparing two proportions x_a/n_a and x_b/n_b."""

    method: str
    rate_a: float
    rate_b: float
    statistic: float | None
    p_value: float


def two_proportion_z(x_a: int, n_a: int, x_b: int, n_b: int) -> ProportionTest:
    """Pooled two-proportion z-test, two-sided."""
    if n_a <= 0 or n_b <= 0:
        raise ValueError("both groups need at least one observation")
    p_a, p_b = x_a / n_a, x_b / n_b
    pooled = (x_a + x_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return ProportionTest("two-proportion z", p_a, p_b, 0.0, 1.0)
    z = (p_b - p_a) / se
    return ProportionTest("two-proportion z", p_a, p_b, z, min(1.0, 2 * normal_sf(abs(z))))


def _log_hypergeom(k: int, row1: int, row2: int, col1: int) -> float:
    def log_comb(n: int, r: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(r + 1) - math.lgamma(n - r + 1)

    return log_comb(row1, k) + log_comb(row2, col1 - k) - log_comb(row1 + row2, col1)


def fisher_exact(x_a: int, n_a: int, x_b: int, n_b: int) -> ProportionTest:
    """Fisher's exact test, two-sided (sum of tables no more likely than the observed)."""
    if n_a <= 0 or n_b <= 0:
        raise ValueError("both groups need at least one observation")
    col1 = x_a + x_b
    lo, hi = max(0, col1 - n_b), min(n_a, col1)
    observed = _log_hypergeom(x_a, n_a, n_b, col1)
    total = 0.0
    for k in range(lo, hi + 1):
        log_p = _log_hypergeom(k, n_a, n_b, col1)
        if log_p <= observed + 1e-7:
            total += math.exp(log_p)
    return ProportionTest("fisher exact", x_a / n_a, x_b / n_b, None, min(1.0, total))


def compare_proportions(x_a: int, n_a: int, x_b: int, n_b: int) -> ProportionTest:
    """z-test when every expected cell count is at least 5, else Fisher's exact test."""
    pooled = (x_a + x_b) / (n_a + n_b)
    expected = (n_a * pooled, n_a * (1 - pooled), n_b * pooled, n_b * (1 - pooled))
    if min(expected) >= 5:
        return two_proportion_z(x_a, n_a, x_b, n_b)
    return fisher_exact(x_a, n_a, x_b, n_b)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def quantile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated quantile (numpy's default), None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def counts(values: Iterable[Hashable]) -> dict[str, int]:
    return {str(k): v for k, v in sorted(Counter(values).items(), key=lambda kv: str(kv[0]))}


def merge_counts(parts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for part in parts:
        total.update(part)
    return dict(sorted(total.items()))
