"""The featured widget: an aiohttp.web app in front of one :class:`~agupshup.Client`.

Routes::

    GET  /                      the customizer: group name, colour, live preview, embed code
    GET  /api/groups/{group}    {"ok": bool, "group": str, "error": str|null, "count": int}
    GET  /embed/{group}?color=  the embedded view: latest messages (+ a post box)
    POST /embed/{group}?color=  post ``text`` to the group through the Client, then 303 back
    GET  /static/…              stylesheet and scripts
    GET  /favicon.ico, /favicon.svg   the icon
    GET  /healthz               "ok" and the cache counters

Rules this module enforces:

* Visitors never cost quota directly: every read goes through a :class:`TTLCache` (one fetch per
  group per ``ttl``, single-flight, refusals cached too, failures for ``fail_ttl``), and at most
  ``max_pending`` groups are fetched at once. A group name that cannot exist, or that is not on
  the allow-list (``groups``), is refused without a call.
* Each visitor (IP address; an IPv6 /64, whether read from the connection or from the
  trusted proxy's ``visitor_header``) may cause at most ``visitor_misses`` cache misses a
  minute, and all visitors together ``max_misses``: beyond that a visitor gets the last good
  page if there is one, else a 429. Reads are sent once: the widget's client gets a
  :class:`~agupshup.retry.RetryPolicy` of one attempt (``retries=True`` keeps the client's).
* At start (``on_startup``) the owner's groups are read once: a failed login is logged as an
  error, loudly, instead of silently serving pages without a post box.
* Posts go through the Client with the owner's credentials, only to groups the owner owns
  (checked against ``get_my_groups``, cached; each lookup is a miss of the visitor who
  caused it, under both miss limits, so a failing lookup is not paid for every ``fail_ttl``
  for ever), at most ``max_posts`` a minute in all; a post
  drops that group's cached page so the new message shows at once.
* Unknown and private groups look the same: :data:`~agupshup.widget.templates.NOT_FOUND`.
* Every page is escaped (see :mod:`agupshup.widget.templates`) and served under a strict CSP
  with a per-response nonce; only ``/embed/`` may be framed by other sites (``frame_ancestors``:
  any web page and local ``file:`` pages by default). A form body that is not valid UTF-8 is a
  400.
* A connection that does not send a whole request (headers, then a form body) within
  ``request_timeout``, or stays idle that long between requests, is closed (408 for a body
  that stalls): slow connections cannot pile up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Protocol
from urllib.parse import parse_qsl

from aiohttp import web

from agupshup import errors as E
from agupshup.clock import Clock, SystemClock
from agupshup.models import Group, Message
from agupshup.retry import RetryPolicy
from agupshup.widget import templates as T
from agupshup.widget.cache import Busy, Limited, SlidingLimit, TTLCache
from agupshup.wire.validate import GROUP_NAME

__all__ = ["WIDGET_KEY", "Widget", "WidgetClient", "make_app", "serve", "serving"]

log = logging.getLogger("agupshup.widget")

#: Group names the API could know (``wire.validate``'s rule); longer ones are not looked up.
_GROUP = re.compile(GROUP_NAME)
_MAX_GROUP = 64
BUSY = "The widget is busy right now. Please try again in a moment."
NO_POST = "Could not post right now. Please try again in a moment."
LIMITED = "Too many new lookups from your address. Please try again in a minute."


class WidgetClient(Protocol):
    """What the widget needs of :class:`agupshup.Client`."""

    async def get_stream(self, group: str, start: int = 0, count: int = 15) -> list[Message]: ...

    async def get_my_groups(self, start: int = 0, count: int = 30) -> list[Group]: ...

    async def post_message(self, group: str, text: str) -> int: ...


class Widget:
    """The widget's state: the client, the caches and the post limiter."""

    def __init__(
        self,
        client: WidgetClient,
        *,
        ttl: float = 10.0,
        count: int = 15,
        public_url: str | None = None,
        read_only: bool = False,
        max_posts: int = 5,
        view_timeout: float = 15.0,
        clock: Clock | None = None,
        groups: Iterable[str] | None = None,
        visitor_misses: int = 10,
        max_misses: int = 20,
        fail_ttl: float = 5.0,
        frame_ancestors: str = "* file:",
        visitor_header: str | None = None,
        retries: bool = False,
        request_timeout: float = 10.0,
    ) -> None:
        self.client = client
        #: Seconds a connection may take to send a whole request (headers and form body), or
        #: stay idle between two: one that never finishes is dropped, not kept for ever.
        self.request_timeout = request_timeout
        self.clock: Clock = clock or SystemClock()
        self.count = count
        self.public_url = public_url.rstrip("/") if public_url else None
        self.read_only = read_only
        self.view_timeout = view_timeout
        #: Lower-case group names served (``None``: any public group).
        self.groups = None if groups is None else frozenset(g.lower() for g in groups)
        self.frame_ancestors = frame_ancestors
        #: A header set by a trusted reverse proxy naming the visitor (e.g. ``X-Real-IP``).
        self.visitor_header = visitor_header
        self.pages: TTLCache[list[Message]] = TTLCache(ttl, clock=self.clock, fail_ttl=fail_ttl)
        # API refusals are kept for 5 minutes; a transport fault only for ``fail_ttl``, or one
        # network blip would take the post box away for that long.
        self.owned: TTLCache[frozenset[str]] = TTLCache(300.0, clock=self.clock,
                                                        fail_ttl=fail_ttl)
        self._posts = SlidingLimit(max_posts, clock=self.clock)
        self._visitor_misses = SlidingLimit(visitor_misses, clock=self.clock)
        self._all_misses = SlidingLimit(max_misses, clock=self.clock)
        if not retries:
            _send_once(client)

    # -- reads ------------------------------------------------------------------------------

    async def messages(self, group: str, visitor: str = "") -> list[Message]:
        """The group's latest messages, from the cache. Raises ``GroupNotFound`` for names that
        cannot exist or are not allowed, :class:`Limited` when ``visitor`` may not cause a
        miss now (and no earlier page is kept)."""
        key = group.lower()
        if not _known_shape(group) or (self.groups is not None and key not in self.groups):
            raise E.GroupNotFound("widget", 2, T.NOT_FOUND)

        async def fetch() -> list[Message]:
            return await self.client.get_stream(group, 0, self.count)

        async with asyncio.timeout(self.view_timeout):
            return await self.pages.get(key, fetch, lambda: self._miss(visitor))

    def _miss(self, visitor: str) -> None:
        """Count a call a visitor causes (a page or the owner's groups), or raise Limited."""
        self._visitor_misses.take(visitor)
        try:
            self._all_misses.take()
        except Limited:
            # Refused for everyone: this visitor caused no miss, so its slot goes back.
            # Taking the global slot first instead would let one visitor over its own
            # limit spend everyone's.
            self._visitor_misses.give_back(visitor)
            raise

    async def own_groups(self, visitor: str | None = None) -> frozenset[str]:
        """The owner's groups (lower case), cached; logs in the first time. A lookup a
        ``visitor`` causes is its miss like a page's: while it fails, page views would
        otherwise pay for one every ``fail_ttl`` with no limit (``None``: the widget's own
        check at start, not counted)."""

        async def fetch() -> frozenset[str]:
            mine = await self.client.get_my_groups(0, 30)
            return frozenset(g.group_name.lower() for g in mine)

        async with asyncio.timeout(self.view_timeout):
            admit = None if visitor is None else (lambda: self._miss(visitor))
            return await self.owned.get("mine", fetch, admit)

    async def can_post(self, group: str, visitor: str = "") -> bool:
        if self.read_only:
            return False
        try:
            owned = await self.own_groups(visitor)
        except Limited:
            return False  # no post box this time; the page itself is served
        except (E.GupshupError, Busy, TimeoutError) as exc:
            log.info("widget is read-only: %s", type(exc).__name__)
            return False
        return group.lower() in owned

    async def check_owner(self) -> None:
        """At start: say loudly when the owner cannot log in (no post box anywhere then)."""
        if self.read_only:
            return
        try:
            await self.own_groups()
        except E.AuthenticationError as exc:
            log.error("WIDGET LOGIN FAILED (%s: %s): serving read-only pages without a post "
                      "box; check the phone and password, or start it with --read-only",
                      type(exc).__name__, exc)
        except (E.GupshupError, Busy, TimeoutError) as exc:
            log.warning("widget: could not read the owner's groups at start (%s: %s); "
                        "post boxes appear once it works", type(exc).__name__, exc)

    async def view(
        self, group: str, visitor: str = ""
    ) -> tuple[list[Message] | None, str | None]:
        """(messages, None) or (None, what to tell the visitor)."""
        if not _known_shape(group):
            return None, T.BAD_NAME  # the naming rule, not "doesn't exist": it never could
        try:
            return await self.messages(group, visitor), None
        except Limited:
            return None, LIMITED
        except (E.GroupNotFound, E.PrivateGroup):
            return None, T.NOT_FOUND
        except E.GroupDisabled:
            return None, "This group has been disabled."
        except (E.ValidationError, E.InvalidRequest):
            return None, T.NOT_FOUND
        except (Busy, TimeoutError, E.GupshupError) as exc:
            log.warning("widget view of %r failed: %s", group, exc)
            return None, BUSY

    # -- writes -----------------------------------------------------------------------------

    async def post(self, group: str, text: str, visitor: str = "") -> tuple[int | None, str]:
        """(new id, notice) or (None, why it was not posted)."""
        text = text.strip()
        if not text:
            return None, "Write something first."
        if not await self.can_post(group, visitor):
            return None, "This widget doesn't take posts for this group."
        try:
            self._posts.take()
        except Limited:
            return None, "Too many posts right now. Please try again in a minute."
        try:
            async with asyncio.timeout(self.view_timeout):
                post_id = await self.client.post_message(group, text)
        except E.ValidationError as exc:
            return None, f"Not posted: {exc.reason}."
        except E.DuplicateMessage:
            return None, "Not posted: that is the same as the previous message."
        except E.PosterThrottled:
            return None, "Too many posts right now. Please try again in a minute."
        except E.MessageRejected as exc:
            return None, f"Not posted: {exc.msg}"
        except (E.PermissionDenied, E.GroupNotFound, E.PrivateGroup):
            return None, "This widget doesn't take posts for this group."
        except E.GroupDisabled:
            return None, "This group has been disabled."
        except (E.GupshupError, TimeoutError) as exc:
            log.warning("widget post to %r failed: %s", group, exc)
            return None, NO_POST
        self.pages.invalidate(group.lower())
        return post_id, "Posted!"

    async def aclose(self) -> None:
        """Cancel the fetches still in flight (the app calls this on cleanup)."""
        await self.pages.aclose()
        await self.owned.aclose()

    def updated(self, group: str) -> str:
        age = self.pages.age(group.lower())
        if age is None:
            return ""
        return "Updated just now" if age < 1.5 else f"Updated {age:.0f} s ago"


WIDGET_KEY = web.AppKey("widget", Widget)


def make_app(target: WidgetClient | Widget) -> web.Application:
    """The widget's web application, for a :class:`Widget` or a client (default options)."""
    widget = target if isinstance(target, Widget) else Widget(target)
    app = web.Application(middlewares=[_security_headers])
    app[WIDGET_KEY] = widget
    app.router.add_get("/", _customizer)
    app.router.add_get("/api/groups/{group}", _check)
    app.router.add_get("/embed/{group}", _embed)
    app.router.add_post("/embed/{group}", _post)
    app.router.add_get("/static/widget.css", _static(T.CSS, "text/css"))
    app.router.add_get("/static/widget.js", _static(T.JS, "text/javascript"))
    app.router.add_get("/static/embed.js", _static(T.EMBED_JS, "text/javascript"))
    app.router.add_get("/favicon.svg", _static(T.FAVICON, "image/svg+xml"))
    app.router.add_get("/favicon.ico", _static(T.FAVICON, "image/svg+xml"))
    app.router.add_get("/healthz", _health)
    app.on_startup.append(_check_owner)
    app.on_cleanup.append(_close_widget)
    return app


async def _check_owner(app: web.Application) -> None:
    await app[WIDGET_KEY].check_owner()


async def _close_widget(app: web.Application) -> None:
    await app[WIDGET_KEY].aclose()


# -- handlers ---------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _known_shape(group: str) -> bool:
    return len(group) <= _MAX_GROUP and _GROUP.fullmatch(group) is not None


def _base(request: web.Request) -> str:
    widget = request.app[WIDGET_KEY]
    return widget.public_url or str(request.url.origin())


def _visitor(request: web.Request) -> str:
    """Who is asking: the trusted proxy's header when the widget is told to read one, else the
    connection's address; either way an IPv6 address counts by its /64 (see :func:`_who`)."""
    widget = request.app[WIDGET_KEY]
    if widget.visitor_header and request.headers.get(widget.visitor_header):
        return _who(request.headers[widget.visitor_header].strip())
    return _who(request.remote or "")


def _who(address: str) -> str:
    """The visitor an address stands for: an IPv4 address (IPv4-mapped ones too) is itself;
    an IPv6 address is its /64, which one visitor may rotate through at will; anything else
    is taken as written."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 4:
        return str(parsed)
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(ipaddress.ip_network(f"{parsed}/64", strict=False))


def _status(error: str | None) -> int:
    return {None: 200, BUSY: 503, LIMITED: 429}.get(error, 404)


async def _customizer(request: web.Request) -> web.Response:
    widget = request.app[WIDGET_KEY]
    group = request.query.get("group", "").strip()
    color = T.normalize_color(request.query.get("color"))
    error = None
    if group:
        _, error = await widget.view(group, _visitor(request))
    nonce = _nonce()
    page = T.customizer_page(base=_base(request), group=group, color=color, error=error,
                             nonce=nonce)
    return _html(page, nonce, framed=None)


async def _check(request: web.Request) -> web.Response:
    widget = request.app[WIDGET_KEY]
    group = request.match_info["group"].strip()
    messages, error = await widget.view(group, _visitor(request))
    return web.json_response(
        {"ok": messages is not None, "group": group, "error": error,
         "count": len(messages or ())},
        status=429 if error == LIMITED else 200,
        headers={"Cache-Control": "no-store"},
    )


async def _embed(request: web.Request) -> web.Response:
    widget = request.app[WIDGET_KEY]
    group = request.match_info["group"]
    color = T.normalize_color(request.query.get("color"))
    messages, error = await widget.view(group, _visitor(request))
    notice = "Posted!" if request.query.get("posted") else None
    return await _render_embed(request, widget, group, color, messages, error, notice, "")


async def _post(request: web.Request) -> web.StreamResponse:
    widget = request.app[WIDGET_KEY]
    group = request.match_info["group"]
    form = await _form(request)
    color = T.normalize_color(str(form.get("color") or request.query.get("color") or ""))
    text = str(form.get("text") or "")
    post_id, notice = await widget.post(group, text, _visitor(request))
    if post_id is not None:
        raise web.HTTPSeeOther(T.embed_url("", group, color) + f"&posted={post_id}")
    messages, error = await widget.view(group, _visitor(request))
    return await _render_embed(
        request, widget, group, color, messages, error or notice, None, text, status=400
    )


async def _form(request: web.Request) -> Mapping[str, object]:
    """The posted form, decoded strictly: text that is not UTF-8, raw or percent-encoded, is
    the visitor's mistake (a 400), never a 500 nor a post of U+FFFD characters."""
    try:
        # A body that trickles in would hold the connection for ever: bounded like headers.
        async with asyncio.timeout(request.app[WIDGET_KEY].request_timeout):
            if request.content_type == "application/x-www-form-urlencoded":
                body = (await request.read()).decode("utf-8")
                return dict(parse_qsl(body, keep_blank_values=True, errors="strict"))
            return await request.post()
    except TimeoutError:
        raise web.HTTPRequestTimeout(text="the form did not arrive in time") from None
    except (UnicodeDecodeError, ValueError):
        raise web.HTTPBadRequest(text="the form is not valid UTF-8") from None


async def _render_embed(
    request: web.Request,
    widget: Widget,
    group: str,
    color: str,
    messages: list[Message] | None,
    error: str | None,
    notice: str | None,
    text: str,
    *,
    status: int | None = None,
) -> web.Response:
    can_post = messages is not None and await widget.can_post(group, _visitor(request))
    nonce = _nonce()
    page = T.embed_page(
        group=group, color=color, messages=messages, error=error, notice=notice,
        can_post=can_post, text=text, updated=widget.updated(group), nonce=nonce,
        now_ms=int(widget.clock.time() * 1000),
    )
    if status is None:
        status = 200 if messages is not None else _status(error)
    return _html(page, nonce, framed=widget.frame_ancestors, status=status)


async def _health(request: web.Request) -> web.Response:
    widget = request.app[WIDGET_KEY]
    pages = widget.pages
    return web.json_response(
        {"ok": True, "cached": len(pages), "fetches": pages.fetches, "hits": pages.hits}
    )


def _static(body: str, content_type: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            text=body, content_type=content_type,
            headers={"Cache-Control": "public, max-age=300"},
        )

    return handler


# -- headers ----------------------------------------------------------------------------------


def _nonce() -> str:
    return secrets.token_urlsafe(16)


def _html(page: str, nonce: str, *, framed: str | None, status: int = 200) -> web.Response:
    """``framed``: who may frame the page (a ``frame-ancestors`` value); None: this site only."""
    csp = (
        "default-src 'none'; "
        f"style-src 'self' 'nonce-{nonce}'; "
        "script-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; "
        + (f"frame-ancestors {framed}" if framed else "frame-src 'self'; frame-ancestors 'self'")
    )
    response = web.Response(text=page, content_type="text/html", status=status)
    response.headers["Content-Security-Policy"] = csp
    response.headers["Cache-Control"] = "no-store"
    return response


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    return response


# -- serving ----------------------------------------------------------------------------------


@asynccontextmanager
async def serving(
    target: WidgetClient | Widget, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve the widget on ``host:port`` (0: a free port) and yield its base URL."""
    app = make_app(target)
    # aiohttp's keep-alive timer is also the only limit on a connection that has not sent a
    # whole request yet (its default is an hour): the widget's request_timeout sets both, and
    # how long the rest of a refused body is read before closing (lingering).
    limit = app[WIDGET_KEY].request_timeout
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=limit, lingering_time=limit)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{bound}"
    finally:
        await runner.cleanup()


async def serve(
    target: WidgetClient | Widget,
    host: str = "127.0.0.1",
    port: int = 8090,
    *,
    seconds: float | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until cancelled, or for ``seconds``."""
    async with serving(target, host, port) as url:
        if on_ready is not None:
            on_ready(url)
        if seconds is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(seconds)


def _send_once(client: WidgetClient) -> None:
    """A widget read that fails is answered from the cache, never resent: one attempt only."""
    retry = getattr(client, "retry", None)
    if isinstance(retry, RetryPolicy) and retry.attempts > 1:
        setattr(client, "retry", dataclasses.replace(retry, attempts=1))  # noqa: B010
