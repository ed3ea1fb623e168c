"""Generate the contracts apps in other languages code against, from the pydantic models.

Writes one JSON Schema per event into ``docs/contracts/schemas/`` and an AsyncAPI 3
document of the topics into ``docs/contracts/asyncapi.yaml``. The files are checked in;
``tests/client/test_contracts.py`` fails when a model changes without re-running:

    python scripts/gen_contracts.py           # rewrite the files
    python scripts/gen_contracts.py --check   # exit 1 if any file is stale
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from hitl_shared.events import (
    DeadLetter,
    LLMOutput,
    PolicyUpdate,
    Release,
    Retraction,
    ReviewDecision,
    ReviewTask,
    RoutingDecision,
    ScreenedOutput,
    UserFeedback,
)
from hitl_shared.topics import Topics

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "contracts"
SCHEMA_BASE = "https://hitl-ops.invalid/contracts/schemas/"

ModelRef = type[BaseModel] | str  # a model, or "package.module:Class" for a service's own

# topic field -> (models on it, who publishes, who consumes, what it is for); a topic
# added to Topics without an entry here stops the generator (and fails the test)
CHANNELS: dict[str, tuple[tuple[ModelRef, ...], str, str, str]] = {
    "llm_outputs": ((LLMOutput,), "apps", "prescreen", "Every LLM output an app produces."),
    "llm_screened": (
        (ScreenedOutput,),
        "prescreen",
        "router",
        "The output with detector flags and scores.",
    ),
    "routing_decisions": (
        (RoutingDecision,),
        "router",
        "feedback, audit",
        "Why the router did what it did with each item.",
    ),
    "review_tasks": ((ReviewTask,), "router", "review-api, audit", "Human review work."),
    "review_decisions": (
        (ReviewDecision,),
        "review-api",
        "router, feedback",
        "One reviewer's verdict on a task.",
    ),
    "llm_released": (
        (Release, Retraction),
        "router",
        "apps",
        "The text an app may show (release), or a withdrawal of a text already shown in "
        "parallel mode (retraction). Each item is released at most once.",
    ),
    "user_feedback": (
        (UserFeedback,),
        "apps",
        "feedback",
        "End-user ratings, reports and implicit signals.",
    ),
    "policy_updates": (
        (PolicyUpdate,),
        "feedback",
        "router",
        "Review rates per segment from the feedback loop.",
    ),
    "control": (
        ("hitl_router.control:KillSwitch",),
        "operators",
        "router",
        "Operator commands, e.g. the kill switch that halts auto-release for an app.",
    ),
    "prompts": (
        tuple(
            f"hitl_shared.prompts:{name}"
            for name in (
                "TemplateCreated",
                "VersionAdded",
                "ProposalOpened",
                "ProposalApproved",
                "ProposalRejected",
                "ProposalApplied",
                "ExperimentStopped",
            )
        ),
        "review-api",
        "review-api, feedback",
        "Prompt-template registry: templates, versions and reviewed changes, keyed by "
        "prompt:<template_id>.",
    ),
}
# what apps do, as AsyncAPI operations from the app's point of view
APP_OPERATIONS = {
    "publishLLMOutput": ("send", "llm_outputs", "Publish every model answer, keyed by item_id."),
    "receiveReleased": (
        "receive",
        "llm_released",
        "Consume releases and retractions; match them to outputs by item_id.",
    ),
    "sendUserFeedback": ("send", "user_feedback", "Send user feedback on an item."),
}


def _model(ref: ModelRef) -> type[BaseModel]:
    if not isinstance(ref, str):
        return ref
    module, _, name = ref.partition(":")
    found = getattr(importlib.import_module(module), name)
    assert isinstance(found, type) and issubclass(found, BaseModel), ref
    return found


def _channels() -> dict[str, tuple[tuple[type[BaseModel], ...], str, str, str]]:
    """The contract of every topic Topics defines, in Topics order."""
    names = [f.name for f in fields(Topics)]
    if missing := [n for n in names if n not in CHANNELS]:
        raise SystemExit(f"gen_contracts: no contract for topics {missing}; add them to CHANNELS")
    return {n: (tuple(_model(m) for m in CHANNELS[n][0]), *CHANNELS[n][1:]) for n in names}


def _event_type(model: type[BaseModel]) -> str:
    default = model.model_fields["event_type"].default
    assert isinstance(default, str), model
    return default


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of what consumers accept (validation mode), with an $id."""
    name = _event_type(model)
    schema = model.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE}{name}.json",
        **schema,
    }


def _all_models() -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []
    for models, *_ in _channels().values():
        seen.extend(m for m in models if m not in seen)
    return [*seen, DeadLetter]


def _message(model: type[BaseModel]) -> dict[str, Any]:
    name = _event_type(model)
    return {
        "name": name,
        "title": model.__name__,
        "summary": next(iter((model.__doc__ or "").strip().splitlines()), model.__name__),
        "contentType": "application/json",
        "headers": {"$ref": "#/components/schemas/KafkaHeaders"},
        "payload": {"$ref": f"./schemas/{name}.json"},
        "bindings": {"kafka": {"key": {"type": "string", "description": "the item_id"}}},
    }


def asyncapi() -> dict[str, Any]:
    """An AsyncAPI 3.0 document of every topic (default names; a prefix may be set)."""
    topics = Topics()
    contracts = _channels()
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    for field_name, (models, producer, consumer, purpose) in contracts.items():
        refs = {}
        for model in models:
            messages[model.__name__] = _message(model)
            refs[model.__name__] = {"$ref": f"#/components/messages/{model.__name__}"}
        channels[field_name] = {
            "address": getattr(topics, field_name),
            "description": f"{purpose} Published by {producer}; consumed by {consumer}.",
            "messages": refs,
        }
    messages["DeadLetter"] = _message(DeadLetter)
    channels["dead_letters"] = {
        "address": "{topic}.dlq",
        "description": "Records a consumer could not handle, with their raw bytes and the "
        "reason. Every topic above has one.",
        "parameters": {"topic": {"description": "the original topic"}},
        "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
    }
    operations = {
        op: {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": summary,
            "messages": [
                {"$ref": f"#/channels/{channel}/messages/{m.__name__}"}
                for m in contracts[channel][0]
            ],
        }
        for op, (action, channel, summary) in APP_OPERATIONS.items()
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "HITL-Ops events",
            "version": "1",
            "description": "Kafka topics of HITL-Ops. Values are UTF-8 JSON, keys are the "
            "item_id (the idempotency key), W3C trace context travels in the traceparent / "
            "tracestate headers. Every event carries schema_version; consumers ignore "
            "unknown fields. A deployment may prefix every topic name (HITL_TOPIC_PREFIX).",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "python scripts/run_stack.py prints the real address",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": {
                "KafkaHeaders": {
                    "type": "object",
                    "properties": {
                        "content-type": {"type": "string", "const": "application/json"},
                        "traceparent": {"type": "string", "description": "W3C trace context"},
                        "tracestate": {"type": "string"},
                    },
                }
            },
        },
    }


def render() -> dict[Path, str]:
    """Every contract file and its exact text."""
    files = {
        OUT / "schemas" / f"{_event_type(m)}.json": json.dumps(schema_of(m), indent=2) + "\n"
        for m in _all_models()
    }
    header = "# Generated by scripts/gen_contracts.py from hitl_shared.events; do not edit.\n"
    files[OUT / "asyncapi.yaml"] = header + yaml.safe_dump(
        asyncapi(), sort_keys=False, allow_unicode=True, width=100
    )
    return files


def stale(files: dict[Path, str]) -> list[Path]:
    """Files that differ from what the models generate, plus generated files left over."""
    out = [p for p, text in files.items() if not p.exists() or p.read_text("utf-8") != text]
    existing = set((OUT / "schemas").glob("*.json")) if (OUT / "schemas").exists() else set()
    return out + sorted(existing - files.keys())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if any file is stale")
    args = parser.parse_args()
    files = render()
    if args.check:
        bad = stale(files)
        for path in bad:
            print(f"stale: {path.relative_to(ROOT)}", file=sys.stderr)
        return 1 if bad else 0
    for leftover in set((OUT / "schemas").glob("*.json")) - files.keys():
        leftover.unlink()
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files under {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
