"""Topic names, in one place, and the single dead-letter naming rule.

A deployment (or a test) may prefix every name, so several stacks can share a broker.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

DEAD_LETTER_SUFFIX = ".dlq"


def dead_letter_topic(topic: str) -> str:
    """Every input topic ``t`` has exactly one dead-letter topic ``t.dlq``."""
    return f"{topic}{DEAD_LETTER_SUFFIX}"


@dataclass(frozen=True)
class Topics:
    llm_outputs: str = "hitl.llm.outputs"
    llm_screened: str = "hitl.llm.screened"
    routing_decisions: str = "hitl.routing.decisions"
    review_tasks: str = "hitl.review.tasks"
    review_decisions: str = "hitl.review.decisions"
    llm_released: str = "hitl.llm.released"
    user_feedback: str = "hitl.feedback.user"
    policy_updates: str = "hitl.policy.updates"
    control: str = "hitl.control"  # operator commands, e.g. the router's kill switch
    prompts: str = "hitl.prompts"  # prompt-template registry changes (review-api)

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        if not prefix:
            return cls()
        return cls(**{f.name: f"{prefix}{getattr(cls(), f.name)}" for f in fields(cls)})

    def all(self) -> list[str]:
        """Every topic including the dead-letter topics, for creation at start."""
        names = [getattr(self, f.name) for f in fields(self)]
        return names + [dead_letter_topic(name) for name in names]
