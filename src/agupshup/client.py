"""The Client: one object, one call path, sixteen calls.

Rules this module enforces:

* Every call takes the same path — build (validate) → token → admit → send → decode → learn —
  in :meth:`Client._call`; methods only build their request and shape the result.
* The scheduler admits every call that leaves, retries and logins included.
* Reads, and the login path, are retried after faults by :class:`~agupshup.retry.RetryPolicy`;
  a dead token is replaced (one login for all concurrent callers) and the call resent, as long
  as fresh tokens work (never an :class:`~agupshup.errors.InvalidToken` while a login can
  succeed); writes whose outcome is unknown are resolved, not resent blindly, and never
  reported refused once stored (see :meth:`Client.post_message`).
* ``max_wait`` is a deadline for the whole call: throttle waits, the implicit login, retries
  and back-offs included. Nothing starts after it.
* Throttling is one argument, ``throttle=``: a :class:`Throttle` (the egress's shared
  scheduler with those options: the default), a scheduler of one's own, or ``None``. Options
  never contradict silently: arguments that one another would override raise
  :class:`ValueError` saying why. Clients of one egress (:func:`egress_key`) in a process share
  one scheduler, and must agree on its windows, ledger and clock while they are open.
* Time is one argument, ``clock=``: a sped-up server is matched with
  ``clock=ScaledClock(scale=s)``, which moves the throttle windows, the token idle rule, breaker
  cool-downs, retries and polling together, as the emulator's ``time_scale`` moves its side.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from types import TracebackType
from typing import Literal, Self, TypeVar, Unpack

from agupshup import aggregate, wire
from agupshup import errors as E
from agupshup.aggregate import Follower, OnDrop, Resume
from agupshup.client_throttle import (
    DEFAULT_THROTTLE,
    ENV_LEDGER,
    LEDGER_OFF,
    DeprecatedKeywords,
    SchedulerLike,
    Throttle,
    Unthrottled,
    choose_throttle,
    default_ledger_path,
    egress_key,
    join_egress,
    old_time_and_format,
    warn_deprecated,
)
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
)
from agupshup.planner import Budget
from agupshup.posting import Posting
from agupshup.retry import RETRYABLE, RetryPolicy
from agupshup.session import Credentials, CredentialsProvider, Session, TokenStore
from agupshup.streams import CheckpointLike, Since, Streams, checkpoint_of
from agupshup.throttle import Scheduler
from agupshup.transport import AiohttpTransport, Transport

# Throttle, egress_key, default_ledger_path, ENV_LEDGER and LEDGER_OFF live in
# agupshup.client_throttle; they stay importable from here, where users found them.
__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_BASE_URL",
    "ENV_LEDGER",
    "LEDGER_OFF",
    "Client",
    "Throttle",
    "default_ledger_path",
    "egress_key",
]

log = logging.getLogger("agupshup.client")
T = TypeVar("T")
DEFAULT_BASE_URL = "http://api.smsgupshup.com"
#: The environment variable that names another server (read by the CLI and the demo).
ENV_BASE_URL = "GUPSHUP_BASE_URL"



#: API errors that say nothing about the token (113, 129, a malformed request).
_UNPROVEN = (E.ThrottleLimitExceeded, E.ServerError, E.InvalidRequest)



@dataclasses.dataclass(slots=True)
class _Attempts:
    """What one call has met so far on its way to an answer."""

    policy: RetryPolicy
    started: float = 0.0
    attempt: int = 0
    throttled: int = 0
    #: Token refusals in all, and in a row without any call succeeding in between.
    refusals: int = 0
    idle: int = 0
    #: :attr:`Session.served` when this call last met a dead token.
    served: int = -1


class Client(Streams, Posting):
    """An asyncio client for the GupShup Stream and Group API.

    ``async with Client(base_url, phone=..., password=...) as client:`` — login is lazy and
    happens on the first call that needs a token; leaving the block logs out.

    Every call method takes ``max_wait=``: a deadline, in seconds, for the whole call (throttle
    waits, an implicit login, retries and back-offs). A request that cannot start within it is
    not sent: the call raises :class:`~agupshup.errors.QuotaExhausted` (or its subclass
    :class:`~agupshup.errors.DeadlineExceeded`), or the last fault when a retry would not fit.

    ``throttle=`` is the one throttle argument (docs/throttle.md): a :class:`Throttle` (the
    default, ``Throttle()``: the egress's shared scheduler with GupShup's windows and the
    per-host ledger), a scheduler built by hand (its own windows, ledger, clock, reserve,
    pacing; clients may share it), or ``None``: every call admitted at once.

    ``clock=`` stays a separate argument because the throttle is only one of its users: the
    token idle rule, breaker cool-downs, retry back-offs, deadlines and polling read it too.
    Against a server whose time runs ``s`` times faster (the emulator's ``time_scale``), pass
    ``clock=ScaledClock(scale=s)`` and all of them move together; tests inject a fake clock.

    ``wire_format=`` is what the API is asked to answer in (``json`` or ``xml``).

    The iterators over the paginated calls (``group_stream``, ``public_stream`` …) are the
    client's own methods (:class:`~agupshup.streams.Streams`); ``merged_stream`` and
    ``follow_groups`` follow many groups as one.

    The spellings before issue 25 (``format=``, ``time_scale=``, ``scheduler=``, ``windows=``,
    ``ledger=``, ``throttle=True/False``) still work for one release, with a
    :class:`DeprecationWarning` naming the new one.

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
        wire_format: wire.Format = "json",
        timeout: float = 30.0,
        clock: Clock | None = None,
        throttle: Throttle | SchedulerLike | bool | None = DEFAULT_THROTTLE,
        retry: RetryPolicy | None = None,
        transport: Transport | None = None,
        token_store: TokenStore | None = None,
        max_body: int = 2 * 1024 * 1024,
        local_address: str | None = None,
        **deprecated: Unpack[DeprecatedKeywords],
    ) -> None:
        _check_credentials(phone, password, credentials)
        wire_format, clock = old_time_and_format(wire_format, clock, deprecated)
        chosen = choose_throttle(throttle, deprecated)
        if wire_format not in ("json", "xml"):
            raise E.ValidationError("Client", "wire_format", "must be 'json' or 'xml'")
        if phone is not None and password is not None:
            credentials = Credentials(phone, password)
        # Shown (repr, the token store's scope) without any ``user:pass@``; only the transport
        # keeps the URL as given, to send it.
        self.base_url = E.redact_url(base_url.rstrip("/"))
        self.wire_format: wire.Format = wire_format
        self.timeout = timeout
        self.clock: Clock = clock or SystemClock()
        self.retry = retry or RetryPolicy()
        self._write_policy = dataclasses.replace(self.retry, attempts=1)
        # fleet (issue 18): the egress; the throttle budget is kept per egress.
        self.local_address = local_address
        self._shared: Scheduler | None = None
        if isinstance(chosen, Throttle):
            chosen = self._shared = join_egress(chosen, self.base_url, self.clock, local_address)
        self.scheduler: SchedulerLike = Unthrottled() if chosen is None else chosen
        self._transport: Transport = transport or AiohttpTransport(
            base_url, timeout=timeout, max_body=max_body, local_address=local_address
        )
        self.session = Session(
            credentials, clock=self.clock, scope=self.base_url, store=token_store, retry=self.retry
        )
        self._closed = False
        self._start_posting()

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
        """Log out (if logged in, the token is not shared, and the throttle admits the logout
        at once: closing never waits for a window) and release the connection pool. Safe to
        call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.session.close(self._session_call)
        finally:
            if self._shared is not None:
                self._shared.detach()
            await self._transport.aclose()

    def quota(self) -> list[QuotaWindow]:
        """Each throttle window: used, limit, and when the next call fits: ``free_in`` (real
        seconds from now) and ``free_wall`` (UTC) for people, ``free_at`` on ``clock``."""
        return self.scheduler.quota()

    def __repr__(self) -> str:
        return f"<Client {self.base_url} wire_format={self.wire_format} {self.session!r}>"

    @property
    def format(self) -> wire.Format:
        """Deprecated: :attr:`wire_format`."""
        warn_deprecated("Client.format", "Client.wire_format", stacklevel=3)
        return self.wire_format

    # -- the call path ----------------------------------------------------------------------

    async def _call(self, request: wire.Request[T], *, max_wait: float | None = None) -> T:
        return await self._call_until(request, self._deadline(max_wait))

    async def _call_until(self, request: wire.Request[T], deadline: float | None) -> T:
        return (await self._until(request, deadline)).result

    def _deadline(self, max_wait: float | None) -> float | None:
        return None if max_wait is None else self.clock.monotonic() + max_wait

    def _left(self, deadline: float | None) -> float | None:
        return None if deadline is None else max(0.0, deadline - self.clock.monotonic())

    async def _until(
        self, request: wire.Request[T], deadline: float | None
    ) -> wire.Response[T]:
        """Send ``request`` until it has an answer, starting nothing after ``deadline``."""
        # A write is never resent after a fault, but a 113 proves it did not run.
        state = _Attempts(self.retry if request.spec.idempotent else self._write_policy)
        state.started = self.clock.monotonic()
        while True:
            if self._closed:
                # Checked at each turn: a straggler (a follower outliving the block, a retry
                # after its back-off) must send nothing once the client is closed.
                raise E.Closed("the client is closed")
            token = None
            if request.needs_token:
                token = await self.session.use(self._session_call, deadline)
            try:
                response = await self._send_using(request, token, deadline)
            except E.InvalidToken:
                await self._token_refused(request, token, state, deadline)
            except E.ThrottleLimitExceeded:
                state.throttled += 1
                # 113 means "not executed": a scheduler now holds the resend until rollover;
                # without one, resending would be blind.
                if state.throttled > state.policy.throttle_attempts or isinstance(
                    self.scheduler, Unthrottled
                ):
                    raise
            except RETRYABLE as exc:
                await self._back_off(request, exc, state, deadline)
            else:
                return response

    async def _send_using(
        self, request: wire.Request[T], token: str | None, deadline: float | None
    ) -> wire.Response[T]:
        """Send with ``token`` from :meth:`Session.use`, and give it back with the outcome."""
        if token is None:
            return await self._send_response(request, None, self._left(deadline))
        outcome: Literal["ok", "refused", "fault"] = "fault"
        try:
            response = await self._send_response(request, token, self._left(deadline))
            outcome = "ok"
        except E.InvalidToken:
            outcome = "refused"
            raise
        except _UNPROVEN:
            raise
        except E.APIError:
            # A business refusal (127, 128, 154 …): the server checks the token before its
            # business rules (protocol.md §1), so the token worked — progress for the others.
            outcome = "ok"
            raise
        finally:
            self.session.release(token, outcome)
        return response

    async def _token_refused(
        self, request: wire.Request[T], token: str | None, state: _Attempts,
        deadline: float | None,
    ) -> None:
        """Re-raise the refusal unless a new token may still work (the current exception)."""
        if token is None:
            raise
        if deadline is not None and self.clock.monotonic() >= deadline:
            # Too late for a re-login: it would start (and be paid for) after the deadline.
            raise
        state.refusals += 1
        # Progress: some call succeeded since this one last met a dead token, so the tokens
        # work and this one was only unlucky (tokens that die after a few uses, shared by
        # many concurrent calls). Without progress, a fresh token is tried only a few times.
        state.idle = 0 if self.session.served != state.served else state.idle + 1
        state.served = self.session.served
        policy = state.policy
        if state.idle > policy.relogins or state.refusals >= policy.token_refusals:
            raise
        log.info("%s: token refused; trying a fresh one", request.spec.name)
        # Only the token this call saw fail is dropped: a fresher one is simply used.
        await self.session.invalidate(token)

    async def _back_off(
        self,
        request: wire.Request[T],
        fault: E.GupshupError,
        state: _Attempts,
        deadline: float | None,
    ) -> None:
        """Wait before resending after ``fault``, or re-raise it if the policy or the
        deadline leaves no further attempt."""
        elapsed = self.clock.monotonic() - state.started
        what = f"{request.spec.name}: {type(fault).__name__}"
        left = self._left(deadline)
        if not await state.policy.back_off(self.clock, what, state.attempt, elapsed, left=left):
            raise fault
        state.attempt += 1

    async def _session_call(
        self, request: wire.Request[T], token: str | None, deadline: float | None = None
    ) -> T:
        """The call path of the session's own calls: login steps are retried like any call
        (they carry no token); logout goes once, as a failed one just lets the token expire."""
        if token is not None:
            return (await self._send_response(request, token, self._left(deadline))).result
        return await self._call_until(request, deadline)

    async def _send_response(
        self, request: wire.Request[T], token: str | None, max_wait: float | None
    ) -> wire.Response[T]:
        spec = request.spec
        fields = request.fields(self.wire_format, token)
        async with self.scheduler.slot(spec.lane, max_wait=max_wait) as slot:
            try:
                raw = await self._transport.send(
                    fields, http_method=spec.http_method, timeout=self.timeout
                )
                response = wire.decode(request, raw.body, raw.content_type, token=token)
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
            wire.get_public_stream(start, count, skip_adult=skip_adult), max_wait=max_wait
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
        await self.session.token(self._session_call)

    async def logout(self) -> None:
        """``users.logout``. Idempotent; a dead token is not an error."""
        await self.session.logout(self._session_call)

    async def get_my_groups(
        self, start: int = 0, count: int = 30, *, max_wait: float | None = None
    ) -> list[Group]:
        """``users.getMyGroups``: one page of the groups the user owns."""
        return await self._call(wire.get_my_groups(start, count), max_wait=max_wait)

    async def get_joined_groups(
        self, start: int = 0, count: int = 30, *, max_wait: float | None = None
    ) -> list[Group]:
        """``users.getJoinedGroups``: one page of the groups the user has joined."""
        return await self._call(wire.get_joined_groups(start, count), max_wait=max_wait)

    async def get_joined_groups_stream(
        self, start: int = 0, count: int = 30, *, max_wait: float | None = None
    ) -> list[Message]:
        """``users.getJoinedGroupsStream``: one page of messages from joined groups."""
        return await self._call(wire.get_joined_groups_stream(start, count), max_wait=max_wait)

    # -- posting (post_message: :class:`~agupshup.posting.Posting`) --------------------------

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

    # -- many streams as one: the follow engine (the single streams: :class:`Streams`) ----

    def merged_stream(
        self,
        groups: Iterable[str],
        *,
        follow: bool = False,
        since: Since = None,
        limit: int | None = None,
        resume_from: Resume = None,
        checkpoint: CheckpointLike | None = None,
        budget: Budget | None = None,
        per_group: bool = False,
        on_drop: OnDrop = None,
        buffer: int | None = None,
        planned: bool | None = None,
    ) -> Follower:
        """Many groups' messages as one stream, each once: the follow engine
        (:mod:`agupshup.aggregate`). ``since`` (:data:`~agupshup.streams.Since`, as for one
        stream): ``None``, each group's history, then (``follow``) what arrives; ``"now"``, new
        messages only; an id, every later one. Use as ``async with``; ``stream.cursor`` and
        ``checkpoint=`` (a store, or a :class:`~agupshup.checkpoint.Checkpoint`) resume it
        exactly."""
        return aggregate.merged_stream(
            self, groups, follow=follow, since=since, limit=limit, resume_from=resume_from,
            checkpoint=checkpoint_of(checkpoint), budget=budget, per_group=per_group,
            on_drop=on_drop, buffer=buffer, planned=planned,
        )

    def follow_groups(
        self,
        groups: Iterable[str],
        *,
        since: Since = "now",
        checkpoint: CheckpointLike | None = None,
        budget: Budget | None = None,
        limit: int | None = None,
        per_group: bool = False,
        on_drop: OnDrop = None,
    ) -> Follower:
        """Follow many groups on this client's quota, each new message once: the planner picks
        the cheapest cover of sources (joined stream, public stream, per-group streams) and
        polls each within ``budget`` (docs/aggregator.md). From the checkpoint's cursor, else
        ``since`` (:data:`~agupshup.streams.Since`: ``"now"``, the default; a message id; or
        ``None``, the history). ``per_group=True`` polls every group's own stream."""
        return aggregate.follow_groups(
            self, groups, since=0 if since is None else since,
            checkpoint=checkpoint_of(checkpoint), budget=budget, limit=limit,
            per_group=per_group, on_drop=on_drop,
        )




def _check_credentials(
    phone: str | None, password: str | None, credentials: Credentials | CredentialsProvider | None
) -> None:
    if (phone is None) != (password is None):
        given, missing = ("phone", "password") if password is None else ("password", "phone")
        raise ValueError(f"{given}= without {missing}=: pass both (or credentials=)")
    if phone is not None and credentials is not None:
        raise ValueError("pass phone=/password= or credentials=, not both")


