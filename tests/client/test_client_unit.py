"""Client behaviour that needs no broker: validation, results, argument checks."""

from __future__ import annotations

import pytest

from hitl_shared.client import (
    ClientNotStartedError,
    HitlClient,
    InvalidEventError,
    SubmitResult,
)
from hitl_shared.events import Release
from hitl_shared.settings import Settings
from tests.factories import llm_output

pytestmark = pytest.mark.unit


@pytest.fixture
def client() -> HitlClient:
    return HitlClient(Settings(kafka_bootstrap="127.0.0.1:1"), app="support-bot")


def _raw(**overrides):
    raw = llm_output("u-1").model_dump(mode="json")
    raw.update(overrides)
    return raw


def test_bad_output_error_names_every_bad_field(client):
    raw = _raw(confidence=1.5)
    del raw["output_text"]
    with pytest.raises(InvalidEventError) as caught:
        client.validate(raw)
    message = str(caught.value)
    assert message.startswith("invalid LLM output:")
    assert "output_text: Field required" in message and "confidence:" in message
    assert {e["loc"][0] for e in caught.value.errors} == {"output_text", "confidence"}
    assert isinstance(caught.value, ValueError)


def test_bad_item_id_and_wrong_type_are_refused(client):
    with pytest.raises(InvalidEventError, match="item_id"):
        client.validate(_raw(item_id="has spaces/and slashes"))
    with pytest.raises(TypeError, match="LLMOutput or a mapping"):
        client.validate("just text")  # type: ignore[arg-type]


def test_mapping_gets_the_clients_app_and_models_pass_through(client):
    raw = _raw()
    del raw["app"]
    assert client.validate(raw).app == "support-bot"
    model = llm_output("u-2", app="other")
    assert client.validate(model) is model


async def test_bad_input_is_refused_before_any_io(client):
    with pytest.raises(InvalidEventError):
        await client.submit({"item_id": "x"})
    with pytest.raises(ValueError, match="timeout must be positive"):
        await client.submit(llm_output("u-3"), wait=True, timeout=0)
    with pytest.raises(ClientNotStartedError):
        await client.submit(llm_output("u-3"))


async def test_feedback_validation(client):
    with pytest.raises(ValueError, match="needs a rating, a report, a signal or a comment"):
        await client.feedback("u-1")
    with pytest.raises(InvalidEventError, match="rating"):
        await client.feedback("u-1", rating=7)
    with pytest.raises(InvalidEventError, match="report"):
        await client.feedback("u-1", report="rude")  # type: ignore[arg-type]
    anonymous = HitlClient(Settings(kafka_bootstrap="127.0.0.1:1"))
    with pytest.raises(ValueError, match="needs the app name"):
        await anonymous.feedback("u-1", rating=3)


def test_subscription_kinds_are_checked(client):
    with pytest.raises(ValueError, match="kinds"):
        client.subscribe(kinds=("release", "bogus"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kinds"):
        client.subscribe(kinds=())


def test_results_tell_the_app_what_to_do():
    timeout = SubmitResult("i", "timeout", waited_s=2.0)
    assert timeout.timed_out and not timeout.released
    assert timeout.text_or("fallback") == "fallback"
    release = Release(item_id="i", app="a", outcome="rejected", text="Sorry", policy_version="v")
    rejected = SubmitResult("i", "rejected", text="Sorry", release=release)
    assert rejected.released and rejected.text_or("fallback") == "Sorry"
    with pytest.raises(AttributeError):
        rejected.status = "approved"  # type: ignore[misc]


def test_release_listener_resolves_only_matching_items(client):
    import asyncio

    async def scenario() -> None:
        waiter = client._join("mine")
        client._note_submitted("mine")
        other = Release(item_id="other", app="a", outcome="approved", text="x", policy_version="v")
        client._on_record(b"other", other.to_bytes())
        client._on_record(b"mine", b"not json")
        assert not waiter.future.done()
        mine = Release(item_id="mine", app="a", outcome="edited", text="y", policy_version="v")
        client._on_record(b"mine", mine.to_bytes())
        assert waiter.future.result() == mine
        client._leave("mine", waiter)
        assert client._recent["mine"] == mine and "mine" not in client._waiters

    asyncio.run(scenario())
