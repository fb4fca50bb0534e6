"""HTTP answers the emulator cannot easily make, through aioresponses: 3xx with any Location,
chunked bodies without Content-Length, gzip that inflates past ``max_body``, a body cut short,
4xx with and without the API's envelope. (A real gzip bomb over loopback closes the file.)"""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aioresponses import aioresponses

from agupshup import errors as E
from agupshup import wire
from agupshup.transport import AiohttpTransport

BASE = "http://api.test"
ANY_CALL = re.compile(r"^http://api\.test/GupshupAPI/rest(\?.*)?$")
TOKEN = "IIQiU1107028137"
READ = wire.get_stream("jumpy").fields("json")
WRITE = wire.post_message("jumpy", "hi").fields("json", TOKEN)
ENVELOPE = b'{"response": {"status": "success", "messages": []}}'


@pytest_asyncio.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    t = AiohttpTransport(BASE, max_body=10_000)
    yield t
    await t.aclose()


class _Compat(aiohttp.ClientResponse):
    """aioresponses 0.7.9 (the latest) predates aiohttp 3.14's required ``stream_writer``."""

    def __init__(self, method: str, url: Any, **kw: Any) -> None:
        kw.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kw)


class _Mocked:
    """aioresponses with :class:`_Compat` responses."""

    def __init__(self, m: aioresponses) -> None:
        self.m = m

    @property
    def requests(self) -> dict[Any, Any]:
        return dict(self.m.requests)

    def get(self, url: Any, **kw: Any) -> None:
        self.m.get(url, **{"response_class": _Compat, **kw})

    def post(self, url: Any, **kw: Any) -> None:
        self.m.post(url, **{"response_class": _Compat, **kw})


@pytest.fixture
def mocked() -> Iterator[_Mocked]:
    with aioresponses() as m:
        yield _Mocked(m)


@pytest.mark.parametrize("status", [300, 301, 302, 303, 307, 308])
@pytest.mark.parametrize(
    ("location", "host"),
    [
        (f"http://evil.test/steal?token={TOKEN}", "evil.test"),
        (f"https://user:{TOKEN}@evil.test:8443/{TOKEN}", "evil.test"),
        (f"/GupshupAPI/rest?token={TOKEN}", ""),
        ("", ""),
    ],
)
async def test_3xx_is_refused_without_following(
    transport: AiohttpTransport, mocked: _Mocked, status: int, location: str, host: str
) -> None:
    headers = {"Location": location} if location else {}
    mocked.post(ANY_CALL, status=status, headers=headers)
    mocked.post(re.compile(r"^https?://evil\.test.*"), status=200, body=ENVELOPE)
    with pytest.raises(E.RedirectRefused) as caught:
        await transport.send(WRITE, http_method="POST")
    exc = caught.value
    assert (exc.status, exc.location_host, exc.method) == (status, host, "groups.postMessage")
    assert not isinstance(exc, E.TransportError)  # never retried
    assert TOKEN not in str(exc)
    assert TOKEN not in repr(exc)
    assert "?" not in str(exc)
    assert len(mocked.requests) == 1  # the only request: nothing went to the Location


async def test_chunked_body_without_content_length(
    transport: AiohttpTransport, mocked: _Mocked
) -> None:
    mocked.get(ANY_CALL, body=ENVELOPE, headers={"Transfer-Encoding": "chunked"})
    raw = await transport.send(READ, http_method="GET")
    assert raw.body == ENVELOPE


async def test_chunked_body_past_max_body_is_refused(
    transport: AiohttpTransport, mocked: _Mocked
) -> None:
    mocked.get(ANY_CALL, body=b" " * 20_000 + ENVELOPE, headers={"Transfer-Encoding": "chunked"})
    with pytest.raises(E.DecodeError, match="exceeds 10000"):
        await transport.send(READ, http_method="GET")


async def test_gzip_is_counted_as_inflated(transport: AiohttpTransport, mocked: _Mocked) -> None:
    # What aiohttp hands on is the inflated body; the small Content-Length is the wire's.
    headers = {"Content-Encoding": "gzip", "Content-Length": "120"}
    mocked.get(ANY_CALL, body=b" " * 50_000 + ENVELOPE, headers=headers)
    with pytest.raises(E.DecodeError, match="exceeds"):
        await transport.send(READ, http_method="GET")


class _CutShort(_Compat):
    """A response whose body ends before it is complete."""

    _reader: aiohttp.StreamReader

    @property  # type: ignore[override]
    def content(self) -> aiohttp.StreamReader:
        # Once the mock has fed the whole (short) body, the connection "drops".
        if self._reader.is_eof() and self._reader.exception() is None:
            self._reader.set_exception(
                aiohttp.ClientPayloadError("Response payload is not completed")
            )
        return self._reader

    @content.setter
    def content(self, reader: aiohttp.StreamReader) -> None:
        self._reader = reader


@pytest.mark.parametrize("sized", [True, False])
async def test_body_cut_short(transport: AiohttpTransport, mocked: _Mocked, sized: bool) -> None:
    headers = {"Content-Length": str(len(ENVELOPE))} if sized else {}
    mocked.post(ANY_CALL, body=ENVELOPE[:20], headers=headers, response_class=_CutShort)
    with pytest.raises(E.DecodeError, match="truncated"):
        await transport.send(WRITE, http_method="POST")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 410, 418, 451])
async def test_4xx_without_the_envelope_is_a_client_error(
    transport: AiohttpTransport, mocked: _Mocked, status: int
) -> None:
    page = f"<html><body>{status} for token {TOKEN}</body></html>"
    mocked.post(ANY_CALL, status=status, body=page, content_type="text/html")
    with pytest.raises(E.HTTPClientError) as caught:
        await transport.send(WRITE, http_method="POST")
    assert caught.value.status == status
    assert not isinstance(caught.value, E.TransportError)
    assert TOKEN not in str(caught.value)
    assert "<redacted>" in caught.value.excerpt


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 204])
async def test_transient_statuses_stay_transport_errors(
    transport: AiohttpTransport, mocked: _Mocked, status: int
) -> None:
    mocked.get(ANY_CALL, status=status, body="busy", content_type="text/plain")
    with pytest.raises(E.HTTPStatusError) as caught:
        await transport.send(READ, http_method="GET")
    assert caught.value.status == status


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b'{"response": {"error": {"code": "6", "msg": "bad token"}}}', "application/json"),
        (
            b'<?xml version="1.0"?><response><error><code>6</code><msg>bad token</msg>'
            b"</error></response>",
            "text/xml",
        ),
    ],
)
async def test_4xx_with_the_api_envelope_is_the_api_answer(
    transport: AiohttpTransport, mocked: _Mocked, body: bytes, ctype: str
) -> None:
    mocked.post(ANY_CALL, status=401, body=body, content_type=ctype)
    raw = await transport.send(WRITE, http_method="POST")
    with pytest.raises(E.InvalidToken):
        wire.decode(wire.post_message("jumpy", "hi"), raw.body, raw.content_type)


async def test_4xx_with_a_success_envelope_is_still_refused(
    transport: AiohttpTransport, mocked: _Mocked
) -> None:
    mocked.post(ANY_CALL, status=404, body=ENVELOPE, content_type="application/json")
    with pytest.raises(E.HTTPClientError):
        await transport.send(WRITE, http_method="POST")


@pytest_asyncio.fixture
async def gzip_server() -> AsyncIterator[str]:
    """A loopback server answering a real gzip bomb: 2 kB on the wire, 2 MB inflated."""
    bomb = gzip.compress(b" " * 2_000_000 + ENVELOPE)

    async def answer(request: web.Request) -> web.Response:
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        return web.Response(body=bomb, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/GupshupAPI/rest", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_a_real_gzip_bomb_is_refused(gzip_server: str) -> None:
    transport = AiohttpTransport(gzip_server, max_body=100_000)
    try:
        with pytest.raises(E.DecodeError, match="exceeds 100000"):
            await transport.send(READ, http_method="GET")
    finally:
        await transport.aclose()
