"""The login token's lifecycle: lazy, single-flight login; loss and re-login; logout.

Rules this module enforces:

* One login at a time: any number of concurrent callers share one ``getChallenge`` + ``login``.
  Each waits for it only until its own deadline; a caller whose deadline is later than the one
  the login ran under starts a login of its own when that one gives up on its deadline.
* The login path is retried like a read (:class:`~agupshup.retry.RetryPolicy`): faults on
  ``getChallenge`` by the client's call path, and a ``login`` whose outcome is unknown is redone
  here with a fresh challenge (the old one is spent whatever happened). A challenge whose login
  could not be sent (quota, deadline, 113) is kept for the next login, so its call is not lost.
* A token idle longer than ``idle_timeout`` is dropped before use (the server would refuse it,
  and that refusal would waste a call); the server's token-invalid code drops it too, at once,
  so that no caller is handed a token already refused.
* Whether a login may be tried at all is the :class:`~agupshup.breaker.LoginBreaker`'s call
  (terminal failures remembered, a circuit opened by refusals of the login, faults ignored).
* A token serves any number of calls: the protocol names no other way a token dies than logout
  and 30 idle minutes (docs/protocol.md, "Tokens"). A server that kills tokens sooner costs a
  refused call per caller and token, never an ``InvalidToken`` while other calls make progress
  (:attr:`Session.served`; the client's ``RetryPolicy.relogins``).
* Secrets never leave: :class:`Credentials` and :class:`Session` reprs hide the password and
  the token, and nothing here logs either.

The session makes its calls through a ``call`` function handed to it by the client, so it
never sees a transport or the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from agupshup import errors as E
from agupshup import wire
from agupshup.breaker import LoginBreaker
from agupshup.clock import Clock, Overdue, within
from agupshup.models import Challenge
from agupshup.retry import RETRYABLE, RetryPolicy
from agupshup.tokenstore import MemoryTokenStore
from agupshup.wire import validate

__all__ = [
    "ENV_PASSWORD",
    "ENV_PHONE",
    "Credentials",
    "CredentialsProvider",
    "Session",
    "TokenStore",
    "credentials_from_env",
    "env_credentials",
]

log = logging.getLogger("agupshup.session")
T = TypeVar("T")


class Call(Protocol):
    """The client's call path: send ``request`` (with ``token``, if any) and decode the result,
    starting nothing after ``deadline`` (``Clock.monotonic()`` time; None: no deadline)."""

    async def __call__(
        self, request: wire.Request[T], token: str | None, deadline: float | None = None, /
    ) -> T: ...


#: How often a caller may move on to a login of its own after joining ones that gave up.
_JOINS = 3
#: A login that raised one of these was not sent: its challenge is unspent.
_UNSENT: tuple[type[E.GupshupError], ...] = (
    E.QuotaExhausted,
    E.ThrottleLimitExceeded,
    E.LedgerError,
    E.Closed,
)
#: Seconds an unspent challenge is kept for the next login (the server keeps it 5 minutes).
_SPARE_LIFE = 120.0


@dataclass(frozen=True, slots=True)
class Credentials:
    phone: str
    password: str = field(repr=False)
    country_code: str = "91"

    def __repr__(self) -> str:
        return f"Credentials(phone={self.phone!r}, password=<redacted>)"


CredentialsProvider = Callable[[], "Credentials | Awaitable[Credentials]"]


#: The environment's credentials: read here only (the CLI, the demo and the widget ask this module).
ENV_PHONE = "GUPSHUP_PHONE"
ENV_PASSWORD = "GUPSHUP_PASSWORD"


def env_credentials() -> tuple[str | None, str | None]:
    """The phone and the password the environment sets (``None`` for each one unset or empty)."""
    return os.environ.get(ENV_PHONE) or None, os.environ.get(ENV_PASSWORD) or None


def credentials_from_env() -> Credentials | None:
    """``GUPSHUP_PHONE`` and ``GUPSHUP_PASSWORD``, when both are set."""
    phone, password = env_credentials()
    return Credentials(phone, password) if phone and password else None


class TokenStore(Protocol):
    """Where the token lives (:mod:`agupshup.tokenstore`); a shared one lets N processes use
    one login."""

    #: Other processes use its tokens: closing one client must not log them out.
    shared: bool

    async def load(self, key: str) -> str | None: ...
    async def save(self, key: str, token: str) -> None: ...
    async def discard(self, key: str, token: str) -> None: ...
    def lock(self, key: str) -> AbstractAsyncContextManager[None]: ...


def _retrieve(login: asyncio.Future[str]) -> None:
    """Mark a login's failure as seen: every waiter may have given up on it."""
    if not login.cancelled():
        login.exception()


class Session:
    """Owns one user's token. ``await session.token(call)`` logs in when needed."""

    def __init__(
        self,
        credentials: Credentials | CredentialsProvider | None,
        *,
        clock: Clock,
        scope: str = "",
        store: TokenStore | None = None,
        idle_timeout: float = 29 * 60,
        max_failures: int = 3,
        cooldown: float = 60.0,
        terminal_cooldown: float = 300.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._credentials = credentials
        self._clock = clock
        self._store = store or MemoryTokenStore()
        self._scope = scope
        self._key = scope
        self._idle_timeout = idle_timeout
        self._breaker = LoginBreaker(
            max_failures=max_failures, cooldown=cooldown, terminal_cooldown=terminal_cooldown
        )
        self._token: str | None = None
        self._last_used = 0.0
        self._retry = retry or RetryPolicy()
        self._inflight: asyncio.Future[str] | None = None
        self._inflight_deadline: float | None = None
        self._spare: tuple[Challenge, float] | None = None
        self.logins = 0
        #: Calls that succeeded with a token: how a caller whose token died tells progress
        #: (others used the tokens) from a server whose fresh tokens never work.
        self.served = 0

    async def token(self, call: Call, deadline: float | None = None) -> str:
        """A live token, logging in (once, for all concurrent callers) if there is none.
        Raises :class:`~agupshup.errors.DeadlineExceeded` if none is ready by ``deadline``."""
        now = self._clock.monotonic()
        if self._token is not None and now - self._last_used > self._idle_timeout:
            log.info("token idle for %.0fs; logging in again before use", now - self._last_used)
            await self.invalidate(self._token)
        if self._token is None:
            self._token = await self._shared_login(call, deadline)
        self._last_used = self._clock.monotonic()
        return self._token

    async def use(self, call: Call, deadline: float | None = None) -> str:
        """A token for one call, to be given back with :meth:`release` whatever happens."""
        return await self.token(call, deadline)

    def release(self, token: str, outcome: Literal["ok", "refused", "fault"]) -> None:
        """The call given ``token`` by :meth:`use` is over. A refusal retires the token at
        once, so that no later caller is handed it."""
        if outcome == "ok":
            self.served += 1
        elif outcome == "refused" and token == self._token:
            self._token = None

    async def invalidate(self, token: str) -> None:
        """The server refused ``token``: forget it (unless a newer one replaced it already)."""
        if self._token == token:
            self._token = None
        await self._store.discard(self._key, token)

    async def close(self, call: Call) -> None:
        """The client is closing: log out, unless other processes share the token."""
        login = self._inflight
        if login is not None and not login.done():
            login.cancel()
            await asyncio.gather(login, return_exceptions=True)
        if self._store.shared:
            self._token = None
            return
        # Best effort only if admitted at once: closing must not wait for a throttle window
        # (a full day window would hold it for hours); the token then expires by itself.
        await self.logout(call, self._clock.monotonic())

    async def logout(self, call: Call, deadline: float | None = None) -> None:
        """End the session on the server, starting nothing after ``deadline``. Idempotent;
        never raises for a dead token."""
        token = self._token
        if token is None:
            return
        self._token = None
        await self._store.discard(self._key, token)
        try:
            await call(wire.logout(), token, deadline)
        except E.GupshupError as exc:  # a redirect or a 4xx page too: logout is best effort
            log.info("logout failed (%s); the token will expire by itself", type(exc).__name__)

    async def _shared_login(self, call: Call, deadline: float | None) -> str:
        for joins in range(_JOINS):
            mine = self._inflight is None or self._inflight.done()
            if mine:
                self._inflight = asyncio.ensure_future(self._login(call, deadline))
                self._inflight.add_done_callback(_retrieve)
                self._inflight_deadline = deadline
            theirs, their_deadline = self._inflight, self._inflight_deadline
            assert theirs is not None
            try:
                # Bounded by our deadline even for our own login: the credentials provider
                # and the token store's lock do not know it. Shielded: one waiter giving up
                # must not cancel the login the others wait on.
                return await self._within(asyncio.shield(theirs), deadline)
            except E.QuotaExhausted:
                # The login gave up on its starter's deadline; ours may leave it more time.
                if mine or joins + 1 == _JOINS or not self._outlasts(deadline, their_deadline):
                    raise
        raise AssertionError("unreachable")

    def _outlasts(self, mine: float | None, theirs: float | None) -> bool:
        if mine is None:
            return theirs is not None
        return theirs is not None and mine > theirs and self._clock.monotonic() < mine

    async def _within(self, waiting: asyncio.Future[T], deadline: float | None) -> T:
        """``waiting``'s result, or :class:`~agupshup.errors.DeadlineExceeded` once
        ``deadline`` passes (``waiting`` is then cancelled: pass a shield to keep it)."""
        since = self._clock.monotonic()
        try:
            return await within(self._clock, deadline, waiting)
        except Overdue as exc:
            assert deadline is not None
            raise E.DeadlineExceeded(deadline, self._clock.monotonic() - since) from exc

    async def _login(self, call: Call, deadline: float | None) -> str:
        self._breaker.check(self._clock.monotonic())
        creds = await self._resolve()
        # Keyed by the account actually used, whichever way its credentials arrived.
        self._key = f"{self._scope}|{creds.phone}"
        stored = await self._store.load(self._key)
        if stored is not None:
            return stored
        async with self._store.lock(self._key):
            # Another process may have logged in while we waited for the lock.
            stored = await self._store.load(self._key)
            if stored is not None:
                return stored
            token = await self._guarded_login(call, creds, deadline)
            await self._store.save(self._key, token)
        return token

    async def _guarded_login(
        self, call: Call, creds: Credentials, deadline: float | None
    ) -> str:
        try:
            token = await self._fresh_login(call, creds, deadline)
        except E.GupshupError as exc:
            self._breaker.failed(exc, self._clock.monotonic())
            raise
        self._breaker.succeeded()
        return token

    async def _fresh_login(
        self, call: Call, creds: Credentials, deadline: float | None
    ) -> str:
        # Check the phone before the challenge, so a typo costs no call at all.
        validate.check_phone(wire.LOGIN.name, creds.phone)
        started = self._clock.monotonic()
        attempt = 0
        while True:
            challenge, fetched, kept = await self._challenge(call, deadline)
            request = wire.login(creds.phone, creds.password, challenge, creds.country_code)
            try:
                token = await call(request, None, deadline)
            except _UNSENT:
                # The login never ran, so its challenge is still alive: the next login uses it.
                self._spare = (challenge, fetched)
                raise
            except E.WrongPassword:
                # A kept challenge may have expired early: only a fresh one's 121 is conclusive.
                if not kept:
                    raise
                continue
            except RETRYABLE as exc:
                # The outcome is unknown and the challenge spent: start again from a new one.
                await self._back_off(exc, attempt, started, deadline)
                attempt += 1
                continue
            self.logins += 1
            log.info("logged in as %s", creds.phone)
            return token

    async def _challenge(
        self, call: Call, deadline: float | None
    ) -> tuple[Challenge, float, bool]:
        """A challenge, when it was fetched, and whether it was kept from a login that could
        not be sent (so that the call it cost is not lost)."""
        spare, self._spare = self._spare, None
        if spare is not None and self._clock.monotonic() - spare[1] < _SPARE_LIFE:
            return spare[0], spare[1], True
        # A read: the call path retries its faults itself.
        challenge = await call(wire.get_challenge(), None, deadline)
        return challenge, self._clock.monotonic(), False

    async def _back_off(
        self, fault: E.GupshupError, attempt: int, started: float, deadline: float | None
    ) -> None:
        """Wait before the next login attempt, or re-raise ``fault`` if there is none."""
        now = self._clock.monotonic()
        left = None if deadline is None else deadline - now
        what = f"login: {type(fault).__name__}; again with a new challenge"
        if not await self._retry.back_off(self._clock, what, attempt, now - started, left=left):
            raise fault

    async def _resolve(self) -> Credentials:
        source = self._credentials
        if source is None:
            source = credentials_from_env()
        if source is None:
            raise E.ValidationError(
                "users.login",
                "phone",
                f"no credentials: pass phone= and password=, or set {ENV_PHONE} and {ENV_PASSWORD}",
            )
        if isinstance(source, Credentials):
            return source
        got = source()
        return await got if isinstance(got, Awaitable) else got

    def __repr__(self) -> str:
        state = "logged in" if self._token else "logged out"
        return f"<Session {state}, token=<redacted>>"
