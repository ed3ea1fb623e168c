"""Pure rules: approvals and escalation, highlight segments, the audit chain."""

from __future__ import annotations

import pytest

from hitl_review_api.audit import GENESIS, entry_hash, verify
from hitl_review_api.highlight import segments
from hitl_review_api.review import outcome
from hitl_shared.events import Flag, ReviewDecision
from tests.review_api.helpers import make_task

pytestmark = pytest.mark.unit


def _decision(task, reviewer, level, verdict, edited=None):
    return ReviewDecision(
        item_id=task.item_id,
        task_id=task.task_id,
        reviewer_id=reviewer,
        reviewer_level=level,
        verdict=verdict,
        original_text=task.screened.output.output_text,
        edited_text=edited,
        final=False,
    )


def test_single_approval_finishes_a_medium_task():
    task = make_task("m1")
    got = outcome(task, [], level="L1", verdict="approve", edited_text=None, bucket="L1:general:en")
    assert (got.final, got.verdict, got.next_step) == (True, "approve", "done")


def test_l1_alone_never_finishes_a_critical_task():
    task = make_task("c1", tier="critical", required_level="L1")
    for verdict in ("approve", "edit", "reject"):
        got = outcome(
            task, [], level="L1", verdict=verdict, edited_text="x", bucket="L1:general:en"
        )
        assert got.final is False and got.requeue_bucket == "L2:general:en", verdict
    # even after another L1 approved, an L1 cannot be the one to finish it
    prior = [_decision(task, "l1a", "L1", "approve")]
    got = outcome(task, prior, level="L1", verdict="approve", edited_text=None, bucket="L1:x:en")
    assert got.final is False and got.next_step == "senior_review"


def test_critical_finishes_with_two_distinct_approvers_one_senior():
    task = make_task("c2", tier="critical", approvals=1)  # critical means two, whatever it says
    first = outcome(task, [], level="L2", verdict="approve", edited_text=None, bucket="L2:g:en")
    assert first.final is False and first.next_step == "second_approval"
    assert first.requeue_bucket is None
    prior = [_decision(task, "sam", "L2", "edit", edited="clean text")]
    second = outcome(task, prior, level="L1", verdict="approve", edited_text=None, bucket="L2:g:en")
    assert second.final is True and second.verdict == "edit" and second.edited_text == "clean text"


def test_after_an_l3_approval_any_senior_may_give_the_second():
    task = make_task("b1", tier="critical", required_level="L3")
    first = outcome(task, [], level="L3", verdict="edit", edited_text="safe", bucket="L3:g:en")
    assert first.final is False and first.next_step == "second_approval"
    assert first.requeue_bucket == "L2:g:en"  # a team with one L3 can still finish it
    prior = [_decision(task, "lea", "L3", "edit", edited="safe")]
    second = outcome(task, prior, level="L2", verdict="approve", edited_text=None, bucket="L2:g:en")
    assert second.final is True and second.edited_text == "safe"


def test_escalation_moves_one_level_up_and_stops_at_l3():
    task = make_task("e1")
    got = outcome(task, [], level="L1", verdict="escalate", edited_text=None, bucket="L1:med:fr")
    assert got.requeue_bucket == "L2:med:fr" and got.final is False
    top = outcome(task, [], level="L3", verdict="escalate", edited_text=None, bucket="L3:med:fr")
    assert top.requeue_bucket == "L3:med:fr"


def test_approving_an_unchanged_edit_is_an_approve():
    task = make_task("u1")
    text = task.screened.output.output_text
    got = outcome(task, [], level="L1", verdict="edit", edited_text=text, bucket="L1:g:en")
    assert got.verdict == "approve" and got.edited_text is None


def _flag(start, end, category="pii"):
    return Flag(
        detector="d",
        category=category,
        severity="high",
        score=0.9,
        start=start,
        end=end,
        explanation="why",
    )


def test_segments_cover_the_text_with_overlaps_and_code_points():
    text = "héllo 😀 card 4111 end"
    start = text.index("card")
    parts = segments(
        text, [_flag(start, start + 9), _flag(start + 5, start + 9, "x"), _flag(0, 99)]
    )
    assert "".join(p.text for p in parts) == text
    assert [p.text for p in parts if 1 in p.flags] == ["4111"]
    assert all(2 in p.flags for p in parts)  # the out-of-range span is clamped
    assert segments("", [_flag(0, 5)]) == []


def test_chain_verification_detects_edits_deletions_and_reordering():
    entries, prev = [], GENESIS
    for seq in range(3):
        body = {"seq": seq, "action": "claim", "actor": f"r{seq}", "prev_hash": prev}
        prev = entry_hash(prev, body)
        entries.append({**body, "hash": prev})
    assert verify(entries).ok and verify(entries).head == prev
    assert verify([]).ok and verify([]).head == GENESIS
    edited = [dict(e) for e in entries]
    edited[1]["actor"] = "mallory"
    assert (verify(edited).ok, verify(edited).broken_at, verify(edited).problem) == (
        False,
        1,
        "hash",
    )
    assert verify([entries[0], entries[2]]).broken_at == 1
    assert verify(entries[1:]).broken_at == 0
