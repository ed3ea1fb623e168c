"""Reviewed changes as pure rules: who may approve, when a change takes effect, the fold."""

from __future__ import annotations

import pytest

from hitl_review_api.prompts import domain
from hitl_review_api.prompts.domain import Refused, apply, fold
from hitl_shared.prompts import ApprovalPolicy
from tests.prompts.helpers import content

pytestmark = pytest.mark.unit


def _run(state, events):
    for event in events:
        state = apply(state, event)
    return state


def _created(proposal_id="p1"):
    events = domain.create(
        None,
        template_id="support",
        app="support-bot",
        description="",
        content=content(),
        policy=ApprovalPolicy(),
        actor="author",
        proposal_id=proposal_id,
    )
    return _run(None, events), events


def _approve(state, who, role, proposal_id="p1", skills=None):
    events = domain.approve(
        state, proposal_id=proposal_id, reviewer_id=who, skills=skills or (role,), as_role=role
    )
    return _run(state, events), events


def test_one_approval_is_not_enough_two_distinct_roles_are():
    state, _ = _created()
    assert state.labels == {"candidate": "1"} and state.production is None
    state, events = _approve(state, "olga", "prompt_owner")
    assert [e.event_type for e in events] == ["prompt.proposal_approved"]
    assert state.production is None
    assert domain.missing(state.policy, state.proposals["p1"]) == {"compliance": 1}
    state, events = _approve(state, "carl", "compliance")
    assert [e.event_type for e in events][-1] == "prompt.proposal_applied"
    assert state.labels == {"production": "1"}
    assert state.proposals["p1"].status == "applied"


def test_the_same_person_cannot_fill_both_roles_nor_approve_own_change():
    state, _ = _created()
    both = ("prompt_owner", "compliance")
    state, _ = _approve(state, "olga", "prompt_owner", skills=both)
    with pytest.raises(Refused, match="distinct"):
        domain.approve(
            state, proposal_id="p1", reviewer_id="olga", skills=both, as_role="compliance"
        )
    with pytest.raises(Refused, match="proposer"):
        domain.approve(
            state, proposal_id="p1", reviewer_id="author", skills=both, as_role="compliance"
        )
    with pytest.raises(Refused, match="does not hold"):
        domain.approve(
            state, proposal_id="p1", reviewer_id="x", skills=("prompt_owner",), as_role="compliance"
        )
    with pytest.raises(Refused, match="complete"):
        domain.approve(
            state, proposal_id="p1", reviewer_id="y", skills=both, as_role="prompt_owner"
        )
    with pytest.raises(Refused, match="not asked for"):
        domain.approve(state, proposal_id="p1", reviewer_id="z", skills=("legal",), as_role="legal")


def test_a_policy_needs_two_approvals():
    with pytest.raises(ValueError, match="at least two"):
        ApprovalPolicy(required={"compliance": 1})
    legal = ApprovalPolicy(required={"prompt_owner": 1, "compliance": 1, "legal": 1})
    assert sum(legal.required.values()) == 3


def test_new_version_promotion_rejection_and_supersession():
    state, _ = _created()
    state, _ = _approve(state, "olga", "prompt_owner")
    state, _ = _approve(state, "carl", "compliance")
    with pytest.raises(Refused, match="identical to version 1"):
        domain.propose(state, content=content(), actor="author", proposal_id="p2")
    state = _run(
        state,
        domain.propose(
            state, content=content(task="B {{ question }}"), actor="author", proposal_id="p2"
        ),
    )
    state = _run(
        state,
        domain.propose(
            state, content=content(task="C {{ question }}"), actor="author", proposal_id="p3"
        ),
    )
    assert sorted(state.versions) == ["1", "2", "3"] and state.labels["candidate"] == "3"
    assert state.proposals["p2"].base_version == "1"
    state = _run(
        state,
        domain.reject(
            state, proposal_id="p3", reviewer_id="carl", skills=("compliance",), reason="tone"
        ),
    )
    assert state.proposals["p3"].status == "rejected" and "candidate" not in state.labels
    with pytest.raises(Refused, match="needs one of the roles"):
        domain.reject(state, proposal_id="p2", reviewer_id="eve", skills=(), reason="no")
    state, _ = _approve(state, "olga", "prompt_owner", proposal_id="p2")
    state, _ = _approve(state, "carl", "compliance", proposal_id="p2")
    assert state.labels == {"production": "2"}
    with pytest.raises(Refused, match="is applied"):
        _approve(state, "z", "prompt_owner", proposal_id="p2")


def test_experiment_is_reviewed_and_promotion_ends_it():
    state, _ = _created()
    state, _ = _approve(state, "olga", "prompt_owner")
    state, _ = _approve(state, "carl", "compliance")
    state = _run(
        state,
        domain.propose(
            state, content=content(task="B {{ question }}"), actor="author", proposal_id="p2"
        ),
    )
    state = _run(
        state,
        domain.propose_experiment(
            state, version="2", share=0.2, actor="author", proposal_id="e1", experiment_id="ab-e1"
        ),
    )
    assert state.experiment is None  # not before its review
    state, _ = _approve(state, "olga", "prompt_owner", proposal_id="e1")
    state, _ = _approve(state, "carl", "compliance", proposal_id="e1")
    assert state.experiment.split == {"1": 0.8, "2": 0.2}
    with pytest.raises(Refused, match="is running"):
        domain.propose_experiment(
            state, version="2", share=0.5, actor="author", proposal_id="e2", experiment_id="ab-e2"
        )
    state = _run(
        state,
        domain.propose_promotion(
            state, version="2", actor="author", proposal_id="w", reason="winner"
        ),
    )
    state, _ = _approve(state, "olga", "prompt_owner", proposal_id="w")
    state, _ = _approve(state, "carl", "compliance", proposal_id="w")
    assert state.labels["production"] == "2" and state.experiment is None
    assert state.proposals["p2"].status == "superseded"


def test_stop_experiment():
    state, _ = _created()
    with pytest.raises(Refused, match="no experiment"):
        domain.stop_experiment(state, actor="a", reason="")


def test_fold_is_idempotent_and_ignores_orphans():
    state, events = _created()
    state2, more = _approve(state, "olga", "prompt_owner")
    state3, last = _approve(state2, "carl", "compliance")
    history = events + more + last
    assert fold(history)["support"] == state3
    assert fold(history + history)["support"] == state3  # redelivery changes nothing
    assert fold(history[1:]) == {}  # a template whose creation was never seen
