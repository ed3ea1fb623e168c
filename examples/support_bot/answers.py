"""Canned "model" answers: the support-bot lines of the demo set stand in for an LLM."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hitl_shared.events import LLMOutput

DEMO_FILE = Path(__file__).resolve().parents[2] / "demo" / "sample_outputs.jsonl"
APP = "support-bot"


@dataclass(frozen=True)
class Turn:
    """One user question and the output the (canned) model produced for it."""

    use_case: str
    question: str
    output: LLMOutput


def load(run_id: str, path: Path = DEMO_FILE) -> dict[str, list[Turn]]:
    """Support-bot outputs by use case; item ids get ``run_id`` so reruns stay distinct."""
    by_case: dict[str, list[Turn]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        raw: dict[str, Any] = json.loads(line)
        if raw.get("app") != APP:
            continue
        raw["item_id"] = f"{raw['item_id']}-{run_id}"
        output = LLMOutput.model_validate(raw)
        by_case.setdefault(output.use_case, []).append(Turn(output.use_case, output.prompt, output))
    return by_case


def conversation(by_case: dict[str, list[Turn]], turns: int) -> list[Turn]:
    """Questions alternating between the use cases, in a fixed order."""
    cases = sorted(by_case)
    script: list[Turn] = []
    for n in range(turns):
        pool = by_case[cases[n % len(cases)]]
        script.append(pool[(n // len(cases)) % len(pool)])
    return script
