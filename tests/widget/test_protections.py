"""The widget protects its owner's quota and account (rules at the top of
``agupshup/widget/app.py``): per-visitor and global miss limits, failures cached briefly and
never retried, stale pages rather than errors, an allow-list, a loud failed login, a favicon,
framing from ``file:`` pages, and a 400 for form bodies that are not UTF-8."""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from agupshup import Client, FakeClock
from agupshup.emulator import EmulatorServer, FaultSpec
from agupshup.emulator.seed import DEMO_PHONE
from agupshup.models import Group, Message
from agupshup.widget import NOT_FOUND, Widget, serving
from agupshup.widget.app import BUSY, LIMITED
from agupshup.widget.cache import Limited

STREAM = "groups.getstream"
WHO = "X-Real-IP"  # the tests play several visitors through a "trusted proxy" header


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def view(
    http: aiohttp.ClientSession, url: str, group: str, visitor: str = "198.51.100.1"
) -> tuple[int, str]:
    async with http.get(f"{url}/embed/{group}", headers={WHO: visitor}) as response:
        return response.status, await response.text()


def stream_calls(server: EmulatorServer) -> int:
    return server.emulator.calls[STREAM]


async def test_made_up_group_names_cost_at_most_the_visitor_limit(
    owner: Client, http: aiohttp.ClientSession, gupshup_server: EmulatorServer
) -> None:
    async with serving(Widget(owner, visitor_header=WHO), "127.0.0.1", 0) as url:
        statuses = [(await view(http, url, f"made-up-{n}"))[0] for n in range(40)]
        assert stream_calls(gupshup_server) == 10  # not 40
        assert statuses == [404] * 10 + [429] * 30
        _, page = await view(http, url, "made-up-99")
        assert html.escape(LIMITED) in page
        async with http.get(f"{url}/api/groups/made-up-99", headers={WHO: "198.51.100.1"}) as r:
            assert (r.status, (await r.json())["error"]) == (429, LIMITED)
        # Another visitor is not punished for the first one.
        assert (await view(http, url, "jumpy", "203.0.113.7"))[0] == 200
    assert stream_calls(gupshup_server) == 11


async def test_many_visitors_together_stay_under_the_global_limit(
    owner: Client, http: aiohttp.ClientSession, gupshup_server: EmulatorServer
) -> None:
    async with serving(Widget(owner, visitor_header=WHO), "127.0.0.1", 0) as url:
        for n in range(40):
            await view(http, url, f"made-up-{n}", f"198.51.100.{n}")
    assert stream_calls(gupshup_server) == 20


async def test_ipv6_visitors_are_counted_by_their_64(
    owner: Client, http: aiohttp.ClientSession, gupshup_server: EmulatorServer
) -> None:
    # Through the real remote address: the widget listens on ::1, each request is from ::1.
    async with serving(Widget(owner), "::1", 0) as url:
        for n in range(12):
            await view(http, url, f"made-up-{n}")
    assert stream_calls(gupshup_server) == 10


async def test_ipv6_visitors_behind_the_proxy_header_are_counted_by_their_64(
    owner: Client, http: aiohttp.ClientSession, gupshup_server: EmulatorServer
) -> None:
    """W1: one visitor rotating through its /64 behind ``visitor_header`` used to get a
    limit per address: unlimited lookups, and the global budget used up."""
    async with serving(Widget(owner, visitor_header=WHO), "127.0.0.1", 0) as url:
        for n in range(12):
            await view(http, url, f"made-up-{n}", f"2001:db8:1:2::{n + 1:x}")
        assert stream_calls(gupshup_server) == 10  # its own limit, not the global 20
        # The same address written otherwise, or IPv4-mapped, is still the same visitor.
        assert (await view(http, url, "made-up-x", "2001:0DB8:1:2:0:0:0:ff"))[0] == 429
        assert (await view(http, url, "made-up-y", "::ffff:198.51.100.1"))[0] == 404
        assert (await view(http, url, "made-up-z", "198.51.100.1"))[0] == 404
    assert stream_calls(gupshup_server) == 12


async def test_a_failing_owner_lookup_is_counted_by_the_miss_limits(
    owner: Client, http: aiohttp.ClientSession, gupshup_server: EmulatorServer
) -> None:
    """W3: the owner's-groups lookup behind ``can_post`` was retried every ``fail_ttl`` on
    failure and counted by no miss limit: visitors kept it costing calls for ever."""
    gupshup_server.emulator.faults.add(FaultSpec("http502", methods=("users.getMyGroups",)))
    clock = FakeClock()
    widget = Widget(owner, visitor_header=WHO, clock=clock, ttl=3600.0, fail_ttl=5.0,
                    visitor_misses=2, max_misses=4)
    async with serving(widget, "127.0.0.1", 0) as url:
        await view(http, url, "jumpy")  # a page that is kept, so lookups alone count below
        for _ in range(60):  # five minutes of visitors, one view every 5 s
            await clock.advance(5.0)
            status, _ = await view(http, url, "jumpy", "203.0.113.9")
            assert status == 200  # read-only pages, never an error
    lookups = gupshup_server.emulator.calls["users.getmygroups"]
    # Two misses a minute for this visitor: at most 2 × 5 in five minutes, and the first view's.
    assert 1 <= lookups <= 2 * 5 + 1, lookups


async def test_the_real_group_survives_junk_with_its_last_page(
    owner: Client, http: aiohttp.ClientSession, gupshup_server: EmulatorServer
) -> None:
    clock = FakeClock()
    async with serving(Widget(owner, visitor_header=WHO, clock=clock), "127.0.0.1", 0) as url:
        assert (await view(http, url, "jumpy"))[0] == 200
        for n in range(40):
            await view(http, url, f"junk-{n}")
        await clock.advance(60.0)  # the page expired; the junk visitor's limit has not... yet
        for n in range(10):
            await view(http, url, f"more-junk-{n}")
        status, page = await view(http, url, "jumpy")
        assert status == 200, "the owner's group must not answer 503 or 429 after junk views"
        assert "jumpy message 120" in page
        assert "Updated 60 s ago" in page  # stale, and says so
        assert (await view(http, url, "jumpy", "203.0.113.7"))[0] == 200


async def test_an_outage_costs_one_call_per_fail_ttl_and_no_retries(
    owner: Client, http: aiohttp.ClientSession, gupshup_server: EmulatorServer
) -> None:
    gupshup_server.emulator.faults.add(FaultSpec("http502", methods=("groups.getStream",)))
    clock = FakeClock()
    async with serving(Widget(owner, clock=clock, fail_ttl=5.0), "127.0.0.1", 0) as url:
        for _ in range(10):
            status, page = await view(http, url, "jumpy")
            assert status == 503
            assert html.escape(BUSY) in page
        assert stream_calls(gupshup_server) == 1  # one call, no retries, then cached
        await clock.advance(5.0)
        await view(http, url, "jumpy")
        assert stream_calls(gupshup_server) == 2


async def test_a_failed_refresh_serves_the_last_page(
    owner: Client, http: aiohttp.ClientSession, gupshup_server: EmulatorServer
) -> None:
    clock = FakeClock()
    async with serving(Widget(owner, clock=clock, ttl=10.0), "127.0.0.1", 0) as url:
        assert (await view(http, url, "jumpy"))[0] == 200
        gupshup_server.emulator.faults.add(FaultSpec("reset", methods=("groups.getStream",)))
        await clock.advance(10.0)
        for _ in range(3):
            status, page = await view(http, url, "jumpy")
            assert (status, "jumpy message 120" in page) == (200, True)
    assert stream_calls(gupshup_server) == 2


async def test_the_allow_list_serves_only_its_groups_and_costs_nothing_else(
    owner: Client, http: aiohttp.ClientSession, gupshup_server: EmulatorServer
) -> None:
    async with serving(Widget(owner, groups=["Jumpy"]), "127.0.0.1", 0) as url:
        status, page = await view(http, url, "cricket")
        assert (status, html.escape(NOT_FOUND) in page) == (404, True)
        assert stream_calls(gupshup_server) == 0
        assert (await view(http, url, "jumpy"))[0] == 200
    assert stream_calls(gupshup_server) == 1


async def test_a_failed_login_is_loud_at_start(
    gupshup_server: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    password = "not-the-password-42"
    caplog.set_level(logging.WARNING, "agupshup.widget")
    async with (
        Client(gupshup_server.base_url, phone=DEMO_PHONE, password=password,
               throttle=None) as client,
        serving(Widget(client), "127.0.0.1", 0),
    ):
        failed = [r for r in caplog.records if "LOGIN FAILED" in r.getMessage()]
        assert [r.levelno for r in failed] == [logging.ERROR]
        assert password not in caplog.text


async def test_a_good_login_is_quiet_and_costs_what_the_post_box_needs(
    owner: Client, gupshup_server: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "agupshup.widget")
    async with serving(Widget(owner), "127.0.0.1", 0):
        pass
    assert caplog.records == []
    assert gupshup_server.emulator.calls["users.getmygroups"] == 1


async def test_widget_reads_are_sent_once(owner: Client) -> None:
    assert owner.retry.attempts > 1
    Widget(owner)
    assert owner.retry.attempts == 1
    kept = owner.retry
    Widget(owner, retries=True)
    assert owner.retry is kept


@pytest.mark.parametrize(
    "body",
    [b"text=\xff\xfe\xfd&color=%23123456", b"text=%FF%FE", b"\xc3\x28=x"],
    ids=["raw", "percent-encoded", "raw-name"],
)
async def test_a_form_body_that_is_not_utf8_is_a_400(
    http: aiohttp.ClientSession, widget_url: str, gupshup_server: EmulatorServer, body: bytes
) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with http.post(widget_url + "/embed/jumpy", data=body, headers=headers) as r:
        assert (r.status, await r.text()) == (400, "the form is not valid UTF-8")
    assert gupshup_server.emulator.calls["groups.postmessage"] == 0


async def test_there_is_a_favicon(http: aiohttp.ClientSession, widget_url: str) -> None:
    for path in ("/favicon.ico", "/favicon.svg"):
        async with http.get(widget_url + path) as r:
            assert (r.status, r.content_type) == (200, "image/svg+xml")
            assert (await r.text()).startswith("<svg")
    async with http.get(widget_url + "/") as r:
        assert '<link rel="icon" href="/favicon.svg"' in await r.text()


async def test_who_may_frame_the_embed_is_a_setting(
    owner: Client, http: aiohttp.ClientSession, widget_url: str
) -> None:
    async with http.get(widget_url + "/embed/jumpy") as r:
        assert "frame-ancestors * file:" in r.headers["Content-Security-Policy"]
    widget = Widget(owner, frame_ancestors="https://blog.example")
    async with serving(widget, "127.0.0.1", 0) as url, http.get(url + "/embed/jumpy") as r:
        assert "frame-ancestors https://blog.example;" in r.headers["Content-Security-Policy"] + ";"


class _AnyGroup:
    """Every group exists and is empty: each new name is a cache miss that costs a call."""

    def __init__(self) -> None:
        self.calls = 0

    async def get_stream(self, group: str, start: int = 0, count: int = 15) -> list[Message]:
        self.calls += 1
        return []

    async def get_my_groups(self, start: int = 0, count: int = 30) -> list[Group]:
        return []

    async def post_message(self, group: str, text: str) -> int:
        raise AssertionError("no posts here")


async def test_a_global_refusal_costs_the_visitor_no_miss() -> None:
    clock = FakeClock()
    client = _AnyGroup()
    widget = Widget(client, clock=clock, visitor_misses=3, max_misses=2, read_only=True)
    await widget.messages("busy-1", "other")
    await widget.messages("busy-2", "other")  # the global limit is spent until t=60
    await clock.advance(30.0)
    for n in range(3):
        with pytest.raises(Limited):
            await widget.messages(f"refused-{n}", "me")
    await clock.advance(30.0)  # the global limit has room again; "me" caused no miss yet
    assert await widget.messages("admitted", "me") == []
    assert client.calls == 3


#: A real-time bound that only turns a connection the server never closes into a failure.
HANG = 20.0


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    try:
        await asyncio.wait_for(reader.read(), HANG)  # until EOF: whatever it says, then closes
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


@pytest.mark.parametrize(
    "unfinished",
    [
        b"GET /embed/jumpy HTTP/1.1\r\nHost: widget\r\n",  # headers never end
        b"",  # connects, says nothing
        b"POST /embed/jumpy HTTP/1.1\r\nHost: widget\r\n"  # a form body that never comes
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ntext=",
    ],
    ids=["headers", "silent", "body"],
)
async def test_connections_that_never_finish_their_request_are_dropped(
    owner: Client, unfinished: bytes
) -> None:
    """W2: 500 of 500 slow connections were still open after 123 s."""
    widget = Widget(owner, request_timeout=0.5)
    async with serving(widget, "127.0.0.1", 0) as url:
        port = int(url.rsplit(":", 1)[1])
        streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
        for _, writer in streams:
            writer.write(unfinished)
        closed = await asyncio.gather(*(_closed_by_server(r) for r, _ in streams))
        for _, writer in streams:
            writer.close()
        assert all(closed), f"{closed.count(False)} of 20 slow connections still open"
