"""The checked-in contracts match the models, and say what the pipeline accepts."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import jsonschema_rs
import pytest
import yaml

from hitl_shared.events import Release
from tests.factories import llm_output

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "docs" / "contracts"


def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen_contracts", ROOT / "scripts/gen_contracts.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _validator(name: str):
    return jsonschema_rs.validator_for(json.loads((CONTRACTS / "schemas" / name).read_text()))


def test_checked_in_contracts_match_the_models():
    stale = _generator().stale(_generator().render())
    assert not stale, (
        f"contracts are stale: {[str(p.relative_to(ROOT)) for p in stale]}; "
        "run `python scripts/gen_contracts.py` and commit the result"
    )


def test_a_changed_model_makes_the_check_fail(monkeypatch):
    gen = _generator()
    files = gen.render()
    path = CONTRACTS / "schemas" / "llm.output.json"
    changed = json.loads(files[path])
    changed["properties"]["new_field"] = {"type": "string"}
    files[path] = json.dumps(changed, indent=2) + "\n"
    assert gen.stale(files) == [path]


def test_schema_accepts_the_pipelines_events_and_rejects_bad_ones():
    output = json.loads(llm_output("c-1").model_dump_json())
    assert _validator("llm.output.json").is_valid(output)
    demo = (ROOT / "demo" / "sample_outputs.jsonl").read_text().splitlines()
    assert all(_validator("llm.output.json").is_valid(json.loads(line)) for line in demo[:50])
    assert not _validator("llm.output.json").is_valid({**output, "confidence": 1.5})
    missing = dict(output)
    del missing["output_text"]
    assert not _validator("llm.output.json").is_valid(missing)
    release = Release(item_id="c-1", app="a", outcome="edited", text="t", policy_version="p")
    assert _validator("llm.release.json").is_valid(json.loads(release.model_dump_json()))


def test_asyncapi_covers_every_topic_and_resolves_its_references():
    doc = yaml.safe_load((CONTRACTS / "asyncapi.yaml").read_text())
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    from hitl_shared.topics import Topics

    assert set(Topics().all()[: len(Topics().all()) // 2]) <= addresses
    for message in doc["components"]["messages"].values():
        assert (CONTRACTS / message["payload"]["$ref"]).exists()
    for operation in doc["operations"].values():
        channel = operation["channel"]["$ref"].split("/")[-1]
        assert channel in doc["channels"]
        for ref in operation["messages"]:
            *_, name = ref["$ref"].split("/")
            assert name in doc["channels"][channel]["messages"]
