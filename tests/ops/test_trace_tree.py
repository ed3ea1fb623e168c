"""The trace-tree command prints one item's trace from the span file the stack writes."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from opentelemetry.trace import SpanKind

from hitl_shared.settings import Settings
from hitl_shared.telemetry import (
    build_tracer_provider,
    continue_trace,
    item_span,
    trace_context_now,
)

pytestmark = pytest.mark.unit
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "trace_tree.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("trace_tree", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["trace_tree"] = module
    spec.loader.exec_module(module)
    return module


def _write_spans(path: Path) -> str:
    """An item's spans through the real file exporter; returns the item's trace id."""
    settings = Settings(otel_exporter="file", otel_file=str(path), service_name="stack")
    provider = build_tracer_provider(settings)
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("llm.outputs publish", kind=SpanKind.PRODUCER) as root,
        item_span(tracer, "llm.outputs process", parent=None, item_id="i-1", topic="o") as hop,
        item_span(tracer, "llm.screened process", parent=None, item_id="i-1", topic="s"),
    ):
        hop.set_attribute("messaging.kafka.message.key", b"i-1")  # FastStream sets bytes
        stored = trace_context_now()
    with (
        tracer.start_as_current_span("POST /api/tasks/{task_id}/decision"),
        continue_trace("review decision", stored, item_id="i-1", tracer=tracer),
        tracer.start_as_current_span("review.decisions publish"),
    ):
        pass
    with item_span(tracer, "llm.outputs process", parent=None, item_id="other", topic="o"):
        pass
    provider.shutdown()
    return format(root.get_span_context().trace_id, "032x")


def test_prints_the_items_spans_as_a_tree_in_order_then_the_linked_request(tmp_path, capsys):
    spans_file = tmp_path / "traces.jsonl"
    trace_id = _write_spans(spans_file)
    with spans_file.open("a") as handle:
        handle.write('{"truncated": \n')  # a killed writer leaves half a line
    assert _script().main([str(spans_file), "--item", "i-1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"trace {trace_id}  (5 spans)"
    names = [line.split(" [")[0] for line in out[1:6]]
    assert names == [
        "llm.outputs publish",
        "  llm.outputs process",
        "    llm.screened process",
        "      review decision",
        "        review.decisions publish",
    ]
    assert "item_id=i-1" in out[2] and "[stack]" in out[2]
    assert any(line.startswith("POST /api/tasks/{task_id}/decision") for line in out[7:])
    assert not any("other" in line for line in out)


def test_runs_as_a_command_by_trace_id(tmp_path):
    spans_file = tmp_path / "traces.jsonl"
    trace_id = _write_spans(spans_file)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(spans_file), "--trace", trace_id],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith(f"trace {trace_id}  (5 spans)")


def test_an_unknown_item_is_an_error(tmp_path):
    spans_file = tmp_path / "traces.jsonl"
    _write_spans(spans_file)
    assert _script().main([str(spans_file), "--item", "nope"]) == 1
