"""Template rendering, validation, diffs and A/B assignment: pure logic."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from hitl_shared.prompts import (
    PROMPT_EVENTS,
    Experiment,
    Parts,
    PromptError,
    Serving,
    TemplateContent,
    Variable,
    VersionAdded,
    assign,
    diff,
    new_version,
    render,
)
from tests.prompts.helpers import content

pytestmark = pytest.mark.unit


def test_render_lays_out_every_part_and_fills_variables():
    version = new_version("support", "1", content(), "ann")
    rendered = render(version, {"question": "Where is my parcel?", "tier": "pro"})
    assert (rendered.template_id, rendered.version) == ("support", "1")
    text = rendered.text
    for heading in (
        "## Role",
        "## Context",
        "## Task",
        "## Constraints",
        "## Required disclosures",
        "## Prohibited content categories",
    ):
        assert heading in text
    assert "Where is my parcel?" in text and "Customer tier: pro" in text
    assert "- Never promise refunds." in text


def test_values_stay_inert_and_are_validated():
    version = new_version("support", "1", content(), "ann")
    sneaky = render(version, {"question": "{{ tier }} {0.__class__} <script>"})
    assert "{{ tier }} {0.__class__} <script>" in sneaky.text  # substituted once, verbatim
    assert "Customer tier: free" in sneaky.text  # the default
    with pytest.raises(PromptError, match="missing required variable 'question'"):
        render(version, {})
    with pytest.raises(PromptError, match="unknown variables"):
        render(version, {"question": "q", "other": "x"})
    with pytest.raises(PromptError, match="one of"):
        render(version, {"question": "q", "tier": "gold"})
    with pytest.raises(PromptError, match="longer than 500"):
        render(version, {"question": "x" * 501})
    with pytest.raises(PromptError, match="must be a string"):
        render(version, {"question": 3})


def test_typed_variables():
    typed = TemplateContent(
        parts=Parts(role="r", task="n={{ n }} x={{ x }} ok={{ ok }}"),
        variables=(
            Variable(name="n", type="int"),
            Variable(name="x", type="float"),
            Variable(name="ok", type="bool"),
        ),
    )
    version = new_version("t", "1", typed, "ann")
    assert "n=3 x=0.5 ok=yes" in render(version, {"n": 3, "x": 0.5, "ok": True}).text
    with pytest.raises(PromptError, match="must be an int"):
        render(version, {"n": True, "x": 1.0, "ok": False})


def test_undeclared_placeholders_and_bad_variables_are_refused():
    with pytest.raises(ValidationError, match="placeholders without a declared variable"):
        TemplateContent(parts=Parts(role="r", task="{{ nope }}"))
    with pytest.raises(ValidationError, match="needs choices"):
        Variable(name="e", type="enum")


def test_identical_content_has_identical_hash_and_versions_are_immutable():
    assert content().content_hash() == content().content_hash()
    assert content().content_hash() != content(task="Other {{ question }}").content_hash()
    version = new_version("support", "1", content(), "ann")
    with pytest.raises(ValidationError):
        version.version = "2"  # type: ignore[misc]


def test_diff_is_a_unified_diff_of_the_parts():
    old = new_version("support", "1", content(), "ann")
    new = new_version("support", "2", content(task="Answer briefly: {{ question }}"), "ann")
    text = diff(old, new)
    assert text.startswith("--- support@1\n+++ support@2")
    assert "-Answer the customer's question: {{ question }}" in text
    assert "+Answer briefly: {{ question }}" in text
    assert diff(None, new).startswith("--- (none)")


def test_events_round_trip_through_the_adapter():
    event = VersionAdded(
        item_id="prompt:support",
        template_id="support",
        actor="ann",
        version=new_version("support", "1", content(), "ann"),
    )
    assert PROMPT_EVENTS.validate_json(event.to_bytes()) == event


def test_assignment_is_deterministic_and_matches_the_split_within_one_point():
    split = {"1": 0.7, "2": 0.3}
    keys = [f"user-{n}" for n in range(100_000)]
    first = [assign(k, split, "ab-1") for k in keys]
    assert first == [assign(k, split, "ab-1") for k in keys]
    shares = Counter(first)
    assert abs(shares["2"] / len(keys) - 0.3) <= 0.01
    assert abs(shares["1"] / len(keys) - 0.7) <= 0.01
    three = Counter(assign(k, {"1": 0.5, "2": 0.25, "3": 0.25}, "s") for k in keys)
    assert all(
        abs(three[v] / len(keys) - w) <= 0.01 for v, w in (("1", 0.5), ("2", 0.25), ("3", 0.25))
    )
    # another experiment (salt) reshuffles who gets which arm
    other = [assign(k, split, "ab-2") for k in keys[:2000]]
    assert other != first[:2000]


def test_serving_picks_the_arm_or_production():
    v1 = new_version("support", "1", content(), "ann")
    v2 = new_version("support", "2", content(task="B {{ question }}"), "ann")
    experiment = Experiment(experiment_id="ab-1", split={"1": 0.5, "2": 0.5})
    serving = Serving(
        template_id="support", production=v1, experiment=experiment, versions={"1": v1, "2": v2}
    )
    chosen = {serving.version_for(f"k{n}").version for n in range(50)}
    assert chosen == {"1", "2"}
    assert serving.version_for(None).version == "1"
    with pytest.raises(ValidationError, match="sum to 1"):
        Experiment(experiment_id="x", split={"1": 0.5, "2": 0.4})
    with pytest.raises(PromptError, match="no production version"):
        Serving(template_id="t", production=None).version_for("k")
