"""Login: the site-wide salt, single-use challenges and idle-expiring tokens (protocol.md §6, §7).

Rules this module enforces:

* ``rand = base64(md5(base64(md5(password + salt)) + challenge))``, standard base64 of the raw
  digests, md5 inputs UTF-8. Comparison is constant-time.
* A challenge lives ``challenge_ttl`` emulator seconds and is spent by the first login attempt
  that names it, whatever that attempt's outcome.
* A token dies at logout, or after ``token_idle`` emulator seconds without a valid use; every
  valid use restarts that time. With ``token_uses`` set, it also dies after that many valid
  uses (the next use is refused).
* Nothing here logs: salts, challenges, rands and tokens never reach a log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import string
from collections.abc import Container
from dataclasses import dataclass

__all__ = ["Sessions", "login_rand"]

_LETTERS = string.ascii_letters
_PRUNE_AT = 10_000


def login_rand(password: str, salt: str, challenge: str) -> str:
    """The ``rand`` a client must send for ``password`` (protocol.md §6)."""
    inner = base64.b64encode(hashlib.md5((password + salt).encode("utf-8")).digest())
    outer = hashlib.md5(inner + challenge.encode("utf-8")).digest()
    return base64.b64encode(outer).decode("ascii")


@dataclass(slots=True)
class _Token:
    phone: str
    last_used: float
    uses: int = 0


class Sessions:
    """Challenges and tokens."""

    __slots__ = (
        "_challenges",
        "_rng",
        "_tokens",
        "challenge_ttl",
        "salt",
        "token_idle",
        "token_uses",
    )

    def __init__(
        self,
        rng: random.Random,
        salt: str,
        *,
        challenge_ttl: float = 300.0,
        token_idle: float = 1800.0,
        token_uses: int | None = None,
    ) -> None:
        if token_uses is not None and token_uses < 1:
            raise ValueError("token_uses must be at least 1 (or None)")
        self._rng = rng
        self.salt = salt
        self.challenge_ttl = challenge_ttl
        self.token_idle = token_idle
        self.token_uses = token_uses
        self._challenges: dict[str, float] = {}  # challenge -> expiry
        self._tokens: dict[str, _Token] = {}

    # -- challenges -------------------------------------------------------------------------

    def new_challenge(self, now: float) -> str:
        if len(self._challenges) >= _PRUNE_AT:
            self._challenges = {c: t for c, t in self._challenges.items() if t > now}
        challenge = self._fresh(self._challenges)
        self._challenges[challenge] = now + self.challenge_ttl
        return challenge

    def spend_challenge(self, challenge: str, now: float) -> bool:
        """Spend ``challenge``; whether it was alive."""
        expiry = self._challenges.pop(challenge, None)
        return expiry is not None and now < expiry

    def verify(self, password: str, challenge: str, rand: str) -> bool:
        expected = login_rand(password, self.salt, challenge)
        return hmac.compare_digest(expected.encode(), rand.encode("utf-8", "replace"))

    # -- tokens -----------------------------------------------------------------------------

    def issue_token(self, phone: str, now: float) -> str:
        token = self._fresh(self._tokens)
        self._tokens[token] = _Token(phone, now)
        return token

    def check_token(self, token: str, now: float) -> str | None:
        """The phone ``token`` belongs to, if alive; a valid use restarts its idle time."""
        entry = self._tokens.get(token)
        if entry is None:
            return None
        worn = self.token_uses is not None and entry.uses >= self.token_uses
        if worn or now - entry.last_used >= self.token_idle:
            del self._tokens[token]
            return None
        entry.last_used = now
        entry.uses += 1
        return entry.phone

    def logout(self, token: str) -> None:
        self._tokens.pop(token, None)

    def tokens_of(self, phone: str) -> list[str]:
        """Tokens issued to ``phone`` (alive or idle): for tests."""
        return [t for t, e in self._tokens.items() if e.phone == phone]

    def expire_all(self) -> None:
        """Forget every token (as a server restart would)."""
        self._tokens.clear()

    def _fresh(self, taken: Container[str]) -> str:
        while True:
            head = "".join(self._rng.choice(_LETTERS) for _ in range(5))
            value = f"{head}{self._rng.randrange(10**9, 10**10)}"
            if value not in taken:
                return value
