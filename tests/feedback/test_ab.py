"""Prompt A/B verdicts on constructed arms with known counts."""

from __future__ import annotations

import pytest

from hitl_feedback.ab import compare_prompt_versions
from hitl_feedback.annotations import annotate
from hitl_feedback.report import parser
from tests.feedback.sample import decisions

pytestmark = pytest.mark.unit


def _arm(version: str, n: int, edits: int, rejects: int = 0):
    base = decisions()[0]
    made = []
    for i in range(n):
        verdict = "edit" if i < edits else ("reject" if i < edits + rejects else "approve")
        made.append(
            annotate(
                base.model_copy(
                    update={
                        "event_id": f"v{version}-{i}",
                        "item_id": f"v{version}-{i}",
                        "prompt_template_version": version,
                        "verdict": verdict,
                        "edited_text": "fixed" if verdict == "edit" else None,
                        "reason": "wrong" if verdict == "reject" else None,
                    }
                )
            )
        )
    return made


def test_significantly_better_version_is_preferred():
    result = compare_prompt_versions(_arm("1", 100, 10) + _arm("2", 100, 25), "1", "2")
    errors = result["metrics"]["error_rate"]
    assert errors["a"] == [10, 100] and errors["b"] == [25, 100]
    assert errors["method"] == "two-proportion z"
    # pooled 0.175: z = 0.15 / sqrt(0.175 * 0.825 * 0.02) = 2.7915
    assert errors["statistic"] == pytest.approx(2.7915, abs=1e-4)
    assert errors["p_value"] < 0.01 and errors["lower"] == "1"
    assert result["verdict"].startswith("prefer version 1")


def test_no_difference_and_insufficient_data():
    same = compare_prompt_versions(_arm("1", 100, 10) + _arm("2", 100, 12), "1", "2")
    assert same["verdict"].startswith("no significant difference")
    small = compare_prompt_versions(_arm("1", 5, 0) + _arm("2", 5, 5), "1", "2")
    assert small["verdict"].startswith("insufficient data")
    assert small["metrics"]["error_rate"]["method"] == "fisher exact"


def test_modification_rate_breaks_the_tie_when_errors_do_not_differ():
    a = _arm("1", 200, 40, rejects=0)  # 20 % errors, all edits
    b = _arm("2", 200, 10, rejects=30)  # 20 % errors, mostly rejects
    result = compare_prompt_versions(a + b, "1", "2")
    assert not result["metrics"]["error_rate"]["significant"]
    assert result["metrics"]["modification_rate"]["lower"] == "2"
    assert "modification rate is lower" in result["verdict"]


def test_cli_parses_the_ab_subcommand():
    args = parser().parse_args(["ab", "--a", "3", "--b", "4", "--template-id", "answer"])
    assert (args.command, args.a, args.b, args.template_id, args.source) == (
        "ab",
        "3",
        "4",
        "answer",
        "redis",
    )
