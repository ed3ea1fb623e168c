"""Prompt A/B: do two prompt-template versions differ in error or modification rate?

Each version's settled items are compared on both rates with a two-proportion z-test
(Fisher's exact test when an expected cell count is below 5). The verdict prefers a
version only on a significant difference, and says so when there is too little data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hitl_feedback.annotations import Annotation
from hitl_feedback.metrics import select, settled
from hitl_feedback.stats import compare_proportions


def _is_error(annotation: Annotation) -> bool:
    return annotation.is_error


def _is_edit(annotation: Annotation) -> bool:
    return annotation.verdict == "edit"


METRICS: dict[str, Callable[[Annotation], bool]] = {
    "error_rate": _is_error,
    "modification_rate": _is_edit,
}


def compare_prompt_versions(
    annotations: Sequence[Annotation],
    version_a: str,
    version_b: str,
    *,
    template_id: str | None = None,
    alpha: float = 0.05,
    min_items: int = 20,
    **filters: Any,
) -> dict[str, Any]:
    """Compare A and B; ``filters`` narrow both arms alike (app, use_case, since, ...)."""
    base = {"prompt_template_id": template_id, **filters}
    arms = {
        version: settled(select(annotations, prompt_version=version, **base))
        for version in (version_a, version_b)
    }
    a_items, b_items = arms[version_a], arms[version_b]
    enough = len(a_items) >= min_items and len(b_items) >= min_items
    results: dict[str, Any] = {}
    for name, hit in METRICS.items():
        x_a = sum(1 for a in a_items if hit(a))
        x_b = sum(1 for a in b_items if hit(a))
        entry: dict[str, Any] = {"a": [x_a, len(a_items)], "b": [x_b, len(b_items)]}
        if a_items and b_items:
            test = compare_proportions(x_a, len(a_items), x_b, len(b_items))
            entry.update(
                rate_a=test.rate_a,
                rate_b=test.rate_b,
                method=test.method,
                statistic=test.statistic,
                p_value=test.p_value,
                significant=enough and test.p_value < alpha,
            )
            if entry["significant"]:
                entry["lower"] = version_a if test.rate_a < test.rate_b else version_b
        results[name] = entry
    return {
        "template_id": template_id,
        "version_a": version_a,
        "version_b": version_b,
        "alpha": alpha,
        "min_items": min_items,
        "metrics": results,
        "verdict": _verdict(results, version_a, version_b, enough, min_items),
    }


def _verdict(results: dict[str, Any], a: str, b: str, enough: bool, min_items: int) -> str:
    if not enough:
        return (
            f"insufficient data: need at least {min_items} settled items per version "
            f"(have {results['error_rate']['a'][1]} for {a}, {results['error_rate']['b'][1]} "
            f"for {b})"
        )
    errors, edits = results["error_rate"], results["modification_rate"]
    if errors.get("significant"):
        better = errors["lower"]
        return (
            f"prefer version {better}: significantly lower error rate "
            f"({errors['rate_a']:.1%} for {a} vs {errors['rate_b']:.1%} for {b}, "
            f"p={errors['p_value']:.3g}, {errors['method']})"
        )
    if edits.get("significant"):
        better = edits["lower"]
        return (
            f"prefer version {better}: error rates do not differ significantly, but its "
            f"modification rate is lower ({edits['rate_a']:.1%} for {a} vs "
            f"{edits['rate_b']:.1%} for {b}, p={edits['p_value']:.3g})"
        )
    return (
        f"no significant difference between {a} and {b} "
        f"(error p={errors['p_value']:.3g}, modification p={edits['p_value']:.3g}); "
        "keep the current version or collect more data"
    )
