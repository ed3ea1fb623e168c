"""Table 1 metrics from annotations: quality, efficiency, intervention, value, learning.

Pure functions over a list of annotations, so the dashboard, the CLI and the tests
compute the same numbers the same way. Item-level rates use each item's latest settled
decision (final, not an escalation); per-decision figures use every decision.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import combinations
from typing import Any

from hitl_feedback.annotations import COMPLIANCE_LABELS, HIGH_SEVERITIES, Annotation
from hitl_feedback.config import FeedbackConfig
from hitl_feedback.stats import (
    cohen_kappa,
    counts,
    krippendorff_alpha_nominal,
    mean,
    quantile,
    rate,
)

DIMENSIONS = {
    "app": "app",
    "use_case": "use_case",
    "tier": "tier",
    "model": "model",
    "prompt_template_id": "prompt_template_id",
    "prompt_version": "prompt_template_version",
    "reviewer": "reviewer_id",
}
AGREEMENT_VERDICTS = frozenset({"approve", "edit", "reject"})


def as_datetime(value: datetime | str | float | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def select(annotations: Iterable[Annotation], **filters: Any) -> list[Annotation]:
    """Annotations matching every given dimension filter and the [since, until) window."""
    since = as_datetime(filters.pop("since", None))
    until = as_datetime(filters.pop("until", None))
    unknown = set(filters) - set(DIMENSIONS)
    if unknown:
        raise ValueError(f"unknown filter(s): {sorted(unknown)}; known: {sorted(DIMENSIONS)}")
    wanted = {DIMENSIONS[k]: str(v) for k, v in filters.items() if v is not None}
    return [
        a
        for a in annotations
        if (since is None or a.occurred_at >= since)
        and (until is None or a.occurred_at < until)
        and all(str(getattr(a, field)) == value for field, value in wanted.items())
    ]


def settled(annotations: Iterable[Annotation]) -> list[Annotation]:
    """Each item's latest settling decision."""
    latest: dict[str, Annotation] = {}
    for a in annotations:
        if not a.is_outcome:
            continue
        held = latest.get(a.item_id)
        if held is None or (a.occurred_at, a.event_id) > (held.occurred_at, held.event_id):
            latest[a.item_id] = a
    return sorted(latest.values(), key=lambda a: (a.occurred_at, a.event_id))


def catch_value(annotation: Annotation, config: FeedbackConfig) -> float:
    """Configured cost avoided by catching this error: the sum over its labels."""
    if not annotation.is_error:
        return 0.0
    if not annotation.labels:
        return config.unlabeled_cost
    return sum(config.costs.get(label, config.unlabeled_cost) for label in annotation.labels)


def is_incident(annotation: Annotation) -> bool:
    """A caught error that would have been a reportable incident if released."""
    return annotation.is_error and (
        annotation.severity in HIGH_SEVERITIES or bool(COMPLIANCE_LABELS & set(annotation.labels))
    )


def core(annotations: Sequence[Annotation], *, span_s: float | None = None) -> dict[str, Any]:
    """Quality, efficiency and intervention figures of one slice."""
    outcomes = settled(annotations)
    errors = [a for a in outcomes if a.is_error]
    edits = [a for a in outcomes if a.verdict == "edit"]
    times = [a.time_spent_s for a in annotations]
    if span_s is None and annotations:
        span_s = (annotations[-1].occurred_at - annotations[0].occurred_at).total_seconds()
    error_rate = rate(len(errors), len(outcomes))
    return {
        "decisions": len(annotations),
        "items_settled": len(outcomes),
        "errors": len(errors),
        "error_rate": error_rate,
        "accuracy": None if error_rate is None else 1.0 - error_rate,
        "modification_rate": rate(len(edits), len(outcomes)),
        "rejection_rate": rate(sum(1 for a in outcomes if a.verdict == "reject"), len(outcomes)),
        "escalation_rate": rate(
            sum(1 for a in annotations if a.verdict == "escalate"), len(annotations)
        ),
        "review_time_s": {
            "mean": mean(times),
            "median": quantile(times, 0.5),
            "p90": quantile(times, 0.9),
        },
        "throughput_per_hour": (len(annotations) / (span_s / 3600.0)) if span_s else None,
        "mean_diff_chars": mean([float(a.diff_chars) for a in edits]),
        "labels": counts(label for a in errors for label in a.labels),
        "severity": counts(a.severity for a in errors if a.severity),
    }


def breakdown(annotations: Sequence[Annotation], dimension: str) -> dict[str, dict[str, Any]]:
    field = DIMENSIONS[dimension]
    groups: dict[str, list[Annotation]] = defaultdict(list)
    for a in annotations:
        groups[str(getattr(a, field) or "unknown")].append(a)
    return {value: core(group) for value, group in sorted(groups.items())}


def ratings_by_item(annotations: Iterable[Annotation]) -> dict[str, dict[str, str]]:
    """item -> reviewer -> that reviewer's latest judging verdict (approve/edit/reject)."""
    latest: dict[str, dict[str, Annotation]] = defaultdict(dict)
    for a in annotations:
        if a.verdict not in AGREEMENT_VERDICTS:
            continue
        held = latest[a.item_id].get(a.reviewer_id)
        if held is None or (a.occurred_at, a.event_id) > (held.occurred_at, held.event_id):
            latest[a.item_id][a.reviewer_id] = a
    return {
        item: {r: a.verdict for r, a in by_reviewer.items()}
        for item, by_reviewer in latest.items()
        if len(by_reviewer) >= 2
    }


def _binary(verdict: str) -> str:
    return "error" if verdict in ("edit", "reject") else "ok"


def agreement(annotations: Iterable[Annotation]) -> dict[str, Any]:
    """Inter-reviewer agreement on items judged by two or more reviewers."""
    items = ratings_by_item(annotations)
    pairs: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for ratings in items.values():
        for a, b in combinations(sorted(ratings), 2):
            pairs[(a, b)].append((ratings[a], ratings[b]))
    return {
        "double_reviewed_items": len(items),
        "krippendorff_alpha_verdict": krippendorff_alpha_nominal(
            [list(r.values()) for r in items.values()]
        ),
        "krippendorff_alpha_error": krippendorff_alpha_nominal(
            [[_binary(v) for v in r.values()] for r in items.values()]
        ),
        "pairs": [
            {
                "reviewers": [a, b],
                "items": len(ratings),
                "percent_agreement": sum(1 for x, y in ratings if x == y) / len(ratings),
                "cohen_kappa": cohen_kappa(ratings),
            }
            for (a, b), ratings in sorted(pairs.items())
        ],
    }


def value(annotations: Sequence[Annotation], config: FeedbackConfig) -> dict[str, Any]:
    errors = [a for a in settled(annotations) if a.is_error]
    by_label: dict[str, float] = defaultdict(float)
    for a in errors:
        for label in a.labels or ("unlabeled",):
            by_label[label] += config.costs.get(label, config.unlabeled_cost)
    return {
        "errors_caught": len(errors),
        "value": sum(catch_value(a, config) for a in errors),
        "value_by_label": dict(sorted(by_label.items())),
        "incidents_prevented": sum(1 for a in errors if is_incident(a)),
    }


def learning(annotations: Sequence[Annotation], window_s: float) -> dict[str, Any]:
    """Error and recurring-issue rates per time window.

    An error recurs when its (app, use case, label) already occurred in an earlier window:
    a falling recurring rate means fixed issues stay fixed.
    """
    windows: dict[int, list[Annotation]] = defaultdict(list)
    for a in settled(annotations):
        windows[int(a.occurred_at.timestamp() // window_s)].append(a)
    seen: set[tuple[str, str, str]] = set()
    rows: list[dict[str, Any]] = []
    for index in sorted(windows):
        group = windows[index]
        keys_here: set[tuple[str, str, str]] = set()
        errors = recurring = 0
        for a in group:
            if not a.is_error:
                continue
            errors += 1
            keys = {(a.app, a.use_case, label) for label in a.labels or ("unlabeled",)}
            recurring += bool(keys & seen)
            keys_here |= keys
        seen |= keys_here
        rows.append(
            {
                "window_start": datetime.fromtimestamp(index * window_s, UTC).isoformat(),
                "items": len(group),
                "errors": errors,
                "error_rate": rate(errors, len(group)),
                "recurring_errors": recurring,
                "recurring_rate": rate(recurring, len(group)),
            }
        )
    # The first window cannot recur by definition, so the trend starts at the second.
    change = rows[-1]["recurring_rate"] - rows[1]["recurring_rate"] if len(rows) >= 3 else None
    return {"window_s": window_s, "windows": rows, "recurring_rate_change": change}


def user_satisfaction(by_app: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Per app: raw user-feedback counts plus mean rating, thumbs-up share, regenerate share."""
    found: dict[str, Any] = {}
    for app, c in sorted(by_app.items()):
        events = c.get("events", 0.0)
        thumbs = c.get("signal:thumbs_up", 0.0) + c.get("signal:thumbs_down", 0.0)
        found[app] = {
            "counts": c,
            "mean_rating": c["rating_sum"] / c["rating_n"] if c.get("rating_n") else None,
            "thumbs_up_share": c.get("signal:thumbs_up", 0.0) / thumbs if thumbs else None,
            "regenerate_share": c.get("signal:regenerate", 0.0) / events if events else None,
            "reports": {k[len("report:") :]: v for k, v in c.items() if k.startswith("report:")},
        }
    return found


def report(
    annotations: Sequence[Annotation],
    config: FeedbackConfig,
    *,
    group_by: Sequence[str] = tuple(DIMENSIONS),
    **filters: Any,
) -> dict[str, Any]:
    """Every metric of one filtered slice, JSON-ready."""
    from hitl_feedback.reviewers import reviewer_report

    since = as_datetime(filters.get("since"))
    until = as_datetime(filters.get("until"))
    chosen = select(annotations, **filters)
    span_s = (until - since).total_seconds() if since and until else None
    return {
        "filters": {k: (str(v) if v is not None else None) for k, v in filters.items()},
        "overall": core(chosen, span_s=span_s),
        "accuracy_by_domain": {
            use_case: {
                "items_settled": m["items_settled"],
                "error_rate": m["error_rate"],
                "accuracy": m["accuracy"],
            }
            for use_case, m in breakdown(chosen, "use_case").items()
        },
        "by": {dim: breakdown(chosen, dim) for dim in group_by},
        "agreement": agreement(chosen),
        "value": value(chosen, config),
        "learning": learning(chosen, config.window_s),
        "reviewers": reviewer_report(chosen, config),
    }
