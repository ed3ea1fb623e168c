"""A detector bug for the worker-timeout tests: stuck for good on one kind of text.

Lives in its own module because spawned detector workers import it by name."""

from __future__ import annotations

import time
from typing import Any

from hitl_prescreen import workers
from hitl_prescreen.config import PrescreenConfig

STUCK_MARKER = "STUCK-FOREVER"


class Hangs:
    """Sleeps for an hour on any text holding the marker, as a runaway loop would."""

    name = "hangs"

    def detect(self, output: Any, context: Any) -> list[Any]:
        if STUCK_MARKER in output.output_text:
            time.sleep(3600)
        return []


def start_worker_with_a_hanging_detector(config: PrescreenConfig) -> None:
    workers._start_worker(config)
    assert workers._state is not None
    workers._state.detectors["hangs"] = Hangs()
