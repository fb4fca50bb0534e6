"""The only module that touches aiohttp's client.

Rules this module enforces:

* A transport turns ``(method, fields)`` into ``RawResponse(status, content_type, body)`` and
  nothing more: it never decodes, retries or waits for quota.
* Every aiohttp failure becomes a :class:`~agupshup.errors.TransportError`; nothing of aiohttp
  leaks out, and no URL in an error carries a query string (secrets live there).
* Calls that carry a secret arrive as POST (the wire layer decides), so no secret is ever in a
  URL; the rest go as GET, which aiohttp sends in one write.
* Nothing is ever resent here. aiohttp silently retries an idempotent request once when a
  reused connection is reset; that switch is turned off, because a resend the scheduler did not
  admit could be the very call that earns a 113.
* Redirects are never followed: a 3xx is :class:`~agupshup.errors.RedirectRefused` at once,
  naming only the ``Location`` host. Following one would resend the form body (a token,
  ``rand``) to wherever it points, and every hop would be an HTTP request the scheduler never
  admitted. So one admitted call is exactly one HTTP request.
* A 4xx whose body is not an API envelope is :class:`~agupshup.errors.HTTPClientError` (a wrong
  URL gets the same answer every time; it is not a transport fault). 408 and 429 say "try
  later", so they stay transient, with 5xx and other 2xx: :class:`~agupshup.errors.HTTPStatusError`.
  A 4xx that does carry an API envelope is handed on as the API's answer.
* A body larger than ``max_body`` is refused without being read to the end.
* Every excerpt of a server's text has the call's secrets (token, ``rand``, code) blanked out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import urlencode, urlsplit

import aiohttp

from agupshup import errors as E
from agupshup.wire.envelope import is_api_envelope
from agupshup.wire.methods import SECRET_ANSWERS
from agupshup.wire.redact import excerpt, redact, secrets_of

__all__ = [
    "API_PATH",
    "AiohttpTransport",
    "HTTPMethod",
    "MockTransport",
    "RawResponse",
    "Transport",
]

API_PATH = "/GupshupAPI/rest"
HTTPMethod = Literal["GET", "POST"]
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
#: 4xx that mean "try later" rather than "this request is wrong".
_TRANSIENT_4XX = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    content_type: str | None
    body: bytes


class Transport(Protocol):
    """Sends one API call. ``fields`` include ``method``, ``v``, ``format`` and any token."""

    async def send(
        self,
        fields: Sequence[tuple[str, str]],
        *,
        http_method: HTTPMethod = "POST",
        timeout: float | None = None,
    ) -> RawResponse: ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """A :class:`Transport` over one :class:`aiohttp.ClientSession`."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_body: int = 2 * 1024 * 1024,
        limit: int = 100,
        session: aiohttp.ClientSession | None = None,
        local_address: str | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        # A base URL copied with the API's path already on it must not get it twice (a 404).
        self._target = base if base.endswith(API_PATH) else base + API_PATH
        # fleet (issue 18): the source address calls leave from, i.e. the egress the server's
        # per-IP throttle counts; None lets the OS choose.
        self.local_address = local_address
        self.max_body = max_body
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._limit = limit
        self._session = session
        self._owns_session = session is None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._closed = False

    def _client(self) -> aiohttp.ClientSession:
        if self._closed:
            # Final: a straggling retry must not reopen a pool nobody will close.
            raise E.Closed("the transport is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._limit,
                    local_addr=None if self.local_address is None else (self.local_address, 0),
                ),
                timeout=aiohttp.ClientTimeout(total=None, connect=self._connect_timeout),
                raise_for_status=False,
                auto_decompress=True,
            )
            _no_hidden_resend(self._session)
        return self._session

    @property
    def url(self) -> str:
        """Where requests go, as shown: without ``user:pass@``. Requests go to the URL as
        given (aiohttp sends its ``user:pass@`` as Basic auth)."""
        return E.redact_url(self._target)

    @url.setter
    def url(self, url: str) -> None:
        self._target = url

    async def send(
        self,
        fields: Sequence[tuple[str, str]],
        *,
        http_method: HTTPMethod = "POST",
        timeout: float | None = None,
    ) -> RawResponse:
        limit = self._timeout if timeout is None else timeout
        try:
            return await self._exchange(fields, http_method, self._timeout_of(limit))
        except aiohttp.ConnectionTimeoutError as exc:  # before TimeoutError: it is one too
            raise E.ConnectError(_clean(exc, fields), url=self.url, maybe_sent=False) from None
        except TimeoutError:
            raise E.TimeoutError(f"no complete answer from {self.url} within {limit:.3g}s",
                                 url=self.url) from None
        except aiohttp.ClientSSLError as exc:  # before ClientConnectorError: it is one too
            raise E.TLSRefused(_tls_reason(exc), method=_method_of(fields), url=self.url) from None
        except aiohttp.ClientConnectorError as exc:
            raise E.ConnectError(_clean(exc, fields), url=self.url, maybe_sent=False) from None
        except (aiohttp.ClientError, ConnectionError, OSError) as exc:
            raise E.ConnectError(_clean(exc, fields), url=self.url) from None

    def _timeout_of(self, limit: float) -> aiohttp.ClientTimeout:
        # aiohttp's own timer bounds connect, send and the whole body read; one object per
        # distinct limit, as building one per call shows up in the client's CPU per call.
        found = self._timeouts.get(limit)
        if found is None:
            found = aiohttp.ClientTimeout(total=limit, connect=self._connect_timeout)
            self._timeouts[limit] = found
        return found

    async def _exchange(
        self,
        fields: Sequence[tuple[str, str]],
        http_method: HTTPMethod,
        timeout: aiohttp.ClientTimeout,
    ) -> RawResponse:
        session = self._client()
        if http_method == "GET":
            ctx = session.get(self._target, params=fields, timeout=timeout, allow_redirects=False)
        else:
            # Encoded here: aiohttp's FormData path costs more CPU than the rest of the call.
            body = urlencode(fields).encode("ascii")
            ctx = session.post(
                self._target, data=body, headers=_FORM, timeout=timeout, allow_redirects=False
            )
        async with ctx as resp:
            data = await self._read(resp)
            ctype = resp.headers.get("Content-Type")
            if resp.status != 200:
                self._refuse(resp, data, fields)
            return RawResponse(resp.status, ctype, data)

    def _refuse(
        self, resp: aiohttp.ClientResponse, data: bytes, fields: Sequence[tuple[str, str]]
    ) -> None:
        """Raise for a non-200 answer, unless it is a 4xx carrying the API's own envelope."""
        status, method = resp.status, _method_of(fields)
        if 300 <= status < 400:
            host = urlsplit(resp.headers.get("Location", "")).hostname or ""
            raise E.RedirectRefused(status, host, method=method, url=self.url)
        text = excerpt(data, secrets_of(fields), secret_answer=method in SECRET_ANSWERS)
        if 400 <= status < 500 and status not in _TRANSIENT_4XX:
            if is_api_envelope(data, resp.headers.get("Content-Type")):
                return
            raise E.HTTPClientError(status, method=method, url=self.url, excerpt=text)
        raise E.HTTPStatusError(status, method=method, url=self.url, excerpt=text)

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        declared = resp.content_length
        if declared is None or "Content-Encoding" in resp.headers:
            # Count what decompression yields, not what the header declares.
            return await self._read_unsized(resp)
        if declared > self.max_body:
            raise E.DecodeError(f"body of {declared} bytes exceeds {self.max_body}", url=self.url)
        try:
            return await resp.read()
        except aiohttp.ClientPayloadError as exc:
            raise E.DecodeError(f"truncated body ({_clean(exc)})", url=self.url) from None

    async def _read_unsized(self, resp: aiohttp.ClientResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in resp.content.iter_any():
                size += len(chunk)
                if size > self.max_body:
                    raise E.DecodeError(f"body exceeds {self.max_body} bytes", url=self.url)
                chunks.append(chunk)
        except aiohttp.ClientPayloadError as exc:
            raise E.DecodeError(f"truncated body ({_clean(exc)})", url=self.url) from None
        return b"".join(chunks)

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    def __repr__(self) -> str:
        return f"AiohttpTransport({self.url!r})"


def _no_hidden_resend(session: aiohttp.ClientSession) -> None:
    # No public switch exists; tests/client/test_faults.py counts the calls the server sees, so
    # a future aiohttp that renames this attribute fails loudly there.
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False


def _method_of(fields: Sequence[tuple[str, str]]) -> str:
    return next((value for key, value in fields if key == "method"), "")


def _clean(exc: BaseException, fields: Sequence[tuple[str, str]] = ()) -> str:
    """An aiohttp error's text without any query string (it may hold a token), nor any of the
    call's secrets."""
    text = f"{type(exc).__name__}: {exc}"
    out = []
    for word in text.split(" "):
        if "?" in word and ("://" in word or word.startswith("/")):
            word = word.split("?", 1)[0] + ("'" if word.endswith("'") else "")
        out.append(word)
    return redact(" ".join(out), secrets_of(fields))


Handler = Callable[[Sequence[tuple[str, str]]], Awaitable[RawResponse] | RawResponse]


class MockTransport:
    """A :class:`Transport` that hands each call to ``handler`` (tests, offline examples).

    ``calls`` records the fields of every call made, so a test can prove that a call was, or
    was not, sent.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[list[tuple[str, str]]] = []

    async def send(
        self,
        fields: Sequence[tuple[str, str]],
        *,
        http_method: HTTPMethod = "POST",
        timeout: float | None = None,
    ) -> RawResponse:
        self.calls.append(list(fields))
        out = self.handler(fields)
        return await out if isinstance(out, Awaitable) else out

    async def aclose(self) -> None:
        return None


def _tls_reason(exc: aiohttp.ClientSSLError) -> str:
    """The handshake's reason (``WRONG_VERSION_NUMBER``, a certificate error), not aiohttp's
    whole sentence."""
    inner = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None) or exc
    return str(getattr(inner, "reason", None) or inner)
