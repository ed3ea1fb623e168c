"""Run the support bot against a running stack; configure it with HITL_* variables.

python scripts/run_stack.py            # in one terminal: prints the bootstrap address
HITL_KAFKA_BOOTSTRAP=127.0.0.1:PORT python -m examples.support_bot --turns 9
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
from contextlib import suppress

from examples.support_bot.answers import conversation, load
from examples.support_bot.bot import Say, Summary, SupportBot
from hitl_shared.client import HitlClient
from hitl_shared.settings import Settings


async def run(
    settings: Settings,
    *,
    turns: int = 9,
    timeout: float = 10.0,
    linger: float = 5.0,
    run_id: str | None = None,
    say: Say = print,
) -> Summary:
    """One conversation; then ``linger`` seconds for late follow-ups and corrections."""
    script = conversation(load(run_id or secrets.token_hex(3)), turns)
    async with HitlClient(settings, app="support-bot", client_id="support-bot") as hitl:
        bot = SupportBot(hitl, timeout=timeout, say=say)
        # subscribe before the first answer goes out, so no correction is missed
        async with hitl.subscribe(kinds=("release", "retraction")) as events:
            watcher = asyncio.create_task(bot.watch_corrections(events))
            try:
                for turn in script:
                    await bot.ask(turn)
                await asyncio.sleep(linger)
            finally:
                watcher.cancel()
                with suppress(asyncio.CancelledError):
                    await watcher
                await bot.finish()
    say(f"summary: {dict(bot.summary.statuses)}; corrections: {len(bot.summary.corrections)}")
    return bot.summary


def main() -> None:
    parser = argparse.ArgumentParser(description="HITL-Ops example: a customer-support bot")
    parser.add_argument("--turns", type=int, default=9, help="questions to ask")
    parser.add_argument("--timeout", type=float, default=10.0, help="wait per billing answer")
    parser.add_argument("--linger", type=float, default=5.0, help="wait for late events (s)")
    args = parser.parse_args()
    asyncio.run(
        run(
            Settings(service_name="support-bot"),
            turns=args.turns,
            timeout=args.timeout,
            linger=args.linger,
        )
    )


if __name__ == "__main__":
    main()
