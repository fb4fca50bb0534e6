"""The widget over HTTP (no browser): caching, escaping, posting, headers."""

from __future__ import annotations

import asyncio
import html
import re
import traceback
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from agupshup import Client, FakeClock
from agupshup.emulator import EmulatorServer
from agupshup.errors import GroupNotFound
from agupshup.widget import (
    BAD_NAME,
    NOT_FOUND,
    Busy,
    TTLCache,
    Widget,
    embed_snippet,
    normalize_color,
)

STREAM = "groups.getstream"


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as response:
        return response.status, await response.text()


async def test_embed_shows_latest_messages(http: aiohttp.ClientSession, widget_url: str) -> None:
    status, page = await get(http, widget_url + "/embed/jumpy?color=%2310ac84")
    assert status == 200
    assert page.count('class="message"') == 15
    assert page.index("jumpy message 120") < page.index("jumpy message 106")
    assert "--accent:#10ac84" in page
    assert '<form class="post"' in page  # the demo user owns jumpy


async def test_many_views_cost_one_call(
    http: aiohttp.ClientSession, widget_url: str, gupshup_server: EmulatorServer, widget: Widget
) -> None:
    results = await asyncio.gather(
        *(get(http, widget_url + "/embed/jumpy") for _ in range(20)),
        *(get(http, widget_url + "/embed/nobody-here") for _ in range(5)),
        *(get(http, widget_url + "/api/groups/nobody-here") for _ in range(5)),
    )
    assert [s for s, _ in results[:20]] == [200] * 20
    assert all(s == 404 and html.escape(NOT_FOUND) in p for s, p in results[20:25])
    assert all(s == 200 and '"ok": false' in p for s, p in results[25:])
    # one getStream for jumpy, one for the unknown group (refusals are cached too)
    assert gupshup_server.emulator.calls[STREAM] == 2
    assert widget.pages.fetches == 2


async def test_impossible_group_names_cost_nothing(
    http: aiohttp.ClientSession, widget_url: str, gupshup_server: EmulatorServer
) -> None:
    for name in ("%3Cscript%3E", "a%20b", "-x", "x" * 70):
        status, page = await get(http, f"{widget_url}/embed/{name}")
        assert status == 404
        assert html.escape(BAD_NAME) in page  # the naming rule, not "doesn't exist"
    assert gupshup_server.emulator.calls[STREAM] == 0


async def test_private_and_unknown_groups_look_the_same(
    http: aiohttp.ClientSession, widget_url: str
) -> None:
    for group in ("secret", "no-such-group"):
        status, page = await get(http, f"{widget_url}/embed/{group}")
        assert status == 404
        assert html.escape(NOT_FOUND) in page
        assert "<form" not in page
        async with http.get(f"{widget_url}/api/groups/{group}") as r:
            assert await r.json() == {"ok": False, "group": group, "error": NOT_FOUND,
                                      "count": 0}


async def test_customizer_renders_embed_code_without_javascript(
    http: aiohttp.ClientSession, widget_url: str
) -> None:
    status, page = await get(http, widget_url + "/?group=jumpy&color=%23ABC")
    assert status == 200
    snippet = embed_snippet(widget_url, "jumpy", "#aabbcc")
    assert html.escape(snippet) in page
    assert 'id="group-error" class="error" role="alert" hidden' in page
    status, page = await get(http, widget_url + "/?group=secret")
    assert "hidden>" not in page.split('id="group-error"')[1][:40]
    assert '<textarea id="embed" readonly rows="4" spellcheck="false"></textarea>' in page


async def test_user_text_is_escaped_everywhere(
    http: aiohttp.ClientSession, widget_url: str
) -> None:
    evil = '<img src=x onerror=alert(1)>"\'&'
    async with http.post(widget_url + "/embed/jumpy?color=%23123456",
                         data={"text": evil, "color": "#123456"},
                         allow_redirects=False) as r:
        assert r.status == 303
        assert r.headers["Location"].startswith("/embed/jumpy?color=%23123456&posted=")
    _, page = await get(http, widget_url + "/embed/jumpy")
    assert "<img src=x" not in page
    assert html.escape(evil) in page
    # query and path values are escaped too
    _, page = await get(http, widget_url + '/?group="><script>alert(1)</script>'
                                           '&color=red;}body{color:red')
    assert "<script>alert" not in page
    assert "--accent:#e4572e" in page  # an invalid colour falls back to the default
    assert 'value="&quot;&gt;&lt;script&gt;' in page


async def test_pages_carry_a_strict_csp(http: aiohttp.ClientSession, widget_url: str) -> None:
    async with http.get(widget_url + "/embed/jumpy") as r:
        csp = r.headers["Content-Security-Policy"]
        page = await r.text()
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce is not None
    assert f'<style nonce="{nonce.group(1)}">' in page
    assert "script-src 'self'" in csp
    assert "frame-ancestors *" in csp
    assert "<script>" not in page
    assert " style=" not in page
    async with http.get(widget_url + "/") as r:
        assert "frame-ancestors 'self'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"


async def test_post_appears_at_once_and_costs_one_refetch(
    http: aiohttp.ClientSession, widget_url: str, gupshup_server: EmulatorServer
) -> None:
    await get(http, widget_url + "/embed/demo-bot")
    async with http.post(widget_url + "/embed/demo-bot", data={"text": "fresh news"}) as r:
        assert r.status == 200  # followed the 303
        page = await r.text()
    assert "Posted!" in page
    first = page.index('class="message"')
    assert page.index("fresh news") > first
    assert page.index("fresh news") < page.index("demo-bot says hello #10")
    assert gupshup_server.emulator.calls[STREAM] == 2
    assert gupshup_server.emulator.calls["groups.postmessage"] == 1


async def test_post_refusals_are_shown_not_raised(
    http: aiohttp.ClientSession, widget_url: str, gupshup_server: EmulatorServer
) -> None:
    cases = {
        "jumpy": ("x" * 161, "Not posted: 161 characters"),
        "cricket": ("hi", "doesn&#x27;t take posts for this group"),  # alice's group
    }
    for group, (text, expected) in cases.items():
        async with http.post(f"{widget_url}/embed/{group}", data={"text": text}) as r:
            assert r.status == 400
            assert expected in await r.text()
    async with http.post(widget_url + "/embed/jumpy", data={"text": "   "}) as r:
        assert "Write something first." in await r.text()
    assert gupshup_server.emulator.calls["groups.postmessage"] == 0


async def test_posts_are_rate_limited(owner: Client, http: aiohttp.ClientSession) -> None:
    from agupshup.widget import serving

    async with serving(Widget(owner, max_posts=2), "127.0.0.1", 0) as url:
        statuses = []
        for n in range(3):
            async with http.post(url + "/embed/jumpy", data={"text": f"post {n}"},
                                 allow_redirects=False) as r:
                statuses.append(r.status)
                text = await r.text()
        assert statuses == [303, 303, 400]
        assert "Too many posts right now" in text


async def test_read_only_widget_has_no_post_box(
    owner: Client, http: aiohttp.ClientSession, gupshup_server: EmulatorServer
) -> None:
    from agupshup.widget import serving

    async with serving(Widget(owner, read_only=True), "127.0.0.1", 0) as url:
        _, page = await get(http, url + "/embed/jumpy")
    assert "<form" not in page
    assert gupshup_server.emulator.calls["users.login"] == 0


async def test_cache_expires_after_ttl() -> None:
    clock = FakeClock()
    cache: TTLCache[int] = TTLCache(10.0, clock=clock)
    calls = 0

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return calls

    assert await asyncio.gather(*(cache.get("g", fetch) for _ in range(10))) == [1] * 10
    await clock.advance(9.9)
    assert await cache.get("g", fetch) == 1
    await clock.advance(0.2)
    assert await cache.get("g", fetch) == 2
    cache.invalidate("g")
    assert await cache.get("g", fetch) == 3


async def test_cache_refuses_too_many_misses_at_once() -> None:
    cache: TTLCache[int] = TTLCache(10.0, max_pending=2)
    gate = asyncio.Event()

    async def slow() -> int:
        await gate.wait()
        return 1

    first = asyncio.ensure_future(cache.get("a", slow))
    second = asyncio.ensure_future(cache.get("b", slow))
    await asyncio.sleep(0)
    with pytest.raises(Busy):
        await cache.get("c", slow)
    gate.set()
    assert await asyncio.gather(first, second) == [1, 1]


def test_colours_are_normalised() -> None:
    assert normalize_color("#ABC") == "#aabbcc"
    assert normalize_color("10ac84") == "#10ac84"
    assert normalize_color("red") == "#e4572e"
    assert normalize_color("#123456;}body{x:y") == "#e4572e"
    assert normalize_color(None) == "#e4572e"


async def test_cached_refusals_do_not_grow_their_traceback() -> None:
    cache: TTLCache[int] = TTLCache(10.0, clock=FakeClock())

    async def refuse() -> int:
        raise GroupNotFound("groups.getStream", 2, "no such group")

    depths = []
    for _ in range(20):
        with pytest.raises(GroupNotFound) as info:
            await cache.get("g", refuse)
        depths.append(len(traceback.extract_tb(info.value.__traceback__)))
    assert cache.fetches == 1
    assert depths[-1] == depths[1]  # every hit raises with its own frames only


async def test_closing_the_cache_cancels_fetches_in_flight() -> None:
    cache: TTLCache[int] = TTLCache(10.0)
    started = asyncio.Event()

    async def forever() -> int:
        started.set()
        await asyncio.Event().wait()
        return 1

    waiter = asyncio.ensure_future(cache.get("g", forever))
    await started.wait()
    await cache.aclose()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert asyncio.all_tasks() == {asyncio.current_task()}
