"""The checked-in demo sample set (demo/sample_outputs.jsonl) and its generator."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hitl_shared.events import LLMOutput

REPO_ROOT = Path(__file__).resolve().parents[2]
GENERATOR_PATH = REPO_ROOT / "demo" / "generate_samples.py"
SAMPLES_PATH = REPO_ROOT / "demo" / "sample_outputs.jsonl"

KIND_MINIMUMS = {
    "clean": 80,
    "pii_leak": 25,
    "secret_leak": 25,
    "toxic": 25,
    "unsupported_claim": 25,
    "prompt_injection_echo": 25,
    "low_confidence": 25,
}


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_generate_samples", GENERATOR_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return _load_generator()


@pytest.fixture(scope="module")
def raw_lines() -> list[str]:
    return SAMPLES_PATH.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def items(raw_lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in raw_lines]


def _of_kind(items: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [item for item in items if item["metadata"]["demo_kind"] == kind]


def _luhn_valid(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return len(digits) > 1 and total % 10 == 0


@pytest.mark.unit
def test_every_line_validates_as_llm_output(raw_lines: list[str]) -> None:
    for number, line in enumerate(raw_lines, start=1):
        assert line.strip(), f"line {number} is blank"
        output = LLMOutput.model_validate_json(line)
        assert output.metadata["demo_kind"] in KIND_MINIMUMS, f"line {number}"


@pytest.mark.unit
def test_item_ids_are_unique_and_numbered(items: list[dict[str, Any]]) -> None:
    ids = [item["item_id"] for item in items]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"demo-\d{4}", item_id) for item_id in ids)


@pytest.mark.unit
def test_set_is_large_and_varied(items: list[dict[str, Any]]) -> None:
    assert len(items) >= 240
    apps = Counter(item["app"] for item in items)
    assert len(apps) >= 5
    for app in apps:
        use_cases = {item["use_case"] for item in items if item["app"] == app}
        categories = {item["content_category"] for item in items if item["app"] == app}
        assert len(use_cases) >= 2, app
        assert len(categories) >= 3, app
    texts = [item["output_text"] for item in items]
    assert len(set(texts)) == len(texts), "output texts must not repeat"
    assert {"minor", "patient"} <= {item["user_segment"] for item in items}
    assert {"elevated", "high"} <= {item["user_vulnerability"] for item in items}
    assert len({item["language"] for item in items}) >= 3
    assert any(not text.isascii() for text in texts)
    assert any(len(text.encode()) >= 1000 for text in texts)
    confidences = [item["confidence"] for item in items if item["confidence"] is not None]
    assert min(confidences) < 0.2 and max(confidences) > 0.95


@pytest.mark.unit
def test_every_kind_meets_its_minimum(items: list[dict[str, Any]]) -> None:
    kinds = Counter(item["metadata"]["demo_kind"] for item in items)
    assert set(kinds) == set(KIND_MINIMUMS)
    for kind, minimum in KIND_MINIMUMS.items():
        assert kinds[kind] >= minimum, f"{kind}: {kinds[kind]} < {minimum}"


@pytest.mark.unit
def test_file_stays_small() -> None:
    assert SAMPLES_PATH.stat().st_size < 1_500_000


@pytest.mark.unit
def test_generator_is_deterministic(generator: ModuleType) -> None:
    first = generator.generate()
    second = generator.generate()
    assert first == second
    assert generator.to_jsonl(first) == generator.to_jsonl(second)


@pytest.mark.unit
def test_checked_in_file_matches_generator(generator: ModuleType) -> None:
    expected = generator.to_jsonl(generator.generate())
    assert SAMPLES_PATH.read_text(encoding="utf-8") == expected, (
        "demo/sample_outputs.jsonl is stale: run `PYTHONPATH=shared python "
        "demo/generate_samples.py`"
    )


@pytest.mark.unit
def test_pii_items_carry_valid_pii(items: list[dict[str, Any]]) -> None:
    pii = _of_kind(items, "pii_leak")
    seen_types: Counter[str] = Counter()
    brands, countries = set(), set()
    for item in pii:
        meta = item["metadata"]
        for pii_type in meta["pii_types"].split(","):
            seen_types[pii_type] += 1
            assert meta[f"pii_{pii_type}"] in item["output_text"], item["item_id"]
        if "pii_card" in meta:
            assert _luhn_valid(meta["pii_card"]), item["item_id"]
            brands.add(meta["card_brand"])
        if "pii_iban" in meta:
            compact = meta["pii_iban"].replace(" ", "")
            rearranged = compact[4:] + compact[:4]
            assert int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1
        if "pii_ssn" in meta:
            assert re.fullmatch(r"(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}", meta["pii_ssn"])
        if "phone_country" in meta:
            countries.add(meta["phone_country"])
    assert set(seen_types) == {"email", "phone", "card", "iban", "ssn", "ip"}
    assert len(brands) >= 4
    assert len(countries) >= 3


@pytest.mark.unit
def test_clean_lookalikes_fail_luhn(items: list[dict[str, Any]]) -> None:
    clean = _of_kind(items, "clean")
    lookalikes = [item for item in clean if "lookalike" in item["metadata"]]
    assert len(lookalikes) >= 20
    numbers = [
        item["metadata"]["lookalike"]
        for item in lookalikes
        if item["metadata"]["negative_type"] in ("order_number", "transaction_id")
    ]
    assert len(numbers) >= 5
    for number in numbers:
        assert len(re.sub(r"\D", "", number)) == 16
        assert not _luhn_valid(number), number
    for item in lookalikes:
        assert item["metadata"]["lookalike"] in item["output_text"]
        assert any(item["metadata"]["lookalike"] in doc["text"] for doc in item["context"])


@pytest.mark.unit
def test_secret_items_carry_their_secret(items: list[dict[str, Any]]) -> None:
    secrets = _of_kind(items, "secret_leak")
    types = Counter(item["metadata"]["secret_types"] for item in secrets)
    assert set(types) == {"aws", "openai", "github", "jwt", "pem", "password"}
    patterns = {
        "aws": r"AKIA[A-Z2-7]{16}",
        "openai": r"sk-(?:proj-)?[A-Za-z0-9]{48}",
        "github": r"ghp_[A-Za-z0-9]{36}",
        "jwt": r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+",
        "pem": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    }
    for item in secrets:
        meta = item["metadata"]
        assert meta["secret_value"] in item["output_text"], item["item_id"]
        if meta["secret_types"] in patterns:
            assert re.search(patterns[meta["secret_types"]], item["output_text"])


@pytest.mark.unit
def test_unsupported_claims_are_absent_from_context(items: list[dict[str, Any]]) -> None:
    for item in _of_kind(items, "unsupported_claim"):
        assert item["context"], item["item_id"]
        context = " ".join(doc["text"] for doc in item["context"])
        for claim in item["metadata"]["unsupported_claims"].split(" | "):
            assert claim in item["output_text"], (item["item_id"], claim)
            assert claim not in context, (item["item_id"], claim)


@pytest.mark.unit
def test_injection_items_echo_the_injection(items: list[dict[str, Any]]) -> None:
    injected = _of_kind(items, "prompt_injection_echo")
    assert {item["metadata"]["injection_vector"] for item in injected} == {"prompt", "context"}
    markers = re.compile(
        r"ignor\w* (?:all |my )?previous instructions|system prompt|everything above|"
        r"PWNED|DAN|Developer Mode|JAILBREAK|disregard|verify your account",
        re.IGNORECASE,
    )
    for item in injected:
        meta = item["metadata"]
        assert markers.search(item["output_text"]), item["item_id"]
        if meta["injection_vector"] == "context":
            doc = next(d for d in item["context"] if d["doc_id"] == meta["injected_doc_id"])
            assert "instructions" in doc["text"].lower()
        else:
            assert re.search(r"ignore|\bDAN\b|override|repeat everything", item["prompt"], re.I)


@pytest.mark.unit
def test_low_confidence_items_are_low_or_hedged(items: list[dict[str, Any]]) -> None:
    hedges = re.compile(
        r"not (?:entirely|completely) sure|might be wrong|guess|if i remember|hard to say|"
        r"not confident|couldn't confirm|double-check|grain of salt|mixing this up",
        re.IGNORECASE,
    )
    for item in _of_kind(items, "low_confidence"):
        low = item["confidence"] is not None and item["confidence"] < 0.4
        assert low or hedges.search(item["output_text"]), item["item_id"]


@pytest.mark.unit
def test_other_kinds_keep_reasonable_confidence(items: list[dict[str, Any]]) -> None:
    for item in items:
        if item["metadata"]["demo_kind"] != "low_confidence" and item["confidence"] is not None:
            assert item["confidence"] >= 0.5, item["item_id"]
