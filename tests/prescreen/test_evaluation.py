"""The shipped evaluation set meets the detection targets, and the command prints them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hitl_prescreen.evaluate import evaluate, load_items

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def items():
    return load_items()


@pytest.fixture(scope="module")
def tallies(items):
    return evaluate(items)[0]


def test_the_set_is_large_and_has_realistic_negatives(items):
    assert len(items) >= 300
    kinds = {item["kind"] for item in items}
    assert {"pii_negative", "secrets_negative", "hard", "hard_negative", "clean"} <= kinds
    negatives = [i for i in items if not i["expected"]]
    assert len(negatives) >= 100


def test_pii_meets_the_product_targets(tallies):
    pii = tallies["pii"]
    assert pii.expected >= 150
    assert pii.recall >= 0.995 and pii.precision >= 0.995  # MISSION: >= 0.995 on clean text
    for category in (
        "email",
        "phone",
        "payment_card",
        "iban",
        "us_ssn",
        "national_id",
        "ip_address",
    ):
        t = tallies[f"pii/{category}"]
        assert t.expected >= 15 and t.recall >= 0.95 and t.precision >= 0.95, category


def test_varied_formats_written_by_hand_reach_the_recall_target(items):
    hard = [i for i in items if i["kind"] in ("hard", "hard_negative")]
    tallies, _ = evaluate(hard)
    assert tallies["pii"].expected >= 20
    assert tallies["pii"].recall >= 0.95 and tallies["pii"].precision >= 0.9


def test_secrets_and_the_other_detectors(tallies):
    assert tallies["secrets"].recall >= 0.95 and tallies["secrets"].precision >= 0.95
    assert tallies["injection"].recall >= 0.9 and tallies["injection"].precision >= 0.9
    assert tallies["confidence"].recall >= 0.95 and tallies["confidence"].precision >= 0.95
    assert tallies["toxicity"].recall >= 0.7 and tallies["toxicity"].precision >= 0.9
    assert tallies["claims"].recall >= 0.9 and tallies["claims"].precision >= 0.7


def test_no_look_alike_is_flagged_as_pii_or_secret(items):
    looks = [i for i in items if i["kind"] in ("pii_negative", "secrets_negative")]
    _, mistakes = evaluate(looks)
    assert [m for m in mistakes if " pii/" in m or " secrets/" in m] == []


def test_the_evaluation_command_prints_a_row_per_detector():
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'shared'}{os.pathsep}{ROOT / 'services/prescreen'}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "hitl_prescreen.evaluate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    for name in ("pii", "secrets", "toxicity", "injection", "claims", "confidence"):
        assert f"\n{name} " in done.stdout
    assert "precision" in done.stdout and "recall" in done.stdout


def test_the_shipped_set_is_what_its_generator_builds(items):
    """The JSONL is reviewed as code: regenerating it must give the same items."""
    import importlib.util

    path = ROOT / "services" / "prescreen" / "tools" / "make_eval_set.py"
    spec = importlib.util.spec_from_file_location("make_eval_set", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == items
