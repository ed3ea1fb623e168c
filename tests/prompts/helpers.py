"""Template contents for the prompt tests."""

from __future__ import annotations

from typing import Any

from hitl_shared.prompts import Parts, TemplateContent, Variable


def content(
    task: str = "Answer the customer's question: {{ question }}", **parts: Any
) -> TemplateContent:
    return TemplateContent(
        parts=Parts(
            role="You are the support assistant of Example Corp.",
            context="Customer tier: {{ tier }}",
            task=task,
            constraints=("Answer in at most 120 words.", "Never promise refunds."),
            required_disclosures=("Say that you are an AI assistant.",),
            prohibited_categories=("medical advice", "legal advice"),
            **parts,
        ),
        variables=(
            Variable(name="question", max_length=500),
            Variable(name="tier", type="enum", choices=("free", "pro"), default="free"),
        ),
    )
