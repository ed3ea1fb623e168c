"""Small builders of valid events for tests."""

from __future__ import annotations

from typing import Any

from hitl_shared.events import Flag, LLMOutput


def llm_output(item_id: str, **overrides: Any) -> LLMOutput:
    fields: dict[str, Any] = {
        "item_id": item_id,
        "app": "support-bot",
        "use_case": "billing",
        "content_category": "billing",
        "prompt": "How do I update my billing address?",
        "prompt_template_id": "support-answer",
        "prompt_template_version": "3",
        "model": "demo-model-1",
        "output_text": "Open Settings, choose Billing, and edit the address field.",
        "confidence": 0.92,
    }
    fields.update(overrides)
    return LLMOutput(**fields)


def flag(**overrides: Any) -> Flag:
    """A prescreen flag; by default a Luhn-valid card number at the start of the text."""
    fields: dict[str, Any] = {
        "detector": "pii",
        "category": "payment_card",
        "severity": "critical",
        "score": 0.99,
        "start": 0,
        "end": 19,
        "explanation": "Luhn-valid card number",
    }
    fields.update(overrides)
    return Flag(**fields)
