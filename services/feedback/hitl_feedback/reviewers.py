"""Reviewer analytics: speed, modification and escalation rates, peer agreement,
drift over a shift, and outliers worth a calibration look (possible bias or fatigue).

Outliers use a binomial z against the *median* rate of the other reviewers,
``z = (p_i - p_peers) / sqrt(p_peers (1 - p_peers) / n_i)``: the median keeps one extreme
reviewer from making everyone else look extreme, and the reviewer's own sample size
decides whether the gap is unlikely by chance.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from hitl_feedback.annotations import Annotation
from hitl_feedback.config import FeedbackConfig
from hitl_feedback.metrics import ratings_by_item
from hitl_feedback.stats import cohen_kappa, mean, quantile, rate

MIN_SESSION_DECISIONS = 6
DRIFT_TIME_RATIO = 0.3
DRIFT_RATE_DELTA = 0.2


def _judged(decisions: Sequence[Annotation]) -> list[Annotation]:
    return [a for a in decisions if a.verdict != "escalate"]


def sessions(decisions: Sequence[Annotation], gap_s: float) -> list[list[Annotation]]:
    """A reviewer's decisions in time order, split where a pause exceeds ``gap_s``."""
    ordered = sorted(decisions, key=lambda a: (a.occurred_at, a.event_id))
    found: list[list[Annotation]] = []
    for a in ordered:
        if found and (a.occurred_at - found[-1][-1].occurred_at).total_seconds() <= gap_s:
            found[-1].append(a)
        else:
            found.append([a])
    return found


def _part(decisions: Sequence[Annotation]) -> dict[str, float | None]:
    judged = _judged(decisions)
    return {
        "mean_time_s": mean([a.time_spent_s for a in decisions]),
        "modification_rate": rate(sum(1 for a in judged if a.verdict == "edit"), len(judged)),
    }


def drift(decisions: Sequence[Annotation], gap_s: float) -> dict[str, Any]:
    """First third vs last third of each long-enough session, pooled over sessions."""
    first: list[Annotation] = []
    last: list[Annotation] = []
    analysed = 0
    for session in sessions(decisions, gap_s):
        if len(session) < MIN_SESSION_DECISIONS:
            continue
        third = len(session) // 3
        first.extend(session[:third])
        last.extend(session[-third:])
        analysed += 1
    if not analysed:
        return {"sessions_analysed": 0, "first": None, "last": None, "suspected": False}
    start, end = _part(first), _part(last)
    suspected = False
    if start["mean_time_s"] and end["mean_time_s"] is not None:
        change = (end["mean_time_s"] - start["mean_time_s"]) / start["mean_time_s"]
        suspected |= abs(change) > DRIFT_TIME_RATIO
    if start["modification_rate"] is not None and end["modification_rate"] is not None:
        suspected |= abs(end["modification_rate"] - start["modification_rate"]) > DRIFT_RATE_DELTA
    return {"sessions_analysed": analysed, "first": start, "last": end, "suspected": suspected}


def binomial_z(x: int, n: int, p_peers: float | None) -> float | None:
    """How far a reviewer's rate x/n sits from the peers' rate, in standard errors."""
    if n == 0 or p_peers is None:
        return None
    # Keep the error away from zero so a unanimous peer group still yields a finite z.
    p_safe = min(max(p_peers, 0.5 / n), 1 - 0.5 / n)
    return (x / n - p_peers) / math.sqrt(p_safe * (1 - p_safe) / n)


def _peer_median(rates: dict[str, float | None], reviewer: str) -> float | None:
    return quantile([v for r, v in rates.items() if r != reviewer and v is not None], 0.5)


def peer_agreement(annotations: Sequence[Annotation]) -> dict[str, dict[str, Any]]:
    """Per reviewer: share of agreeing peer pairs and kappa with each peer."""
    items = ratings_by_item(annotations)
    agree: dict[str, list[bool]] = defaultdict(list)
    pairs: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for ratings in items.values():
        for r, verdict in ratings.items():
            for peer, other in ratings.items():
                if peer != r:
                    agree[r].append(verdict == other)
                    pairs[(r, peer)].append((verdict, other))
    found: dict[str, dict[str, Any]] = {}
    for r, votes in agree.items():
        found[r] = {
            "compared": len(votes),
            "agreement_rate": sum(votes) / len(votes),
            "kappa_with": {
                peer: cohen_kappa(ratings)
                for (who, peer), ratings in sorted(pairs.items())
                if who == r
            },
        }
    return found


def reviewer_report(annotations: Sequence[Annotation], config: FeedbackConfig) -> dict[str, Any]:
    by_reviewer: dict[str, list[Annotation]] = defaultdict(list)
    for a in annotations:
        by_reviewer[a.reviewer_id].append(a)
    agreement = peer_agreement(annotations)
    tallies = {
        r: (
            sum(1 for a in _judged(ds) if a.verdict == "edit"),
            len(_judged(ds)),
            sum(1 for a in ds if a.verdict == "escalate"),
            len(ds),
        )
        for r, ds in by_reviewer.items()
    }
    mod_rates = {r: rate(t[0], t[1]) for r, t in tallies.items()}
    esc_rates = {r: rate(t[2], t[3]) for r, t in tallies.items()}
    reviewers: dict[str, Any] = {}
    outliers: list[dict[str, Any]] = []
    for r, ds in sorted(by_reviewer.items()):
        edits, judged, escalations, decisions = tallies[r]
        times = [a.time_spent_s for a in ds]
        z_mod = binomial_z(edits, judged, _peer_median(mod_rates, r))
        z_esc = binomial_z(escalations, decisions, _peer_median(esc_rates, r))
        reviewers[r] = {
            "decisions": decisions,
            "mean_time_s": mean(times),
            "median_time_s": quantile(times, 0.5),
            "modification_rate": rate(edits, judged),
            "escalation_rate": rate(escalations, decisions),
            "modification_z": z_mod,
            "escalation_z": z_esc,
            "peer_agreement": agreement.get(r),
            "drift": drift(ds, config.session_gap_s),
        }
        if decisions < config.outlier_min_decisions:
            continue
        for metric, z in (("modification_rate", z_mod), ("escalation_rate", z_esc)):
            if z is not None and abs(z) > config.outlier_z:
                outliers.append({"reviewer": r, "metric": metric, "z": z})
    return {"reviewers": reviewers, "outliers": outliers}
