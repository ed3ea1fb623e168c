"""Fuzz every operation of the API from its own OpenAPI schema: never a 5xx.

Bounded (a few examples per operation and role) so it stays a test, not a soak.
"""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from tests.review_api.conftest import ADMIN, make_user
from tests.review_api.helpers import enqueue, make_task

pytestmark = pytest.mark.integration
EXAMPLES = 15
SKIP = {("GET", "/api/overview/stream")}  # an endless stream by design; tested on its own


def _runner(operation, url: str, name: str, headers: dict[str, str], failures: list[str]):
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=url, headers=headers, timeout=20)
        if response.status_code >= 500:
            failures.append(
                f"{case.method} {case.formatted_path} as {name}: "
                f"{response.status_code} {response.text[:200]}"
            )

    return run


def _fuzz(url: str, identities: dict[str, dict[str, str]]) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        for name, headers in identities.items():
            _runner(operation, url, name, headers, failures)()
            checked += 1
    print(f"fuzzed {checked} operation/identity pairs")
    assert checked >= 10, f"only {checked} operation/identity pairs fuzzed"
    return failures


async def test_no_operation_answers_5xx(live, redis):
    for n in range(3):
        await enqueue(
            redis, live.settings.redis_prefix, make_task(f"fz{n}-{live.settings.redis_prefix}")
        )
    identities = {
        "admin": ADMIN,
        "reviewer": {"Authorization": f"Bearer {await make_user(live, 'fuzzy', level='L3')}"},
        "auditor": {"Authorization": f"Bearer {await make_user(live, 'audi', role='auditor')}"},
    }
    failures = await asyncio.to_thread(_fuzz, live.url, identities)
    assert failures == []
