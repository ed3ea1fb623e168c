"""Metrics on the fixed decision set of ``sample.py``, against hand-computed values."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hitl_feedback.annotations import annotate, diff_chars, edge_case_entry
from hitl_feedback.config import FeedbackConfig
from hitl_feedback.metrics import agreement, core, learning, report, select, settled, value
from hitl_feedback.reviewers import binomial_z, drift, reviewer_report
from tests.feedback.sample import DAY1, decisions

pytestmark = pytest.mark.unit


@pytest.fixture
def annotations():
    return [annotate(d) for d in decisions()]


def test_quality_efficiency_and_intervention(annotations):
    m = core(annotations)
    # Settled items: i1 A, i2 E, i3 R, i4 A (after escalation), i5 A, i6 E, i7 E, i8 R.
    assert m["decisions"] == 13
    assert m["items_settled"] == 8
    assert m["errors"] == 5
    assert m["error_rate"] == pytest.approx(5 / 8)
    assert m["accuracy"] == pytest.approx(3 / 8)
    assert m["modification_rate"] == pytest.approx(3 / 8)
    assert m["rejection_rate"] == pytest.approx(2 / 8)
    assert m["escalation_rate"] == pytest.approx(1 / 13)
    assert m["review_time_s"]["mean"] == pytest.approx(274 / 13)
    assert m["review_time_s"]["median"] == 18
    assert m["review_time_s"]["p90"] == pytest.approx(39)
    assert m["throughput_per_hour"] == pytest.approx(13 / (24 + 50 / 60))
    assert m["labels"] == {
        "factual_error": 2,
        "pii": 1,
        "policy_violation": 1,
        "reasoning_flaw": 1,
        "style": 1,
    }
    assert m["severity"] == {"critical": 1, "high": 1, "low": 1, "medium": 2}


def test_slices_by_prompt_version_and_domain(annotations):
    v1 = core(select(annotations, prompt_version="1"))
    v2 = core(select(annotations, prompt_version="2"))
    assert (v1["decisions"], v1["items_settled"], v1["error_rate"]) == (6, 4, 0.5)
    assert (v2["decisions"], v2["items_settled"], v2["error_rate"]) == (7, 4, 0.75)
    assert v1["modification_rate"] == 0.25 and v2["modification_rate"] == 0.5
    full = report(annotations, FeedbackConfig())
    assert full["accuracy_by_domain"]["billing"]["accuracy"] == pytest.approx(2 / 5)
    assert full["accuracy_by_domain"]["medical"]["accuracy"] == pytest.approx(1 / 3)
    assert set(full["by"]) >= {"app", "use_case", "tier", "model", "prompt_version", "reviewer"}


def test_time_window_filter(annotations):
    day1 = select(annotations, since=DAY1, until=DAY1 + timedelta(days=1))
    assert len(day1) == 7
    assert len(select(annotations, since="2026-01-06T00:00:00+00:00")) == 6
    with pytest.raises(ValueError, match="unknown filter"):
        select(annotations, colour="red")


def test_agreement_on_double_reviewed_items(annotations):
    result = agreement(annotations)
    # i5 (A,A), i6 (E,E), i7 (A,E), i8 (R,R); i4's escalation is a hand-off, not a rating.
    assert result["double_reviewed_items"] == 4
    # po = 3/4, pe = (2*1 + 1*2 + 1*1)/16 = 5/16  ->  kappa = 7/11
    (pair,) = result["pairs"]
    assert pair["reviewers"] == ["r1", "r2"]
    assert pair["cohen_kappa"] == pytest.approx(7 / 11)
    assert pair["percent_agreement"] == 0.75
    # n_A = 3, n_E = 3, n_R = 2, n = 8, disagreeing pairs 2: 1 - 7*2/42 = 2/3
    assert result["krippendorff_alpha_verdict"] == pytest.approx(2 / 3)
    # ok: 3 values, error: 5 values: 1 - 7*2/30 = 8/15
    assert result["krippendorff_alpha_error"] == pytest.approx(8 / 15)


def test_value_of_caught_errors(annotations):
    result = value(annotations, FeedbackConfig())
    # i2 factual 50, i3 pii 1000, i6 style 2, i7 factual+reasoning 80, i8 policy 750
    assert result["errors_caught"] == 5
    assert result["value"] == pytest.approx(1882)
    assert result["incidents_prevented"] == 2  # i3 (high, pii) and i8 (critical, policy)
    custom = FeedbackConfig(costs={"pii": 1.0}, unlabeled_cost=0.5)
    assert value(annotations, custom)["value"] == pytest.approx(0.5 + 1 + 0.5 + 1.0 + 0.5)


def test_learning_counts_recurring_issues_per_window(annotations):
    result = learning(annotations, 86400)
    day1, day2 = result["windows"]
    assert (day1["items"], day1["errors"], day1["recurring_errors"]) == (5, 2, 0)
    # i7's factual_error on billing already happened on day 1 (i2); i6 style, i8 policy are new.
    assert (day2["items"], day2["errors"], day2["recurring_errors"]) == (3, 3, 1)
    assert day2["recurring_rate"] == pytest.approx(1 / 3)


def test_reviewer_analytics(annotations):
    result = reviewer_report(annotations, FeedbackConfig())["reviewers"]
    r1, r2, r3 = result["r1"], result["r2"], result["r3"]
    assert r1["decisions"] == 6 and r1["mean_time_s"] == pytest.approx(94 / 6)
    assert r1["modification_rate"] == pytest.approx(2 / 6)
    assert r2["modification_rate"] == pytest.approx(2 / 5)
    assert r2["escalation_rate"] == pytest.approx(1 / 6)
    assert r3["modification_rate"] == 0
    assert r1["peer_agreement"]["agreement_rate"] == 0.75
    assert r1["peer_agreement"]["kappa_with"]["r2"] == pytest.approx(7 / 11)


def test_outlier_reviewer_is_flagged():
    base = decisions()[0]
    made = []
    for reviewer, edits in (("a", 2), ("b", 3), ("c", 2), ("d", 18)):
        for n in range(20):
            verdict = "edit" if n < edits else "approve"
            made.append(
                annotate(
                    base.model_copy(
                        update={
                            "event_id": f"{reviewer}{n}",
                            "item_id": f"{reviewer}-{n}",
                            "reviewer_id": reviewer,
                            "verdict": verdict,
                            "edited_text": "changed" if verdict == "edit" else None,
                        }
                    )
                )
            )
    flagged = reviewer_report(made, FeedbackConfig())["outliers"]
    assert [(o["reviewer"], o["metric"]) for o in flagged] == [("d", "modification_rate")]
    # d: 18/20 vs the peers' median rate 0.10: z = (0.9 - 0.1) / sqrt(0.1 * 0.9 / 20)
    assert flagged[0]["z"] == pytest.approx(0.8 / (0.1 * 0.9 / 20) ** 0.5)
    assert binomial_z(0, 0, 0.5) is None
    assert binomial_z(3, 10, None) is None


def test_fatigue_drift_compares_start_and_end_of_a_session():
    base = decisions()[0]
    made = [
        annotate(
            base.model_copy(
                update={
                    "event_id": f"s{n}",
                    "item_id": f"s-{n}",
                    "occurred_at": DAY1 + timedelta(minutes=n),
                    "time_spent_s": 40.0 if n < 4 else (25.0 if n < 8 else 10.0),
                }
            )
        )
        for n in range(12)
    ]
    result = drift(made, gap_s=1800)
    assert result["sessions_analysed"] == 1
    assert result["first"]["mean_time_s"] == 40.0 and result["last"]["mean_time_s"] == 10.0
    assert result["suspected"] is True
    split = [
        a.model_copy(update={"occurred_at": DAY1 + timedelta(hours=n)}) for n, a in enumerate(made)
    ]
    assert drift(split, gap_s=1800)["sessions_analysed"] == 0


def test_settled_takes_each_items_latest_outcome(annotations):
    latest = {a.item_id: a.verdict for a in settled(annotations)}
    assert latest == {
        "i1": "approve",
        "i2": "edit",
        "i3": "reject",
        "i4": "approve",
        "i5": "approve",
        "i6": "edit",
        "i7": "edit",
        "i8": "reject",
    }


def test_annotation_and_knowledge_base_entry(annotations):
    edit = annotations[1]
    assert edit.modified_text == "Corrected answer for i2."
    assert edit.diff_chars == diff_chars("Original answer for i2.", "Corrected answer for i2.")
    assert diff_chars("abc", "abXc") == 1 and diff_chars("abc", "abc") == 0
    entry = edge_case_entry(edit)
    assert entry is not None
    assert set(entry) == {"case_id", "text", "labels", "item_id", "note"}
    assert entry["text"] == "Original answer for i2." and entry["labels"] == ["factual_error"]
    assert "Corrected answer for i2." in str(entry["note"])
    assert edge_case_entry(annotations[0]) is None  # approval
    assert edge_case_entry(annotations[11]) is None  # i8 r1: reject, but not final
    assert edge_case_entry(annotations[12])["note"].startswith("rejected")
