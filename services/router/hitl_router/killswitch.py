"""Operator command: hold every item of an app for review at once, or undo it.

    python -m hitl_router.killswitch --app support-bot --on --reason "bad model push"
    python -m hitl_router.killswitch --app support-bot --off
    python -m hitl_router.killswitch --status

The switch is written to Redis first (routers check it atomically with every
auto-release, so it takes effect with the next item) and then published on the control
topic, which is the audit record and lets routers refresh their cache immediately.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time

from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from hitl_router.control import KillSwitch, control_item_id
from hitl_router.state import RouterStore
from hitl_shared.settings import Settings


async def switch(
    settings: Settings, app: str, *, on: bool, operator: str, reason: str | None = None
) -> KillSwitch:
    event = KillSwitch(
        item_id=control_item_id(app),
        app=app,
        on=on,
        sequence=time.time_ns() // 1000,
        operator=operator,
        reason=reason,
    )
    redis = Redis.from_url(settings.redis_url)
    try:
        await RouterStore(redis, settings.redis_prefix).set_kill(
            app, on=on, sequence=event.sequence
        )
    finally:
        await redis.aclose()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=False
    )
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topics.control,
            event.to_bytes(),
            key=event.item_id.encode(),
            headers=[("content-type", b"application/json")],
        )
    finally:
        await producer.stop()
    return event


async def killed_apps(settings: Settings) -> list[str]:
    redis = Redis.from_url(settings.redis_url)
    try:
        return sorted((await RouterStore(redis, settings.redis_prefix).live()).killed)
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hitl_router.killswitch", description=__doc__)
    parser.add_argument("--app", help="the app to switch")
    state = parser.add_mutually_exclusive_group(required=True)
    state.add_argument("--on", action="store_true", help="hold every item of the app")
    state.add_argument("--off", action="store_true", help="resume policy-based release")
    state.add_argument("--status", action="store_true", help="list apps switched on")
    parser.add_argument("--reason", default=None)
    parser.add_argument("--operator", default=None)
    args = parser.parse_args(argv)
    settings = Settings(service_name="router-killswitch")
    if args.status:
        apps = asyncio.run(killed_apps(settings))
        print("\n".join(apps) if apps else "no kill switch is on")
        return 0
    if not args.app:
        parser.error("--app is required with --on / --off")
    event = asyncio.run(
        switch(
            settings,
            args.app,
            on=bool(args.on),
            operator=args.operator or getpass.getuser(),
            reason=args.reason,
        )
    )
    verb = "ON: every item is held for review" if event.on else "OFF: policy decides again"
    print(f"kill switch for {event.app} {verb} (sequence {event.sequence})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
