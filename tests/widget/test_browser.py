"""The widget in headless Chromium (Playwright for Python, the system's chromium).

Screenshots are kept under ``test-artifacts/`` at the repository root (gitignored).

Playwright is imported when a browser is needed, not when this module is collected: without
it these tests fail, each saying so, and the rest of the suite still runs (an import error
here used to stop the whole run at collection).
"""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from agupshup.emulator import EmulatorServer
from agupshup.widget import BAD_NAME, NOT_FOUND, Widget, embed_snippet

if TYPE_CHECKING:
    import playwright.async_api as playwright_api


def _playwright() -> ModuleType:
    try:
        import playwright.async_api as api
    except ImportError:
        # A skip would hide the missing check, as for chromium below.
        pytest.fail("playwright is missing: `bash .ci/run` installs the locked test deps")
    return api


def expect(target: Any) -> Any:
    return _playwright().expect(target)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"



@pytest_asyncio.fixture
async def page() -> AsyncIterator[playwright_api.Page]:
    if CHROMIUM is None:
        # A skip would hide the missing check; .ci/run installs Debian's chromium.
        pytest.fail("chromium is missing: `bash .ci/run` installs it (apt-get)")
    async with _playwright().async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context = await browser.new_context(viewport={"width": 1100, "height": 720})
            context.set_default_timeout(10_000)
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page
            assert errors == [], f"JavaScript errors: {errors}"
        finally:
            await browser.close()


async def shot(page: playwright_api.Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name), full_page=True)


async def test_customize_preview_embed_and_post(
    page: playwright_api.Page, widget_url: str, widget: Widget, gupshup_server: EmulatorServer
) -> None:
    # 1. The customizer: enter a group, choose a colour, read the embed code.
    await page.goto(widget_url + "/")
    await page.fill("#group", "jumpy")
    embed = page.locator("#embed")
    await expect(embed).to_have_value(re.compile(r"/embed/jumpy\?color="))
    await page.fill("#color", "#10ac84")
    expected = embed_snippet(widget_url, "jumpy", "#10ac84")
    await expect(embed).to_have_value(expected)
    await page.click(".swatch[data-color='#2e86de']")
    expected = embed_snippet(widget_url, "jumpy", "#2e86de")
    await expect(embed).to_have_value(expected)
    await expect(page.locator("#copy")).to_be_enabled()
    await expect(page.locator("#copy")).to_have_css("background-color", "rgb(46, 134, 222)")
    await expect(page.locator("#group-error")).to_be_hidden()

    # The live preview shows the group's latest messages in the chosen colour.
    preview = page.frame_locator("#preview")
    await expect(preview.locator(".message").first).to_contain_text("jumpy message 120")
    await expect(preview.locator("header")).to_have_css("background-color", "rgb(46, 134, 222)")
    await shot(page, "widget-customizer.png")

    # 2. The embedded view, loaded from the embed code's own URL.
    src = re.search(r'src="([^"]+)" width="(\d+)" height="(\d+)"', await embed.input_value())
    assert src is not None
    await page.set_viewport_size({"width": int(src.group(2)), "height": int(src.group(3))})
    await page.goto(html.unescape(src.group(1)))
    messages = page.locator(".message")
    await expect(messages).to_have_count(15)
    await expect(messages.first).to_contain_text("jumpy message 120")
    await expect(page.locator("header")).to_have_css("background-color", "rgb(46, 134, 222)")

    # 3. Post through the form; the new message appears on top (and is not markup).
    text = "hello from chromium <b>bold?</b>"
    await page.fill("input[name=text]", text)
    await page.click("form.post button")
    await expect(page.locator(".banner.ok")).to_have_text("Posted!")
    await expect(messages.first.locator(".text")).to_have_text(text)
    await expect(messages.first.locator("b")).to_have_count(0)
    await expect(page.locator("input[name=text]")).to_have_value("")
    assert gupshup_server.emulator.calls["groups.postmessage"] == 1
    await shot(page, "widget-embed.png")


async def test_private_group_shows_the_private_group_message(
    page: playwright_api.Page, widget_url: str
) -> None:
    await page.goto(widget_url + "/")
    await page.fill("#group", "secret")
    error = page.locator("#group-error")
    await expect(error).to_be_visible()
    await expect(error).to_have_text(NOT_FOUND)
    await expect(page.locator("#embed")).to_have_value("")
    await expect(page.locator("#copy")).to_be_disabled()
    preview = page.frame_locator("#preview")
    await expect(preview.locator(".empty.error")).to_have_text(NOT_FOUND)
    await shot(page, "widget-private.png")

    # Back to a public group: the error goes away.
    await page.fill("#group", "cricket")
    await expect(error).to_be_hidden()
    await expect(preview.locator(".message").first).to_contain_text("cricket score update 40")

    # The embedded view of the private group says the same, with no post box.
    await page.goto(widget_url + "/embed/secret")
    await expect(page.locator(".empty.error")).to_have_text(NOT_FOUND)
    await expect(page.locator("form")).to_have_count(0)


async def test_hostile_input_never_runs(page: playwright_api.Page, widget_url: str) -> None:
    payload = "<img src=x onerror=\"window.pwned=1\">"
    await page.goto(widget_url + "/")
    await page.fill("#group", payload)
    await expect(page.locator("#group-error")).to_have_text(BAD_NAME)  # no group is named so
    await page.goto(widget_url + "/embed/demo-bot")
    await page.fill("input[name=text]", payload)
    await page.click("form.post button")
    await expect(page.locator(".message").first.locator(".text")).to_have_text(payload)
    assert await page.evaluate("window.pwned") is None


async def failed_responses(page: playwright_api.Page) -> list[str]:
    """Collects every answer of 400 or more the page gets (the favicon included)."""
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return failed


async def test_the_customizer_fits_a_phone(page: playwright_api.Page, widget_url: str) -> None:
    failed = await failed_responses(page)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(widget_url + "/?group=jumpy")
    preview = page.frame_locator("#preview")
    await expect(preview.locator(".message").first).to_contain_text("jumpy message 120")
    await expect(page.locator("#embed")).to_have_value(re.compile("/embed/jumpy"))
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    for box in await page.locator(".card, #preview, #group, #copy").all():
        bounds = await box.bounding_box()
        assert bounds is not None
        assert bounds["x"] >= 0, bounds
        assert bounds["x"] + bounds["width"] <= 390, bounds
    await shot(page, "widget-phone.png")
    icon = "fetch(document.querySelector('link[rel=icon]').href).then(r => r.status)"
    assert await page.evaluate(icon) == 200
    assert await page.evaluate("fetch('/favicon.ico').then(r => r.status)") == 200
    assert failed == []


async def test_the_embed_code_works_in_a_page_opened_from_a_file(
    page: playwright_api.Page, widget_url: str, tmp_path: Path
) -> None:
    blog = tmp_path / "blog.html"
    snippet = embed_snippet(widget_url, "jumpy", "#10ac84")
    blog.write_text(f"<!doctype html><title>my blog</title><h1>My blog</h1>{snippet}")
    await page.goto(blog.as_uri())
    frame = page.frame_locator("iframe")
    await expect(frame.locator(".message").first).to_contain_text("jumpy message 120")
    await expect(frame.locator("header")).to_have_css("background-color", "rgb(16, 172, 132)")


async def test_the_embed_fits_a_320_px_page_and_uses_no_obsolete_attributes(
    page: playwright_api.Page, widget_url: str, tmp_path: Path
) -> None:
    snippet = embed_snippet(widget_url, "jumpy", "#10ac84")
    assert "frameborder" not in snippet
    assert "scrolling" not in snippet
    blog = tmp_path / "phone.html"
    blog.write_text('<!doctype html><meta name="viewport" content="width=device-width">'
                    f"<title>my blog</title><body style='margin:0'>{snippet}")
    await page.set_viewport_size({"width": 320, "height": 640})
    await page.goto(blog.as_uri())
    frame = page.frame_locator("iframe")
    await expect(frame.locator(".message").first).to_contain_text("jumpy message 120")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 320
    bounds = await page.locator("iframe").bounding_box()
    assert bounds is not None
    assert bounds["x"] + bounds["width"] <= 320, bounds
    await shot(page, "widget-320.png")


async def test_the_post_box_counts_characters_and_times_are_relative(
    page: playwright_api.Page, widget_url: str
) -> None:
    await page.goto(widget_url + "/embed/demo-bot")
    box, count = page.locator("input[name=text]"), page.locator("#count")
    await expect(count).to_have_text("0/160")
    await box.fill("x" * 170)
    await expect(box).to_have_value("x" * 170)  # not cut to 160 without a word
    await expect(count).to_have_text("170/160")
    await expect(page.locator("form.post button")).to_be_disabled()
    await box.fill("a fresh message")
    await expect(count).to_have_text("15/160")
    await page.click("form.post button")
    first = page.locator(".message").first
    await expect(first.locator(".text")).to_have_text("a fresh message")
    await expect(first.locator("time")).to_have_text("just now")
    await expect(first.locator("time")).to_have_attribute("title", re.compile(r"UTC$"))


async def test_the_preview_is_a_hint_until_a_group_is_chosen_and_names_follow_the_rule(
    page: playwright_api.Page, widget_url: str
) -> None:
    await page.goto(widget_url + "/")
    await expect(page.locator("#preview")).to_be_hidden()
    await expect(page.locator("#preview-hint")).to_be_visible()
    await page.fill("#group", "bad name!")
    await expect(page.locator("#group-error")).to_have_text(BAD_NAME)
    await page.fill("#group", "jumpy")
    await expect(page.locator("#preview-hint")).to_be_hidden()
    preview = page.frame_locator("#preview")
    await expect(preview.locator(".message").first).to_contain_text("jumpy message 120")
