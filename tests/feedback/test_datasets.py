"""Dataset records: schemas, filters and the deterministic split."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from hitl_feedback.annotations import annotate
from hitl_feedback.datasets import (
    PreferenceRecord,
    SFTRecord,
    build,
    is_validation,
    read_jsonl,
    validation_path,
    write_split,
)
from tests.feedback.sample import decisions

pytestmark = pytest.mark.unit


@pytest.fixture
def annotations():
    return [annotate(d, prompt=f"Question about {d.item_id}?") for d in decisions()]


def test_preference_pairs_are_the_settled_edits(annotations):
    records, skipped = build(annotations, "preference")
    assert [item for item, _ in records] == ["i2", "i6", "i7"]
    pair = records[0][1]
    assert isinstance(pair, PreferenceRecord)
    assert pair.prompt == "Question about i2?"
    assert pair.chosen == "Corrected answer for i2." and pair.rejected == "Original answer for i2."
    assert skipped == {"not_an_edit": 5}


def test_sft_records_and_filters(annotations):
    records, skipped = build(annotations, "sft")
    assert [item for item, _ in records] == ["i2", "i6", "i7"]
    first = records[0][1].model_dump()
    assert first == {
        "messages": [
            {"role": "user", "content": "Question about i2?"},
            {"role": "assistant", "content": "Corrected answer for i2."},
        ]
    }
    assert skipped == {"approved": 3, "no_corrected_text": 2}
    with_approved, _ = build(annotations, "sft", include_approved=True)
    assert len(with_approved) == 6
    by_label, _ = build(annotations, "sft", label="style")
    assert [item for item, _ in by_label] == ["i6"]
    late, _ = build(annotations, "sft", since=datetime(2026, 1, 6, tzinfo=UTC))
    assert [item for item, _ in late] == ["i6", "i7"]
    assert build(annotations, "sft", app="other")[0] == []


def test_items_without_a_prompt_are_skipped():
    records, skipped = build([annotate(d) for d in decisions()], "preference")
    assert records == [] and skipped["no_prompt"] == 8


def test_split_is_deterministic_and_near_the_fraction():
    ids = [f"item-{n}" for n in range(5000)]
    first = [is_validation(i, 0.1) for i in ids]
    assert first == [is_validation(i, 0.1) for i in ids]
    assert 0.08 < sum(first) / len(ids) < 0.12
    assert not any(is_validation(i, 0.0) for i in ids)


def test_schemas_reject_malformed_records():
    with pytest.raises(ValidationError):
        PreferenceRecord(prompt="p", chosen="same", rejected="same")
    with pytest.raises(ValidationError):
        SFTRecord(
            messages=[{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]
        )
    with pytest.raises(ValidationError):
        SFTRecord.model_validate({"messages": [], "extra": 1})


def test_written_files_round_trip(annotations, tmp_path):
    records, _ = build(annotations, "preference")
    out = tmp_path / "prefs.jsonl"
    summary = write_split(records, out, 0.5)
    assert validation_path(out).name == "prefs.val.jsonl"
    loaded = read_jsonl(out, "preference") + read_jsonl(validation_path(out), "preference")
    assert summary["train"] + summary["validation"] == 3 == len(loaded)
    assert {r.chosen for r in loaded} == {r.chosen for _, r in records}
