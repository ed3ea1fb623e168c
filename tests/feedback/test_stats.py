"""Agreement and test statistics against textbook values."""

from __future__ import annotations

import math

import pytest

from hitl_feedback.stats import (
    beta_cdf,
    beta_quantile,
    cohen_kappa,
    compare_proportions,
    fisher_exact,
    krippendorff_alpha_nominal,
    quantile,
    two_proportion_z,
)

pytestmark = pytest.mark.unit


def test_cohen_kappa_worked_example():
    # Wikipedia "Cohen's kappa": 50 proposals, yes/yes 20, yes/no 5, no/yes 10, no/no 15.
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)


def test_cohen_kappa_edge_cases():
    assert cohen_kappa([]) is None
    assert cohen_kappa([("a", "a")] * 5) is None  # one category for both: undefined
    assert cohen_kappa([("a", "b"), ("b", "a")]) == pytest.approx(-1.0)


def test_krippendorff_alpha_reliability_data_example():
    # Krippendorff (2011) "Computing Krippendorff's alpha-reliability", 4 observers,
    # 12 units, missing values; nominal alpha = 0.743.
    units = [
        [1, 1, 1],
        [2, 2, 3, 2],
        [3, 3, 3, 3],
        [3, 3, 3, 3],
        [2, 2, 2, 2],
        [1, 2, 3, 4],
        [4, 4, 4, 4],
        [1, 1, 2, 1],
        [2, 2, 2, 2],
        [5, 5, 5],
        [1, 1],
        [3],
    ]
    assert krippendorff_alpha_nominal(units) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_limits():
    assert krippendorff_alpha_nominal([["a", "a"], ["b", "b"]]) == pytest.approx(1.0)
    assert krippendorff_alpha_nominal([["a", "a"], ["a", "a"]]) is None
    assert krippendorff_alpha_nominal([["a"], ["b"]]) is None


@pytest.mark.parametrize(
    ("q", "a", "b", "expected"),
    [
        # Reference values from scipy.stats.beta.ppf.
        (0.95, 3, 199, 0.030989317924646494),
        (0.5, 2.5, 7.1, 0.24328806017301147),
        (0.99, 50, 3, 0.9914853361500334),
        (0.01, 0.5, 0.5, 0.00024671981713422146),
        (0.95, 1, 1, 0.95),
    ],
)
def test_beta_quantile_matches_reference(q, a, b, expected):
    assert beta_quantile(q, a, b) == pytest.approx(expected, abs=1e-9)
    assert beta_cdf(beta_quantile(q, a, b), a, b) == pytest.approx(q, abs=1e-9)


def test_beta_quantile_of_uniform_and_closed_form():
    # Beta(1, b) has CDF 1 - (1 - x)^b, so its q-quantile is 1 - (1 - q)^(1/b).
    assert beta_quantile(0.9, 1, 20) == pytest.approx(1 - 0.1 ** (1 / 20), abs=1e-10)


def test_two_proportion_z_textbook():
    # 10/100 vs 20/100: pooled 0.15, se = sqrt(.15*.85*.02) = 0.0505, z = 1.980.
    result = two_proportion_z(10, 100, 20, 100)
    assert result.statistic == pytest.approx(1.9803, abs=1e-4)
    assert result.p_value == pytest.approx(0.0477, abs=1e-4)


def test_fisher_exact_tea_tasting():
    # Fisher's lady tasting tea: 3 of 4 right in each group; two-sided p = 0.4857.
    assert fisher_exact(3, 4, 1, 4).p_value == pytest.approx(0.4857, abs=1e-4)
    # scipy.stats.fisher_exact([[1, 9], [9, 3]]) = 0.0036913550845439386
    assert fisher_exact(1, 10, 9, 12).p_value == pytest.approx(0.0036913550845, abs=1e-12)


def test_compare_proportions_chooses_fisher_for_small_counts():
    assert compare_proportions(1, 10, 9, 12).method == "fisher exact"
    assert compare_proportions(30, 200, 50, 200).method == "two-proportion z"


def test_quantile_interpolates_like_numpy():
    assert quantile([1, 2, 3, 4], 0.5) == 2.5
    assert quantile([5, 6, 8, 10, 12, 15, 18, 20, 25, 30, 35, 40, 50], 0.9) == 39
    assert quantile([], 0.5) is None
    assert not math.isnan(quantile([1.0], 0.9) or 0)
