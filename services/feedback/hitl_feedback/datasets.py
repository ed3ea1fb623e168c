"""Fine-tuning datasets from human corrections, in the formats common tools read.

SFT records are chat transcripts (``{"messages": [{"role": "user", ...},
{"role": "assistant", ...}]}``, as read by TRL's SFTTrainer, OpenAI fine-tuning and
axolotl's chat template). Preference records are ``{"prompt", "chosen", "rejected"}``
(TRL's DPOTrainer): chosen is the human-corrected text, rejected the model's original.
The train/validation split hashes the item id, so an item never changes sides between
exports and never leaks across them.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hitl_feedback.annotations import Annotation
from hitl_feedback.metrics import settled

Kind = Literal["sft", "preference"]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)


class SFTRecord(BaseModel):
    """One supervised example: the prompt, then the output a human stands behind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    messages: list[ChatMessage] = Field(min_length=2)

    @model_validator(mode="after")
    def _ends_with_the_answer(self) -> SFTRecord:
        if self.messages[-1].role != "assistant":
            raise ValueError("the last message must be the assistant's answer")
        if not any(m.role == "user" for m in self.messages[:-1]):
            raise ValueError("an SFT record needs a user turn before the answer")
        return self


class PreferenceRecord(BaseModel):
    """One preference pair: chosen = human-corrected, rejected = original model output."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(min_length=1)
    chosen: str = Field(min_length=1)
    rejected: str = Field(min_length=1)

    @model_validator(mode="after")
    def _differ(self) -> PreferenceRecord:
        if self.chosen == self.rejected:
            raise ValueError("chosen and rejected are identical")
        return self


SCHEMAS: dict[str, type[BaseModel]] = {"sft": SFTRecord, "preference": PreferenceRecord}


def is_validation(item_id: str, val_fraction: float) -> bool:
    """Deterministic split: the item's hash decides, the same on every run and machine."""
    digest = hashlib.sha256(item_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < val_fraction


def _record(annotation: Annotation, kind: Kind, include_approved: bool) -> BaseModel | str:
    """The record for one settled item, or the reason it yields none."""
    if not annotation.prompt:
        return "no_prompt"
    if kind == "preference":
        if annotation.verdict != "edit" or not annotation.modified_text:
            return "not_an_edit"
        if annotation.modified_text == annotation.original_text:
            return "unchanged"
        return PreferenceRecord(
            prompt=annotation.prompt,
            chosen=annotation.modified_text,
            rejected=annotation.original_text,
        )
    if annotation.verdict == "approve" and not include_approved:
        return "approved"
    answer = annotation.corrected_text
    if not answer:
        return "no_corrected_text"
    return SFTRecord(
        messages=[
            ChatMessage(role="user", content=annotation.prompt),
            ChatMessage(role="assistant", content=answer),
        ]
    )


def build(
    annotations: Iterable[Annotation],
    kind: Kind,
    *,
    since: datetime | None = None,
    app: str | None = None,
    label: str | None = None,
    include_approved: bool = False,
) -> tuple[list[tuple[str, BaseModel]], dict[str, int]]:
    """(item id, record) per usable settled item, and counts of what was left out and why."""
    chosen = [
        a
        for a in settled(annotations)
        if (since is None or a.occurred_at >= since)
        and (app is None or a.app == app)
        and (label is None or label in a.labels)
    ]
    records: list[tuple[str, BaseModel]] = []
    skipped: Counter[str] = Counter()
    for annotation in chosen:
        made = _record(annotation, kind, include_approved)
        if isinstance(made, str):
            skipped[made] += 1
        else:
            records.append((annotation.item_id, made))
    return records, dict(sorted(skipped.items()))


def validation_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.val{out.suffix or '.jsonl'}")


def write_split(
    records: Sequence[tuple[str, BaseModel]], out: Path, val_fraction: float
) -> dict[str, int | str]:
    """Write train to ``out`` and validation beside it (``name.val.jsonl``)."""
    train = [r for item, r in records if not is_validation(item, val_fraction)]
    val = [r for item, r in records if is_validation(item, val_fraction)]
    out.parent.mkdir(parents=True, exist_ok=True)
    _write(out, train)
    summary: dict[str, int | str] = {"train": len(train), "train_file": str(out)}
    if val_fraction > 0:
        _write(validation_path(out), val)
        summary.update(validation=len(val), validation_file=str(validation_path(out)))
    return summary


def _write(path: Path, records: Sequence[BaseModel]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(record.model_dump_json() + "\n")


def read_jsonl(path: Path, kind: Kind) -> list[BaseModel]:
    """Load and validate a dataset file against its documented record schema."""
    schema = SCHEMAS[kind]
    with path.open(encoding="utf-8") as handle:
        return [schema.model_validate(json.loads(line)) for line in handle if line.strip()]
