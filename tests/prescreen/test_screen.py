"""Screening as a whole: failures and slow detectors, spans on non-ASCII text, config."""

from __future__ import annotations

import time

import pytest

from hitl_prescreen.config import PrescreenConfig, load_config, parse_config
from hitl_prescreen.detectors.base import EMPTY_CONTEXT
from hitl_prescreen.domain import screen
from hitl_shared.events import Flag
from tests.prescreen.helpers import output

pytestmark = pytest.mark.unit
DETECTORS = load_config().build()


class Exploding:
    name = "exploding"

    def detect(self, output, context):
        raise RuntimeError("model file missing")


class Slow:
    name = "slow"

    def detect(self, output, context):
        time.sleep(0.03)
        return []


def test_a_raising_detector_is_recorded_and_the_item_goes_on_marked_for_review():
    detectors = {"exploding": Exploding(), **DETECTORS}
    result = screen(output("Card 4111 1111 1111 1111"), detectors, budget_ms=60_000)
    assert result.detector_errors == ("exploding: RuntimeError: model file missing",)
    categories = {(f.detector, f.category) for f in result.flags}
    assert ("pii", "payment_card") in categories
    assert ("prescreen", "detector_error") in categories
    error = next(f for f in result.flags if f.category == "detector_error")
    assert error.severity == "high" and "exploding" in error.explanation


def test_a_detector_over_its_budget_is_an_error_but_its_work_is_kept():
    result = screen(output("hello"), {"slow": Slow()}, budget_ms=5)
    assert len(result.detector_errors) == 1 and "budget" in result.detector_errors[0]
    assert [f.category for f in result.flags] == ["detector_error"]


def test_legacy_callables_still_work():
    def legacy(out):
        return [
            Flag(
                detector="x",
                category="y",
                severity="low",
                score=0.1,
                start=0,
                end=1,
                explanation="",
            )
        ]

    assert [f.detector for f in screen(output("hi"), {"x": legacy}).flags] == ["x"]


def test_clean_output_has_no_flags():
    text = "Open Settings, choose Billing, and edit the address field."
    result = screen(output(text), DETECTORS, budget_ms=60_000)
    assert result.flags == () and result.detector_errors == ()


@pytest.mark.parametrize(
    "prefix",
    [
        "😀👍🏽 ",  # emoji, incl. a skin-tone modifier (two code points)
        "您好\uff0c这是您的信息\uff1a",  # CJK
        "Café Zoë naïve e\u0301 ",  # precomposed and combining marks
        "\U0001f468\u200d\U0001f469\u200d\U0001f467 family: ",  # ZWJ sequence
    ],
)
def test_spans_are_python_string_indices_on_non_ascii_text(prefix):
    text = f"{prefix}mail jane@example.com, card 4111 1111 1111 1111, key AKIAIOSFODNN7EXAMPLE 🎉"
    result = screen(output(text), DETECTORS, context=EMPTY_CONTEXT, budget_ms=60_000)
    covered = {(f.category, text[f.start : f.end]) for f in result.flags}
    assert ("email", "jane@example.com") in covered
    assert ("payment_card", "4111 1111 1111 1111") in covered
    assert ("aws_access_key", "AKIAIOSFODNN7EXAMPLE") in covered


def test_toxic_span_after_emoji_and_cjk():
    text = "👍🏽 你好\uff01Shut up and read the docs, moron."
    result = screen(output(text), DETECTORS)
    toxic = [text[f.start : f.end] for f in result.flags if f.category == "toxicity"]
    assert toxic == ["Shut up and read the docs, moron."]


def test_config_rejects_unknown_keys_and_switches_detectors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="tresh"):
        parse_config("detectors:\n  pii:\n    tresh: 1\n")
    config = parse_config("detectors:\n  toxicity:\n    enabled: false\n")
    assert "toxicity" not in config.build() and "pii" in config.build()
    path = tmp_path / "prescreen.yaml"
    path.write_text("version: custom-7\ndetector_budget_ms: 9\n")
    monkeypatch.setenv("HITL_PRESCREEN_CONFIG", str(path))
    loaded = load_config()
    assert loaded.version == "custom-7" and loaded.detector_budget_ms == 9
    assert isinstance(PrescreenConfig(), PrescreenConfig)


def test_packaged_default_config_enables_every_detector():
    assert set(DETECTORS) == {
        "pii", "secrets", "toxicity", "injection", "claims", "confidence", "anomaly", "edge_cases"
    }  # fmt: skip


def test_very_long_output_is_screened_on_a_prefix_and_marked_for_review():
    text = "Card 4111 1111 1111 1111. " + "x" * 5_000
    result = screen(output(text), DETECTORS, budget_ms=60_000, max_chars=1_000)
    assert result.output.output_text == text  # the event itself is passed on whole
    assert any("only the first 1000" in e for e in result.detector_errors)
    assert ("payment_card", "4111 1111 1111 1111") in {
        (f.category, text[f.start : f.end]) for f in result.flags
    }
    assert all(f.end <= 1_000 for f in result.flags if f.category != "detector_error")


def test_pathological_digit_runs_finish():
    """'1 1 1 1 …' once cost seconds in card and phone search; it must stay linear."""
    result = screen(output("1 " * 50_000), DETECTORS, budget_ms=60_000)
    assert [f for f in result.flags if f.detector == "pii"] == []
