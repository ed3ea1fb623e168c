"""Similarity to known edge cases from the knowledge base the feedback service grows.

Texts are compared by word 3-gram shingles (hashed to ints) and Jaccard similarity.
An inverted index over the rarer shingles picks a few candidate cases, and only those
are scored exactly, so the cost per item grows with the item's length, not with the
size of the knowledge base. The index is built by the wiring from the Redis hash and
cached briefly; this module stays pure.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hitl_prescreen.detectors.base import ScreenContext, make_flag
from hitl_shared.events import Flag, LLMOutput

SHINGLE = 3  # words
MAX_CHARS = 4000  # long outputs are compared on their opening part
COMMON_POSTING = 16  # shingles shared by more cases than this do not pick candidates
CANDIDATES = 16
SAMPLE_ABOVE = 64  # shingles; shorter texts look up every shingle
_WORD = re.compile(r"\w+")


class EdgeCaseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    threshold: float = Field(default=0.5, gt=0, le=1)
    cache_ttl_s: float = Field(default=5.0, ge=0)
    max_matches: int = Field(default=3, ge=1)


def shingles(text: str) -> frozenset[int]:
    """Hashed word n-grams of the text (case, punctuation and spacing ignored)."""
    words = _WORD.findall(text[:MAX_CHARS].lower())
    if len(words) <= SHINGLE:
        return frozenset({hash(tuple(words))}) if words else frozenset()
    return frozenset(map(hash, zip(*(words[i:] for i in range(SHINGLE)), strict=False)))


@dataclass(frozen=True)
class EdgeCase:
    case_id: str
    text: str
    labels: tuple[str, ...] = ()
    note: str | None = None

    @classmethod
    def from_json(cls, case_id: str, raw: str | bytes) -> EdgeCase | None:
        """A knowledge-base entry, or None when it is not usable JSON with a text."""
        try:
            value: Any = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(value, dict) or not isinstance(value.get("text"), str):
            return None
        labels = value.get("labels") or ()
        note = value.get("note")
        return cls(
            case_id=str(value.get("case_id") or case_id),
            text=value["text"],
            labels=tuple(str(x) for x in labels) if isinstance(labels, list | tuple) else (),
            note=note if isinstance(note, str) else None,
        )


@dataclass
class EdgeCaseIndex:
    """Inverted index from shingle to the cases that contain it."""

    cases: dict[str, EdgeCase] = field(default_factory=dict)
    grams: dict[str, frozenset[int]] = field(default_factory=dict)
    postings: dict[int, list[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, cases: list[EdgeCase]) -> EdgeCaseIndex:
        index = cls()
        for case in cases:
            grams = shingles(case.text)
            if not grams:
                continue
            index.cases[case.case_id] = case
            index.grams[case.case_id] = grams
            for gram in grams:
                index.postings.setdefault(gram, []).append(case.case_id)
        return index

    def similar(self, text: str, threshold: float) -> list[tuple[EdgeCase, float]]:
        """Cases whose Jaccard similarity to ``text`` reaches ``threshold``, best first."""
        grams = shingles(text)
        if not grams or not self.cases:
            return []
        shared: Counter[str] = Counter()
        postings = self.postings
        # Long texts pick candidates from a fixed eighth of their shingles (the same
        # choice for every text, so near-duplicates share it); scores use all of them.
        sampled = len(grams) > SAMPLE_ABOVE
        for gram in grams:
            if sampled and gram & 7:
                continue
            ids = postings.get(gram)
            if ids and len(ids) <= COMMON_POSTING:
                shared.update(ids)
        found = []
        for case_id, _ in shared.most_common(CANDIDATES):
            theirs = self.grams[case_id]
            common = len(grams & theirs)
            score = common / (len(grams) + len(theirs) - common)
            if score >= threshold:
                found.append((self.cases[case_id], score))
        return sorted(found, key=lambda pair: pair[1], reverse=True)


class EdgeCaseDetector:
    name = "edge_cases"

    def __init__(self, config: EdgeCaseConfig | None = None) -> None:
        self.config = config or EdgeCaseConfig()

    def detect(self, output: LLMOutput, context: ScreenContext) -> list[Flag]:
        index = context.edge_cases
        if index is None or not index.cases:
            return []
        flags = []
        for case, score in index.similar(output.output_text, self.config.threshold)[
            : self.config.max_matches
        ]:
            labels = ", ".join(case.labels) or "unlabelled"
            flags.append(
                make_flag(
                    self.name,
                    "known_edge_case",
                    "medium",
                    score,
                    0,
                    len(output.output_text),
                    f"Resembles known edge case {case.case_id[:40]} ({labels}; "
                    f"similarity {score:.2f})",
                )
            )
        return flags
