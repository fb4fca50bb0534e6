"""The login token's lifecycle: lazy, single-flight login; loss and re-login; logout.

Rules this module enforces:

* One login at a time: any number of concurrent callers share one ``getChallenge`` + ``login``.
* A token idle longer than ``idle_timeout`` is dropped before use (the server would refuse it,
  and that refusal would waste a call); the server's token-invalid code drops it too.
* Terminal login failures (wrong password, not activated, disabled, bad phone or country
  code) are remembered: later callers get the same error without another attempt until
  ``terminal_cooldown`` has passed. Other failures open a circuit after ``max_failures`` in a
  row, for ``cooldown`` seconds.
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
from typing import Protocol, TypeVar

from agupshup import errors as E
from agupshup import wire
from agupshup.clock import Clock
from agupshup.tokenstore import MemoryTokenStore
from agupshup.wire import validate

__all__ = [
    "Credentials",
    "CredentialsProvider",
    "Session",
    "TokenStore",
    "credentials_from_env",
]

log = logging.getLogger("agupshup.session")
T = TypeVar("T")


class Call(Protocol):
    """The client's call path: send ``request`` (with ``token``, if any) and decode the result."""

    async def __call__(self, request: wire.Request[T], token: str | None, /) -> T: ...


_TERMINAL = (
    E.WrongPassword,
    E.NotActivated,
    E.AccountDisabled,
    E.InvalidCountryCode,
    E.InvalidPhone,
    E.ValidationError,
)


@dataclass(frozen=True, slots=True)
class Credentials:
    phone: str
    password: str = field(repr=False)
    country_code: str = "91"

    def __repr__(self) -> str:
        return f"Credentials(phone={self.phone!r}, password=<redacted>)"


CredentialsProvider = Callable[[], "Credentials | Awaitable[Credentials]"]


def credentials_from_env() -> Credentials | None:
    """``GUPSHUP_PHONE`` and ``GUPSHUP_PASSWORD``, when both are set."""
    phone, password = os.environ.get("GUPSHUP_PHONE"), os.environ.get("GUPSHUP_PASSWORD")
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
    ) -> None:
        self._credentials = credentials
        self._clock = clock
        self._store = store or MemoryTokenStore()
        self._scope = scope
        self._key = scope
        self._idle_timeout = idle_timeout
        self._max_failures = max_failures
        self._cooldown = cooldown
        self._terminal_cooldown = terminal_cooldown
        self._token: str | None = None
        self._last_used = 0.0
        self._inflight: asyncio.Future[str] | None = None
        self._failures = 0
        self._open_until = 0.0
        self._terminal: E.GupshupError | None = None
        self.logins = 0

    @property
    def logged_in(self) -> bool:
        return self._token is not None

    async def token(self, call: Call) -> str:
        """A live token, logging in (once, for all concurrent callers) if there is none."""
        now = self._clock.monotonic()
        if self._token is not None and now - self._last_used > self._idle_timeout:
            log.info("token idle for %.0fs; logging in again before use", now - self._last_used)
            await self.invalidate(self._token)
        if self._token is None:
            self._token = await self._shared_login(call)
        self._last_used = self._clock.monotonic()
        return self._token

    async def invalidate(self, token: str) -> None:
        """The server refused ``token``: forget it (unless a newer one replaced it already)."""
        if self._token == token:
            self._token = None
        await self._store.discard(self._key, token)

    async def close(self, call: Call) -> None:
        """The client is closing: log out, unless other processes share the token."""
        if self._store.shared:
            self._token = None
            return
        await self.logout(call)

    async def logout(self, call: Call) -> None:
        """End the session on the server. Idempotent; never raises for a dead token."""
        token, self._token = self._token, None
        if token is None:
            return
        await self._store.discard(self._key, token)
        try:
            await call(wire.logout(), token)
        except (E.APIError, E.TransportError) as exc:
            log.info("logout failed (%s); the token will expire by itself", type(exc).__name__)

    async def _shared_login(self, call: Call) -> str:
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._login(call))
        # Shielded: one waiter's cancellation must not cancel the login the others wait on.
        return await asyncio.shield(self._inflight)

    async def _login(self, call: Call) -> str:
        self._check_circuit()
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
            token = await self._guarded_login(call, creds)
            await self._store.save(self._key, token)
        return token

    async def _guarded_login(self, call: Call, creds: Credentials) -> str:
        try:
            token = await self._fresh_login(call, creds)
        except _TERMINAL as exc:
            self._terminal = exc
            self._open_until = self._clock.monotonic() + self._terminal_cooldown
            raise
        except (E.APIError, E.TransportError):
            self._failures += 1
            if self._failures >= self._max_failures:
                self._open_until = self._clock.monotonic() + self._cooldown
            raise
        self._failures, self._terminal = 0, None
        return token

    async def _fresh_login(self, call: Call, creds: Credentials) -> str:
        # Check the phone before the challenge, so a typo costs no call at all.
        validate.check_phone(wire.LOGIN.name, creds.phone)
        challenge = await call(wire.get_challenge(), None)
        request = wire.login(creds.phone, creds.password, challenge, creds.country_code)
        token = await call(request, None)
        self.logins += 1
        log.info("logged in as %s", creds.phone)
        return token

    def _check_circuit(self) -> None:
        now = self._clock.monotonic()
        if now >= self._open_until:
            return
        if self._terminal is not None:
            raise self._terminal.with_traceback(None)
        raise E.CircuitOpen(self._open_until, f"{self._failures} login failures in a row")

    async def _resolve(self) -> Credentials:
        source = self._credentials
        if source is None:
            source = credentials_from_env()
        if source is None:
            raise E.ValidationError(
                "users.login",
                "phone",
                "no credentials: pass phone= and password=, or set "
                "GUPSHUP_PHONE and GUPSHUP_PASSWORD",
            )
        if isinstance(source, Credentials):
            return source
        got = source()
        return await got if isinstance(got, Awaitable) else got

    def __repr__(self) -> str:
        state = "logged in" if self._token else "logged out"
        return f"<Session {state}, token=<redacted>>"
