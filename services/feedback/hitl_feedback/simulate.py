"""Adaptive sampling on a simulated stream where one segment's error rate jumps.

``python -m hitl_feedback.simulate`` prints how many items after the jump the review
rate takes to respond and where it settles. Only reviewed items teach the loop, as in
production: each item is reviewed with the current rate, and the rate is recomputed
every ``update_every`` reviews, exactly as the service does.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass

from hitl_feedback.config import FeedbackConfig
from hitl_feedback.sampling import Window, review_rate, steady_state_rate

RESPONSE_DELTA = 0.05


@dataclass(frozen=True)
class SimulationResult:
    tier: str
    error_rate_before: float
    error_rate_after: float
    rate_before_jump: float
    items_to_respond: int | None
    reviews_to_respond: int | None
    items_to_settle: int | None
    final_rate: float
    steady_state_rate: float
    updates: int


def simulate(
    *,
    tier: str = "low",
    before: float = 0.01,
    after: float = 0.20,
    items_before: int = 20_000,
    items_after: int = 5_000,
    seed: int = 7,
    config: FeedbackConfig | None = None,
) -> SimulationResult:
    """Run the stream; ``items_to_respond`` counts items after the jump until the rate
    first moves by ``RESPONSE_DELTA``; ``items_to_settle`` until it is within
    ``RESPONSE_DELTA`` of the rate it finally holds."""
    config = config or FeedbackConfig()
    rng = random.Random(seed)
    window = Window(config.window)
    evidence = window.evidence
    rate = review_rate(tier, evidence, config)
    rate_before = rate
    responded: tuple[int, int] | None = None
    history: list[tuple[int, float]] = []  # (items after the jump, rate) per update
    reviews_after = updates = 0
    for n in range(items_before + items_after):
        jumped = n >= items_before
        if n == items_before:
            rate_before = rate
        if rng.random() >= rate:
            continue
        evidence = window.observe(rng.random() < (after if jumped else before))
        reviews_after += jumped
        if evidence.reviewed % config.update_every:
            continue
        rate = review_rate(tier, evidence, config)
        updates += 1
        if jumped:
            history.append((n - items_before + 1, rate))
            if responded is None and abs(rate - rate_before) >= RESPONSE_DELTA:
                responded = (n - items_before + 1, reviews_after)
    settle = next(
        (
            items
            for items, value in history
            if abs(value - rate) <= RESPONSE_DELTA
            and all(abs(v - rate) <= RESPONSE_DELTA for i, v in history if i >= items)
        ),
        None,
    )
    return SimulationResult(
        tier=tier,
        error_rate_before=before,
        error_rate_after=after,
        rate_before_jump=rate_before,
        items_to_respond=responded[0] if responded else None,
        reviews_to_respond=responded[1] if responded else None,
        items_to_settle=settle,
        final_rate=rate,
        steady_state_rate=steady_state_rate(tier, after, config),
        updates=updates,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", default="low", choices=["low", "medium", "high", "critical"])
    parser.add_argument("--before", type=float, default=0.01, help="error rate before the jump")
    parser.add_argument("--after", type=float, default=0.20, help="error rate after the jump")
    parser.add_argument("--items-before", type=int, default=20_000)
    parser.add_argument("--items-after", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = simulate(
        tier=args.tier,
        before=args.before,
        after=args.after,
        items_before=args.items_before,
        items_after=args.items_after,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(asdict(result), indent=2))
        return
    print(
        f"segment tier {result.tier}: error rate {result.error_rate_before:.1%} -> "
        f"{result.error_rate_after:.1%} after {args.items_before} items\n"
        f"review rate before the jump: {result.rate_before_jump:.3f}\n"
        f"items after the jump until the rate responds (moves {RESPONSE_DELTA}): "
        f"{result.items_to_respond} ({result.reviews_to_respond} of them reviewed)\n"
        f"items after the jump until the rate settles (within {RESPONSE_DELTA} of final): "
        f"{result.items_to_settle}\n"
        f"final review rate: {result.final_rate:.3f} "
        f"(steady state for a {result.error_rate_after:.0%} error rate: "
        f"{result.steady_state_rate:.3f})"
    )


if __name__ == "__main__":
    main()
