"""The app-side catalog: TTL cache, one refresh at a time, stale state when down, stamping."""

from __future__ import annotations

import asyncio

import pytest

from hitl_shared.events import LLMOutput
from hitl_shared.prompt_catalog import CatalogError, PromptCatalog, stamp
from hitl_shared.prompts import Experiment, Serving, new_version, render
from tests.factories import llm_output
from tests.prompts.helpers import content

pytestmark = pytest.mark.unit
V1 = new_version("support", "1", content(), "ann")
V2 = new_version("support", "2", content(task="B {{ question }}"), "ann")


class Registry:
    def __init__(self) -> None:
        self.serving = Serving(template_id="support", production=V1)
        self.calls = 0
        self.down = False

    async def fetch(self, template_id: str) -> Serving:
        self.calls += 1
        await asyncio.sleep(0.01)
        if self.down:
            raise ConnectionError("registry down")
        return self.serving


async def test_cached_for_the_ttl_then_refreshed():
    now = [0.0]
    registry = Registry()
    catalog = PromptCatalog(registry.fetch, ttl_s=30, clock=lambda: now[0])
    versions = await asyncio.gather(*(catalog.version_for("support", f"k{n}") for n in range(20)))
    assert {v.version for v in versions} == {"1"} and registry.calls == 1
    registry.serving = Serving(template_id="support", production=V2)
    now[0] = 29.9
    assert (await catalog.version_for("support")).version == "1"
    now[0] = 30.0
    assert (await catalog.version_for("support")).version == "2" and registry.calls == 2


async def test_stale_state_serves_when_the_registry_is_down():
    now = [0.0]
    registry = Registry()
    catalog = PromptCatalog(registry.fetch, ttl_s=1, clock=lambda: now[0])
    await catalog.serving("support")
    registry.down = True
    now[0] = 5
    assert (await catalog.version_for("support")).version == "1"
    with pytest.raises(CatalogError, match="cannot fetch"):
        await catalog.serving("other")


async def test_experiment_arms_by_request_key():
    registry = Registry()
    registry.serving = Serving(
        template_id="support",
        production=V1,
        experiment=Experiment(experiment_id="ab-1", split={"1": 0.5, "2": 0.5}),
        versions={"1": V1, "2": V2},
    )
    catalog = PromptCatalog(registry.fetch)
    chosen = [(await catalog.version_for("support", f"user-{n}")).version for n in range(200)]
    assert set(chosen) == {"1", "2"}
    again = [(await catalog.version_for("support", f"user-{n}")).version for n in range(200)]
    assert chosen == again


def test_stamp_sets_template_id_and_version():
    output = llm_output("i-1", prompt_template_id=None, prompt_template_version=None)
    stamped = stamp(output, V2)
    assert isinstance(stamped, LLMOutput)
    assert (stamped.prompt_template_id, stamped.prompt_template_version) == ("support", "2")
    rendered = render(V1, {"question": "Hi"})
    fields = stamp({"item_id": "i-2", "prompt": "x"}, rendered, set_prompt=True)
    assert fields["prompt_template_version"] == "1" and fields["prompt"] == rendered.text
