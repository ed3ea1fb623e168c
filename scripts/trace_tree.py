"""Print one item's trace as an indented tree, from a JSON-lines span file.

The file is what ``HITL_OTEL_EXPORTER=file`` writes (one ``span.to_json()`` a line;
``scripts/run_stack.py --trace-file`` sets it up). Pick the item by id or the trace
by id; linked traces (the reviewer's HTTP request) are listed after the item's.

    python scripts/trace_tree.py traces.jsonl --item item-42
    python scripts/trace_tree.py traces.jsonl --trace 4bf92f3577b34da6a3ce929d0e0e4736
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

SHOWN_ATTRIBUTES = (
    "hitl.item_id",
    "hitl.tier",
    "hitl.action",
    "hitl.reviewer_level",
    "messaging.destination.name",
    "http.request.method",
    "http.route",
    "http.response.status_code",
)


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    service: str
    start: datetime
    end: datetime
    attributes: dict[str, Any]
    links: tuple[str, ...] = field(default=())

    @property
    def duration_ms(self) -> float:
        return (self.end - self.start).total_seconds() * 1000


def _hex(value: str | None) -> str | None:
    return value[2:] if value and value.startswith("0x") else value


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def parse(line: str) -> Span:
    raw = json.loads(line)
    return Span(
        trace_id=_hex(raw["context"]["trace_id"]) or "",
        span_id=_hex(raw["context"]["span_id"]) or "",
        parent_id=_hex(raw.get("parent_id")),
        name=raw["name"],
        service=raw.get("resource", {}).get("attributes", {}).get("service.name", "?"),
        start=_time(raw["start_time"]),
        end=_time(raw["end_time"]),
        attributes=raw.get("attributes") or {},
        links=tuple(_hex(link["context"]["trace_id"]) or "" for link in raw.get("links") or ()),
    )


def load(path: Path) -> list[Span]:
    """Every span of the file; blank and truncated lines (a killed writer) are skipped."""
    spans = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            spans.append(parse(line))
        except (ValueError, KeyError):
            continue
    return spans


def trace_ids(spans: Iterable[Span], *, item: str | None, trace: str | None) -> list[str]:
    """The item's trace(s) first, then traces linked from them."""
    spans = list(spans)
    if trace:
        chosen = [trace.lower()]
    else:
        chosen = sorted({s.trace_id for s in spans if s.attributes.get("hitl.item_id") == item})
    linked = sorted({t for s in spans if s.trace_id in chosen for t in s.links} - set(chosen))
    return chosen + linked


def render(spans: Sequence[Span], trace_id: str) -> list[str]:
    mine = sorted((s for s in spans if s.trace_id == trace_id), key=lambda s: s.start)
    if not mine:
        return [f"trace {trace_id}: no spans"]
    ids = {s.span_id for s in mine}
    children: dict[str | None, list[Span]] = defaultdict(list)
    for span in mine:
        children[span.parent_id if span.parent_id in ids else None].append(span)
    origin = mine[0].start
    lines = [f"trace {trace_id}  ({len(mine)} spans)"]

    def walk(span: Span, depth: int) -> None:
        shown = " ".join(
            f"{k.removeprefix('hitl.')}={span.attributes[k]}"
            for k in SHOWN_ATTRIBUTES
            if k in span.attributes
        )
        orphan = " (parent not in file)" if depth == 0 and span.parent_id else ""
        offset = (span.start - origin).total_seconds() * 1000
        lines.append(
            f"{'  ' * depth}{span.name} [{span.service}] +{offset:.1f}ms "
            f"{span.duration_ms:.1f}ms {shown}{orphan}".rstrip()
        )
        for child in children.get(span.span_id, []):
            walk(child, depth + 1)

    for root in children[None]:
        walk(root, 0)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="JSON-lines span file")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--item", help="item id (hitl.item_id)")
    which.add_argument("--trace", help="trace id, 32 hex digits")
    args = parser.parse_args(argv)
    spans = load(args.file)
    chosen = trace_ids(spans, item=args.item, trace=args.trace)
    if not chosen:
        print(f"no span of item {args.item} in {args.file}", file=sys.stderr)
        return 1
    for index, trace_id in enumerate(chosen):
        if index:
            print()
        print("\n".join(render(spans, trace_id)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
