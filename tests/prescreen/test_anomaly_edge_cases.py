"""Anomaly features and scoring against a baseline; edge-case similarity."""

from __future__ import annotations

import json
import random
import statistics

import pytest

from hitl_prescreen.baseline_store import parse_baseline
from hitl_prescreen.detectors.anomaly import AnomalyDetector, Baseline, features
from hitl_prescreen.detectors.base import ScreenContext
from hitl_prescreen.detectors.edge_cases import EdgeCase, EdgeCaseDetector, EdgeCaseIndex
from hitl_prescreen.edge_case_store import build_index
from tests.prescreen.helpers import run

pytestmark = pytest.mark.unit
_SENTENCE = "the refund will appear on your statement within five business days after scan"
WORDS = _SENTENCE.split()


def _typical(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(25, 40))).capitalize() + "."


def _baseline(n: int = 200) -> Baseline:
    rng = random.Random(7)
    baseline = Baseline()
    for _ in range(n):
        baseline.add(features(_typical(rng)))
    return baseline


def test_welford_matches_the_textbook_mean_and_deviation():
    values = [features(t)["entropy"] for t in ("abc", "aaaa", "hello world", "zzz yy x")]
    baseline = Baseline()
    for text in ("abc", "aaaa", "hello world", "zzz yy x"):
        baseline.add(features(text))
    assert baseline.mean["entropy"] == pytest.approx(statistics.mean(values))
    assert baseline.std("entropy") == pytest.approx(statistics.stdev(values))


def test_typical_items_are_quiet_and_outliers_flagged():
    context = ScreenContext(baseline=_baseline())
    det = AnomalyDetector()
    assert run(det, _typical(random.Random(99)), context) == []
    odd = run(det, "这是一个完全不同的回答\uff0c用的是另一种语言和文字\u3002" * 3, context)
    assert "outlier_non_latin_share" in {f.category for f in odd}
    long = run(det, _typical(random.Random(1)) * 60, context)
    assert "outlier_log_length" in {f.category for f in long}


def test_no_verdict_before_enough_samples():
    assert run(AnomalyDetector(), "x" * 5000, ScreenContext(baseline=_baseline(10))) == []


def test_baseline_parses_from_the_redis_hash_and_the_script_reply():
    as_hash = {b"n": b"3", b"mean:entropy": b"2.5", b"m2:entropy": b"0.5"}
    flat = [b"n", b"3", b"mean:entropy", b"2.5", b"m2:entropy", b"0.5"]
    for raw in (as_hash, flat):
        baseline = parse_baseline(raw)
        assert baseline.count == 3 and baseline.mean["entropy"] == 2.5
        assert baseline.std("entropy") == pytest.approx(0.5)


def test_edge_cases_match_near_duplicates_only():
    index = EdgeCaseIndex.build(
        [
            EdgeCase(
                "c1",
                "Take two tablets of ibuprofen every hour until the pain stops.",
                ("alignment_safety",),
            ),
            EdgeCase("c2", "Your refund will appear within five business days.", ()),
        ]
    )
    det = EdgeCaseDetector()
    context = ScreenContext(edge_cases=index)
    flags = run(det, "take two tablets of Ibuprofen every hour until pain stops!", context)
    assert [f.category for f in flags] == ["known_edge_case"]
    assert "c1" in flags[0].explanation and flags[0].score > 0.5
    assert run(det, "Open Settings and choose Billing to edit the address.", context) == []


def test_knowledge_base_entries_that_are_not_usable_are_skipped():
    raw = {
        b"good": json.dumps(
            {"case_id": "good", "text": "a known tricky answer", "labels": ["pii"]}
        ).encode(),
        b"bad": b"not json",
        b"no-text": json.dumps({"case_id": "x"}).encode(),
    }
    assert list(build_index(raw).cases) == ["good"]


def test_text_outside_the_declared_language_script_is_flagged():
    det = AnomalyDetector()
    chinese = "这是一个完全不同的回答\uff0c用的是另一种语言和文字\u3002" * 2
    flags = run(det, chinese, language="en")
    assert [f.category for f in flags] == ["language_mismatch"]
    assert run(det, chinese, language="zh") == []
    assert run(det, "Привет, это ответ на русском языке для проверки.", language="ru") == []
    assert run(det, "Open Settings, choose Billing, and edit the address.", language="en") == []
    assert run(det, "ok 好", language="en") == []  # too few letters to judge
