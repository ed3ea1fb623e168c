"""Operator control events on the control topic (the router's kill switch)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from hitl_shared.events import Event

_NOT_ID = re.compile(r"[^A-Za-z0-9._:\-]")


def control_item_id(app: str) -> str:
    """Control events of one app share a key, so they stay in order on one partition."""
    return f"killswitch:{_NOT_ID.sub('-', app)}"[:128]


class KillSwitch(Event):
    """Turns auto-release off (``on=True``: hold everything) or back on for one app.

    ``sequence`` orders switches (milliseconds since the epoch by default): an older
    switch replayed late never overrides a newer one.
    """

    event_type: Literal["control.kill_switch"] = "control.kill_switch"
    app: str = Field(min_length=1, max_length=128)
    on: bool
    sequence: int = Field(ge=0)
    operator: str = Field(default="operator", max_length=128)
    reason: str | None = Field(default=None, max_length=2000)
