"""README command 1, exercised: the stack runner starts everything and routes demo items."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_stack_runner_starts_every_service_and_routes_demo_items(redis_url):
    env = {**os.environ, "HITL_REDIS_URL": redis_url}
    env.pop("HITL_KAFKA_BOOTSTRAP", None)
    env["HITL_PRESCREEN_WORKERS"] = "2"  # what `make run` gives the prescreen on two CPUs
    done = subprocess.run(
        [sys.executable, "scripts/run_stack.py", "--smoke", "25", "--port", "0", "--rate", "100"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "review UI: http://127.0.0.1:" in done.stdout
    assert "routed 25/25" in done.stdout
    assert "every item routed" in done.stdout
