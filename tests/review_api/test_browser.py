"""The reviewer UI in a real headless Chromium, against the real app, broker and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from hitl_router.app import wire as wire_router
from hitl_shared.events import ContextDocument, Flag
from tests.review_api.conftest import Live, make_user
from tests.review_api.helpers import enqueue, make_task
from tests.support import by_item, read_until, running

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
XSS = (
    '<script>window.__xss="script"</script><img src=x onerror="window.__xss=\'img\'">'
    "<a href=\"javascript:window.__xss='link'\">click</a><svg onload=\"window.__xss='svg'\">"
)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


async def _release_of(live: Live, item_id: str) -> dict[str, Any]:
    """The item's release, read from ``llm.released`` once it is there."""
    released = await read_until(live.settings, live.settings.topics.llm_released, by_item(item_id))
    return next(r for r in released if r["item_id"] == item_id)


async def _sign_in(browser: Browser, live: Live, token: str) -> Page:
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "Content Security Policy" not in msg.text
            else None
        ),
    )
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(f"{live.url}/ui/login")
    await page.fill("#token", token)
    await page.click("#login-submit")
    await page.wait_for_url("**/ui/task")
    await page.wait_for_selector("body[data-ready='1']", state="attached")
    return page


def _flags(text: str) -> tuple[Flag, ...]:
    card = text.index("4111")
    email = text.index("jo@example.com")
    return (
        Flag(
            detector="pii",
            category="payment_card",
            severity="critical",
            score=0.99,
            start=card,
            end=card + 19,
            explanation="Luhn-valid card number",
        ),
        Flag(
            detector="pii",
            category="email",
            severity="medium",
            score=0.9,
            start=email,
            end=email + len("jo@example.com"),
            explanation="Email address of a person",
        ),
    )


async def test_reviewer_edits_labels_and_approves_with_the_keyboard(live, redis, browser):
    item_id = f"ui-{live.settings.redis_prefix}"
    text = "Sure 😀! Card 4111 1111 1111 1111 belongs to jo@example.com, see you."
    task = make_task(
        item_id,
        tier="high",
        text=text,
        flags=_flags(text),
        confidence=0.41,
        context=(ContextDocument(doc_id="kb-7", text="Never repeat card numbers.", source="kb"),),
    )
    await enqueue(redis, live.settings.redis_prefix, task)
    token = await make_user(live, "rita", level="L2")
    edited = "Sure! The card ending in 1111 is on file, see you."

    async with running(live.settings, wire_router, redis):
        page = await _sign_in(browser, live, token)
        await page.keyboard.press("n")
        await expect(page.locator("#work")).to_be_visible()
        marks = page.locator("#output mark.flag")
        await expect(marks).to_have_count(2)
        await expect(marks.nth(0)).to_have_text("4111 1111 1111 1111")
        await expect(marks.nth(1)).to_have_text("jo@example.com")
        assert "Luhn-valid card number" in (await marks.nth(0).get_attribute("title") or "")
        await marks.nth(1).hover()
        await expect(page.locator("#prompt")).to_have_text(task.screened.output.prompt)
        await expect(page.locator("#context")).to_contain_text("Never repeat card numbers.")
        await expect(page.locator("#confidence-text")).to_have_text("0.41")

        await page.reload()  # a reload keeps the claim rather than stranding it
        await expect(page.locator("#item-id")).to_have_text(item_id)
        await expect(page.locator("#output mark.flag")).to_have_count(2)

        await page.keyboard.press("e")
        await expect(page.locator("#editor")).to_be_focused()
        await page.fill("#editor", edited)
        await expect(page.locator("#diff ins").first).to_be_visible()
        await expect(page.locator("#diff del", has_text="4111")).to_have_count(1)
        await page.keyboard.press("Escape")
        await page.keyboard.press("5")  # the fifth label: PII
        await expect(page.locator("#label-pii")).to_be_checked()
        await page.fill("#notes", "card and email removed")
        await page.keyboard.press("Escape")  # leaves the notes field; shortcuts work again
        await page.screenshot(path=str(ARTIFACTS / "review-task-view.png"), full_page=True)

        await page.keyboard.press("a")
        await expect(page.locator("#status")).to_contain_text("Decision recorded")
        release = await _release_of(live, item_id)
    assert release["outcome"] == "edited" and release["text"] == edited
    assert release["decided_by"] == ["rita"]
    decisions = await read_until(
        live.settings, live.settings.topics.review_decisions, lambda rs: len(rs) >= 1
    )
    assert decisions[0]["labels"] == ["pii"] and decisions[0]["notes"] == "card and email removed"

    await page.goto(f"{live.url}/ui/history?item={item_id}")
    await expect(page.locator("#verified")).to_have_text("chain verified")
    await expect(page.locator("#final")).to_have_text(edited)
    await expect(page.locator("#actions li")).to_have_count(2)
    await page.screenshot(path=str(ARTIFACTS / "review-item-history.png"), full_page=True)
    assert page.errors == []  # type: ignore[attr-defined]


async def test_xss_payloads_in_model_text_stay_inert(live, redis, browser):
    item_id = f"xss-{live.settings.redis_prefix}"
    text = f"Hello {XSS} 4111 1111 1111 1111 bye"
    start = text.index("<img")
    flags = (
        Flag(
            detector="inj",
            category="prompt_injection",
            severity="high",
            score=0.8,
            start=start,
            end=start + 30,
            explanation="<img src=x onerror=\"window.__xss='explanation'\">",
        ),
    )
    task = make_task(
        item_id,
        text=text,
        flags=flags,
        prompt=f"prompt {XSS}",
        context=(ContextDocument(doc_id=f"d{XSS}"[:200], text=XSS, source=XSS),),
    )
    await enqueue(redis, live.settings.redis_prefix, task)
    token = await make_user(live, "xavier")
    admin = await make_user(live, "ada", role="admin")
    page = await _sign_in(browser, live, token)
    await page.keyboard.press("n")
    await expect(page.locator("#work")).to_be_visible()
    await expect(page.locator("#output")).to_have_text(text)
    await page.keyboard.press("e")
    await page.fill("#editor", f"{XSS} edited")
    await page.screenshot(path=str(ARTIFACTS / "review-xss-inert.png"), full_page=True)
    injected = await page.evaluate(
        "() => ({xss: window.__xss, nodes: document.querySelectorAll("
        "'main img, main script, main svg, main a[href^=\"javascript\"]').length})"
    )
    assert injected == {"xss": None, "nodes": 0} or injected == {"nodes": 0}
    # and were markup ever to slip in, the CSP would refuse to run inline script
    blocked = await page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.__inline = 1'; document.body.appendChild(s);"
        " return window.__inline === undefined; }"
    )
    assert blocked is True
    await page.keyboard.press("Escape")
    await page.keyboard.press("r")  # asks for a reason first
    await expect(page.locator("#reason")).to_be_focused()
    await page.keyboard.type("prompt injection echo")
    await page.keyboard.press("Enter")
    await expect(page.locator("#status")).to_contain_text("Decision recorded")

    # the same text on the history page and the dashboard, as an admin
    await page.evaluate("token => sessionStorage.setItem('hitl.token', token)", admin)
    await page.goto(f"{live.url}/ui/history?item={item_id}")
    await expect(page.locator("#original")).to_have_text(text)
    await page.goto(f"{live.url}/ui/dashboard")
    await expect(page.locator("#live")).to_have_text("live")
    await expect(page.locator("#reviewers tbody tr")).to_have_count(1)
    await page.screenshot(path=str(ARTIFACTS / "review-dashboard.png"), full_page=True)
    after = await page.evaluate("() => window.__xss")
    assert after is None
    assert page.errors == []  # type: ignore[attr-defined]


async def test_second_approver_sees_the_first_decision_on_a_critical_item(live, redis, browser):
    item_id = f"crit-{live.settings.redis_prefix}"
    task = make_task(item_id, tier="critical", text="Card 4111 1111 1111 1111 is on file.")
    await enqueue(redis, live.settings.redis_prefix, task)
    alice = await make_user(live, "alice", level="L2")
    bob = await make_user(live, "bob", level="L3")
    edited = "The card ending in 1111 is on file."

    async with running(live.settings, wire_router, redis):
        async with httpx.AsyncClient(
            base_url=live.url, headers={"Authorization": f"Bearer {alice}"}
        ) as client:
            claim = (await client.post("/api/tasks/claim")).json()
            first = await client.post(
                f"/api/tasks/{claim['task_id']}/decision",
                json={
                    "fence": claim["fence"],
                    "verdict": "edit",
                    "edited_text": edited,
                    "labels": ["pii"],
                    "notes": "masked the card",
                },
            )
            assert first.json()["next_step"] == "second_approval"

        page = await _sign_in(browser, live, bob)
        await page.keyboard.press("n")
        await expect(page.locator("#previous")).to_be_visible()
        await expect(page.locator("#previous-list")).to_contain_text("alice (L2) edit")
        await expect(page.locator("#previous-list")).to_contain_text("masked the card")
        await expect(page.locator("#approvals")).to_have_text("1 / 2")
        await expect(page.locator("#editor")).to_have_value(edited)
        await page.screenshot(path=str(ARTIFACTS / "review-second-approval.png"), full_page=True)
        await page.keyboard.press("a")
        await expect(page.locator("#status")).to_contain_text("Decision recorded")
        release = await _release_of(live, item_id)
    assert release["outcome"] == "edited" and release["text"] == edited
    assert page.errors == []  # type: ignore[attr-defined]
