"""The Client: one object, one call path, sixteen calls.

Rules this module enforces:

* Every call takes the same path — build (validate) → token → admit → send → decode → learn —
  in :meth:`Client._call`; methods only build their request and shape the result.
* The scheduler admits every call that leaves, retries and logins included.
* Reads are retried after faults by :class:`~agupshup.retry.RetryPolicy`; a dead token causes
  one re-login and one resend; writes whose outcome is unknown are resolved, not resent
  blindly (see :meth:`Client.post_message`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Protocol, Self, TypeVar

from agupshup import errors as E
from agupshup import wire
from agupshup.clock import Clock, SystemClock
from agupshup.models import (
    Challenge,
    Group,
    InviteResult,
    Message,
    QuotaWindow,
    Reply,
    ReplyResult,
    SubscribeTicket,
    ThrottleTag,
)
from agupshup.retry import RETRYABLE, RetryPolicy
from agupshup.session import Credentials, CredentialsProvider, Session, TokenStore
from agupshup.streams import StreamsMixin
from agupshup.throttle import DEFAULT_WINDOWS, Ledger, Scheduler, SharedLedger, Window
from agupshup.transport import AiohttpTransport, Transport

__all__ = ["DEFAULT_BASE_URL", "Client"]

log = logging.getLogger("agupshup.client")
T = TypeVar("T")
DEFAULT_BASE_URL = "http://api.smsgupshup.com"


class Slot(Protocol):
    def learn(self, throttle: Sequence[ThrottleTag] = (), limited: bool = False) -> None: ...


class Admission(Protocol):
    """What the client needs of a scheduler (:class:`agupshup.throttle.Scheduler`)."""

    def slot(
        self, lane: wire.Lane = "bulk", *, max_wait: float | None = None
    ) -> AbstractAsyncContextManager[Slot]: ...

    def quota(self) -> list[QuotaWindow]: ...


class _OpenSlot:
    """The slot of :class:`_Unthrottled`: a plain class, as a generator-based context
    manager would cost more than the rest of the unthrottled call path."""

    __slots__ = ()

    async def __aenter__(self) -> _OpenSlot:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def learn(self, throttle: Sequence[ThrottleTag] = (), limited: bool = False) -> None:
        return None


class _Unthrottled:
    """Admits everything at once: for benchmarks and servers without a throttle."""

    _slot = _OpenSlot()

    def slot(self, lane: wire.Lane = "bulk", *, max_wait: float | None = None) -> _OpenSlot:
        return self._slot

    def quota(self) -> list[QuotaWindow]:
        return []


class Client(StreamsMixin):
    """An asyncio client for the GupShup Stream and Group API.

    ``async with Client(base_url, phone=..., password=...) as client:`` — login is lazy and
    happens on the first call that needs a token; leaving the block logs out.

    Every call method takes ``max_wait=``: the seconds it may wait for the throttle. A call that
    cannot be admitted in that time raises :class:`~agupshup.errors.QuotaExhausted` before
    anything is sent.

    ``local_address="127.0.0.2"`` binds the source address calls leave from (the server counts
    per IP): the throttle budget is kept per address — clients on one address share one, and a
    shared ledger (``SqliteLedger``/``RedisLedger``) is keyed ``{key}:{address}`` (see
    ``docs/fleet.md``).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        phone: str | None = None,
        password: str | None = None,
        credentials: Credentials | CredentialsProvider | None = None,
        format: wire.Format = "json",
        timeout: float = 30.0,
        clock: Clock | None = None,
        scheduler: Admission | None = None,
        throttle: bool = True,
        windows: Sequence[Window] = DEFAULT_WINDOWS,
        ledger: Ledger | None = None,
        retry: RetryPolicy | None = None,
        transport: Transport | None = None,
        token_store: TokenStore | None = None,
        max_body: int = 2 * 1024 * 1024,
        local_address: str | None = None,
    ) -> None:
        if format not in ("json", "xml"):
            raise E.ValidationError("Client", "format", "must be 'json' or 'xml'")
        if phone is not None and password is not None:
            credentials = Credentials(phone, password)
        self.base_url = base_url.rstrip("/")
        self.format: wire.Format = format
        self.timeout = timeout
        self.clock: Clock = clock or SystemClock()
        self.retry = retry or RetryPolicy()
        self._write_policy = dataclasses.replace(self.retry, attempts=1)
        # fleet (issue 18): the egress; the throttle budget is kept per egress.
        self.local_address = local_address
        self._transport: Transport = transport or AiohttpTransport(
            self.base_url, timeout=timeout, max_body=max_body, local_address=local_address
        )
        self.scheduler: Admission = scheduler or _default_scheduler(
            self.base_url, clock, throttle, windows, ledger, local_address
        )
        self.session = Session(
            credentials, clock=self.clock, scope=self.base_url, store=token_store
        )
        self._closed = False
        #: group → the text of this client's last post there (the server refuses repeats).
        self._last_post: dict[str, str] = {}
        self._post_locks: dict[str, asyncio.Lock] = {}

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Log out (if logged in, and the token is not shared) and release the connection
        pool. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.session.close(self._send)
        finally:
            await self._transport.aclose()

    def quota(self) -> list[QuotaWindow]:
        """Each throttle window: used, limit, and when the next call fits."""
        return self.scheduler.quota()

    def __repr__(self) -> str:
        return f"<Client {self.base_url} format={self.format} {self.session!r}>"

    # -- the call path ----------------------------------------------------------------------

    async def _call(self, request: wire.Request[T], *, max_wait: float | None = None) -> T:
        return (await self._execute(request, max_wait=max_wait)).result

    async def _execute(
        self, request: wire.Request[T], *, max_wait: float | None = None
    ) -> wire.Response[T]:
        if self._closed:
            # A straggler (a follower outliving the block) must not reopen the pool.
            raise E.Closed("the client is closed")
        # A write is never resent after a fault, but a 113 proves it did not run.
        policy = self.retry if request.spec.idempotent else self._write_policy
        started = self.clock.monotonic()
        attempt = throttled = 0
        relogged = False
        while True:
            token = await self.session.token(self._send) if request.needs_token else None
            try:
                return await self._send_response(request, token, max_wait)
            except E.InvalidToken:
                if token is None or relogged:
                    raise
                log.info("%s: token refused; logging in again once", request.spec.name)
                await self.session.invalidate(token)
                relogged = True
            except E.ThrottleLimitExceeded:
                throttled += 1
                # 113 means "not executed": a scheduler now holds the resend until rollover;
                # without one, resending would be blind.
                if throttled > policy.throttle_attempts or isinstance(self.scheduler, _Unthrottled):
                    raise
            except RETRYABLE as exc:
                delay = policy.delay(attempt, self.clock.monotonic() - started)
                if delay is None:
                    raise
                attempt += 1
                log.info(
                    "%s: %s; retry %d in %.2fs",
                    request.spec.name,
                    type(exc).__name__,
                    attempt,
                    delay,
                )
                await self.clock.sleep(delay)

    async def _send(self, request: wire.Request[T], token: str | None) -> T:
        return (await self._send_response(request, token, None)).result

    async def _send_response(
        self, request: wire.Request[T], token: str | None, max_wait: float | None
    ) -> wire.Response[T]:
        spec = request.spec
        fields = request.fields(self.format, token)
        async with self.scheduler.slot(spec.lane, max_wait=max_wait) as slot:
            try:
                raw = await self._transport.send(
                    fields, http_method=spec.http_method, timeout=self.timeout
                )
                response = wire.decode(request, raw.body, raw.content_type)
            except E.APIError as exc:
                slot.learn(exc.throttle, isinstance(exc, E.ThrottleLimitExceeded))
                raise
            except E.TransportError as exc:
                exc.method = spec.name
                raise
            slot.learn(response.throttle, False)
        return response

    # -- public streams ---------------------------------------------------------------------

    async def get_public_stream(
        self,
        start: int = 0,
        count: int = 15,
        *,
        skip_adult: bool = True,
        max_wait: float | None = None,
    ) -> list[Message]:
        """``gupshup.getPublicStream``: one page of the public stream, newest first."""
        return await self._call(
            wire.public_stream(start, count, skip_adult=skip_adult), max_wait=max_wait
        )

    async def get_message(self, group: str, *, max_wait: float | None = None) -> Message | None:
        """``groups.getMessage``: the group's latest message (None when it has none)."""
        return await self._call(wire.get_message(group), max_wait=max_wait)

    async def get_stream(
        self, group: str, start: int = 0, count: int = 15, *, max_wait: float | None = None
    ) -> list[Message]:
        """``groups.getStream``: one page of a public group's messages, newest first."""
        return await self._call(wire.get_stream(group, start, count), max_wait=max_wait)

    async def get_info(self, group: str, *, max_wait: float | None = None) -> Group:
        """``groups.getInfo``: a public group's details."""
        return await self._call(wire.get_info(group), max_wait=max_wait)

    # -- subscription -----------------------------------------------------------------------

    async def subscribe(
        self, phone: str, group: str, *, max_wait: float | None = None
    ) -> SubscribeTicket:
        """``groups.subscribeGroupToken`` phase I: the server texts a code to ``phone``."""
        request = wire.subscribe(phone, group)
        token = await self._call(request, max_wait=max_wait)
        params = dict(request.params)
        return SubscribeTicket(phone=params["phone"], group=params["group"], token=token)

    async def confirm_subscription(
        self, ticket: SubscribeTicket, code: str, *, max_wait: float | None = None
    ) -> str:
        """``groups.subscribeGroupToken`` phase II: confirm with the texted code."""
        return await self._call(
            wire.confirm_subscription(ticket.phone, ticket.group, ticket.token, code),
            max_wait=max_wait,
        )

    # -- users ------------------------------------------------------------------------------

    async def get_challenge(self, *, max_wait: float | None = None) -> Challenge:
        """``users.getChallenge``: a salt and a single-use challenge (login does this itself)."""
        return await self._call(wire.get_challenge(), max_wait=max_wait)

    async def login(self) -> None:
        """``users.login``, now rather than lazily on the first call that needs it."""
        await self.session.token(self._send)

    async def logout(self) -> None:
        """``users.logout``. Idempotent; a dead token is not an error."""
        await self.session.logout(self._send)

    async def get_my_groups(
        self, start: int = 0, count: int = 30, *, max_wait: float | None = None
    ) -> list[Group]:
        """``users.getMyGroups``: one page of the groups the user owns."""
        return await self._call(wire.my_groups(start, count), max_wait=max_wait)

    async def get_joined_groups(
        self, start: int = 0, count: int = 30, *, max_wait: float | None = None
    ) -> list[Group]:
        """``users.getJoinedGroups``: one page of the groups the user has joined."""
        return await self._call(wire.joined_groups(start, count), max_wait=max_wait)

    async def get_joined_groups_stream(
        self, start: int = 0, count: int = 30, *, max_wait: float | None = None
    ) -> list[Message]:
        """``users.getJoinedGroupsStream``: one page of messages from joined groups."""
        return await self._call(wire.joined_groups_stream(start, count), max_wait=max_wait)

    # -- posting ----------------------------------------------------------------------------

    async def post_message(self, group: str, text: str, *, max_wait: float | None = None) -> int:
        """``groups.postMessage``: post ``text`` to a group the user owns; the new id.

        Delivered once, never twice. When the outcome is unknown (a timeout or a broken
        answer after the request left), the post is resent: the server refuses a text equal
        to the user's previous post to that group (128), so a 128 proves an earlier attempt
        landed, and its id is then read from the group's head. Posts to one group are
        serialised within a client, so that "previous post" is always this one. A post refused
        with 113 or 129 did not run and is simply sent again.
        """
        request = wire.post_message(group, text)
        name = request.params[0][1].lower()  # the server matches group names in any case
        async with self._post_locks.setdefault(name, asyncio.Lock()):
            if self._last_post.get(name) == text:
                raise E.ValidationError(
                    request.spec.name, "text", "same text as your previous post here (128)"
                )
            try:
                post_id = await self._call(request, max_wait=max_wait)
            except (E.TransportError, E.ServerError) as exc:
                if isinstance(exc, E.TransportError) and not exc.maybe_sent:
                    raise
                post_id = await self._resolve_post(request, exc)
            self._last_post[name] = text
            return post_id

    async def _resolve_post(self, request: wire.Request[int], fault: E.GupshupError) -> int:
        group, text = request.params[0][1], request.params[1][1]
        started = self.clock.monotonic()
        for attempt in range(self.retry.resolve_attempts):
            log.warning("postMessage to %s: %s; resending (%d)", group, fault, attempt + 1)
            try:
                return await self._call(request)
            except E.DuplicateMessage as dup:
                found = await self._find_own_post(group, text)
                if found is None:
                    raise E.DuplicateMessage(
                        request.spec.name, 128, "delivered earlier; its id is not in the head"
                    ) from dup
                return found
            except (E.TransportError, E.ServerError) as exc:
                fault = exc
            elapsed = self.clock.monotonic() - started
            delay = self.retry.delay(attempt, elapsed, self.retry.resolve_attempts)
            if delay is None:
                break
            await self.clock.sleep(delay)
        raise fault

    async def _find_own_post(self, group: str, text: str) -> int | None:
        try:
            head = await self.get_stream(group)
        except E.APIError:  # a private group has no readable stream
            return None
        return next((m.id for m in head if m.text == text), None)

    async def post_reply(
        self, text: str, group: str | None = None, *, max_wait: float | None = None
    ) -> ReplyResult:
        """``groups.postReply``: ``text`` names its destinations as ``@group``."""
        return await self._call(wire.post_reply(text, group), max_wait=max_wait)

    async def get_replies(
        self,
        group: str,
        start: int = 0,
        count: int = 30,
        *,
        include_hidden: bool = False,
        max_wait: float | None = None,
    ) -> list[Reply]:
        """``groups.getReplies``: one page of replies to ``group``, newest first."""
        return await self._call(
            wire.get_replies(group, start, count, include_hidden=include_hidden),
            max_wait=max_wait,
        )

    async def invite_friends(
        self,
        phones: str | Iterable[str],
        group: str | None = None,
        *,
        max_wait: float | None = None,
    ) -> InviteResult:
        """``groups.inviteFriends``: invite Indian mobile numbers to a group the user owns."""
        return await self._call(wire.invite_friends(phones, group), max_wait=max_wait)


def _default_scheduler(
    base_url: str,
    clock: Clock | None,
    throttle: bool,
    windows: Sequence[Window],
    ledger: Ledger | None,
    local_address: str | None = None,
) -> Admission:
    if not throttle:
        return _Unthrottled()
    if local_address is not None and isinstance(ledger, SharedLedger):
        ledger.for_egress(local_address)  # fleet: one shared budget per source address
    if clock is not None or ledger is not None:
        # An injected clock or ledger is this client's own: sharing would silently drop it
        # (a ledger still shares the budget, with every process that opens it).
        return Scheduler(windows, clock=clock, ledger=ledger)
    # One ledger per egress: every Client of this process that talks to base_url shares it.
    return Scheduler.shared(f"{base_url} {local_address or ''} {tuple(windows)!r}", windows)
