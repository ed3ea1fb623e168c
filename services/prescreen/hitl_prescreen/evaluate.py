"""Precision and recall of each detector on the labelled evaluation set.

``python -m hitl_prescreen.evaluate`` prints one row per detector (and per PII / secret
category). A flag is a true positive when it overlaps an expected span of the same
detector (and, for PII and secrets, the same category); an expected span is found when
any such flag overlaps it. Items without expectations for a detector are its negatives,
so every flag there is a false positive.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from hitl_prescreen.config import PrescreenConfig, load_config
from hitl_prescreen.detectors.base import EMPTY_CONTEXT
from hitl_shared.events import Flag, LLMOutput

EVALUATED = ("pii", "secrets", "toxicity", "injection", "claims", "confidence")
CATEGORY_AWARE = ("pii", "secrets")


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    found: int = 0
    expected: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0


def load_items(path: Path | None = None) -> list[dict[str, Any]]:
    if path is None:
        text = resources.files("hitl_prescreen").joinpath("data/eval_set.jsonl").read_text("utf-8")
    else:
        text = path.read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def as_output(item: dict[str, Any]) -> LLMOutput:
    return LLMOutput(
        item_id=item["id"],
        app=item.get("app", "eval"),
        use_case="eval",
        prompt=item.get("prompt", "question"),
        model="eval-model",
        output_text=item["text"],
        context=item.get("context", ()),
        confidence=item.get("confidence"),
        token_logprobs=item.get("token_logprobs"),
        language=item.get("language", "en"),
    )


def _matches(flag: Flag, expected: dict[str, Any]) -> bool:
    if flag.detector != expected["detector"]:
        return False
    if flag.detector in CATEGORY_AWARE and flag.category != expected["category"]:
        return False
    if flag.start == flag.end == expected["start"] == expected["end"]:
        return True
    return bool(flag.start < expected["end"] and expected["start"] < flag.end)


def evaluate(
    items: list[dict[str, Any]], config: PrescreenConfig | None = None
) -> tuple[dict[str, Tally], list[str]]:
    """Tallies per detector and per ``detector/category``, and a line per mistake."""
    detectors = (config or load_config()).build()
    tallies: dict[str, Tally] = defaultdict(Tally)
    mistakes: list[str] = []
    for item in items:
        output = as_output(item)
        flags = [
            flag
            for name in EVALUATED
            if name in detectors
            for flag in detectors[name].detect(output, EMPTY_CONTEXT)
        ]
        expected = item["expected"]
        for flag in flags:
            keys = [flag.detector] + (
                [f"{flag.detector}/{flag.category}"] if flag.detector in CATEGORY_AWARE else []
            )
            hit = any(_matches(flag, e) for e in expected)
            for key in keys:
                if hit:
                    tallies[key].tp += 1
                else:
                    tallies[key].fp += 1
            if not hit:
                mistakes.append(
                    f"FP {item['id']} {flag.detector}/{flag.category}: "
                    f"{item['text'][flag.start : flag.end][:80]!r}"
                )
        for e in expected:
            keys = [e["detector"]] + (
                [f"{e['detector']}/{e['category']}"] if e["detector"] in CATEGORY_AWARE else []
            )
            found = any(_matches(flag, e) for flag in flags)
            for key in keys:
                tallies[key].expected += 1
                tallies[key].found += int(found)
            if not found:
                mistakes.append(
                    f"FN {item['id']} {e['detector']}/{e['category']}: "
                    f"{item['text'][e['start'] : e['end']][:80]!r}"
                )
    return dict(tallies), mistakes


def table(tallies: dict[str, Tally], n_items: int) -> str:
    lines = [
        f"Prescreen evaluation on {n_items} labelled items",
        f"{'detector':<28}{'expected':>9}{'found':>7}{'flags':>7}{'FP':>5}"
        f"{'precision':>11}{'recall':>8}",
    ]
    for key in sorted(tallies, key=lambda k: (k.split("/")[0] not in EVALUATED, k)):
        t = tallies[key]
        lines.append(
            f"{key:<28}{t.expected:>9}{t.found:>7}{t.tp + t.fp:>7}{t.fp:>5}"
            f"{t.precision:>11.3f}{t.recall:>8.3f}"
        )
    return "\n".join(lines)


KIND_DETECTOR = {
    "pii_leak": "pii",
    "secret_leak": "secrets",
    "toxic": "toxicity",
    "unsupported_claim": "claims",
    "prompt_injection_echo": "injection",
    "low_confidence": "confidence",
}


def item_level(path: Path, config: PrescreenConfig | None = None) -> str:
    """Item-level precision/recall on a file of LLMOutput events labelled by kind.

    For sets labelled per item (``metadata.demo_kind``) rather than per span: an item
    counts as flagged by a detector when it raised any flag.
    """
    detectors = (config or load_config()).build()
    counts: dict[str, Tally] = defaultdict(Tally)
    for line in path.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        output = LLMOutput.model_validate_json(line)
        kind = str(output.metadata.get("demo_kind", ""))
        for name in EVALUATED:
            flagged = bool(detectors[name].detect(output, EMPTY_CONTEXT))
            positive = KIND_DETECTOR.get(kind) == name
            tally = counts[name]
            tally.expected += int(positive)
            tally.found += int(positive and flagged)
            tally.tp += int(positive and flagged)
            tally.fp += int(flagged and not positive)
    lines = [f"Item-level results on {path.name}", f"{'detector':<14}{'items':>7}{'found':>7}"
             f"{'flagged':>9}{'precision':>11}{'recall':>8}"]  # fmt: skip
    for name in EVALUATED:
        t = counts[name]
        lines.append(
            f"{name:<14}{t.expected:>7}{t.found:>7}{t.tp + t.fp:>9}"
            f"{t.precision:>11.3f}{t.recall:>8.3f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="JSONL set (default: packaged)")
    parser.add_argument("--mistakes", action="store_true", help="list every FP and FN")
    parser.add_argument(
        "--item-level",
        type=Path,
        default=None,
        help="also score a JSONL of LLMOutput events labelled by metadata.demo_kind",
    )
    args = parser.parse_args()
    items = load_items(args.data)
    tallies, mistakes = evaluate(items)
    print(table(tallies, len(items)))
    if args.mistakes:
        print("\n".join(mistakes) or "no mistakes")
    if args.item_level is not None:
        print()
        print(item_level(args.item_level))


if __name__ == "__main__":
    main()
