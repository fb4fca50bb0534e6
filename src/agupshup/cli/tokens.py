"""The CLI's login tokens, kept between runs so that a command costs one call, not four.

Rules this module enforces:

* The file lives beside the throttle ledger, private (0600 in a 0700 directory), and holds
  tokens only: never a password. One token per server host (as the ledger keys it, by
  :func:`agupshup.client.egress_key`) and phone.
* A token idle longer than the server keeps one (29 server minutes, shorter with
  ``--time-scale``) is dropped on load instead of costing a refused call.
* It is a *shared* store: leaving a command does not log out; ``agupshup logout`` does.
* Nothing here logs or prints a token.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from agupshup.client import egress_key

__all__ = ["IDLE_LIMIT", "TokenFile", "token_key"]

#: The server drops a token after 30 idle minutes; one less, for the clocks' disagreement.
IDLE_LIMIT = 29 * 60.0

_SCHEMA = "CREATE TABLE IF NOT EXISTS cli_tokens (key TEXT PRIMARY KEY, token TEXT, used REAL)"


def token_key(base_url: str, phone: str) -> str:
    """The file's key: the server host (every spelling of its URL alike) and the phone."""
    return f"{egress_key(base_url)}|{phone}"


class TokenFile:
    """A :class:`agupshup.session.TokenStore` in a SQLite file, for the CLI's runs."""

    shared = True

    def __init__(self, path: Path, *, time_scale: float = 1.0) -> None:
        self.path = path
        self.idle_limit = IDLE_LIMIT / time_scale
        with self._db() as db:
            db.execute(_SCHEMA)
        #: The keys this run loaded or saved a token for: :meth:`touch` renews their use.
        self._used: set[str] = set()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    @staticmethod
    def _file_key(session_key: str) -> str:
        # The session keys by its client's base URL; the file by host, like the ledger.
        scope, _, phone = session_key.rpartition("|")
        return token_key(scope, phone)

    # -- the TokenStore protocol (called by the session) -------------------------------------

    async def load(self, key: str) -> str | None:
        return self.stored(self._file_key(key))

    async def save(self, key: str, token: str) -> None:
        key = self._file_key(key)
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO cli_tokens VALUES (?, ?, ?)",
                       (key, token, time.time()))
        self._used.add(key)

    async def discard(self, key: str, token: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM cli_tokens WHERE key = ? AND token = ?",
                       (self._file_key(key), token))

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        # Two commands logging in at once each get a token; the server allows it.
        yield

    # -- for the commands ---------------------------------------------------------------------

    def stored(self, key: str) -> str | None:
        """The live token under ``key`` (a :func:`token_key`), dropping one idle too long."""
        with self._db() as db:
            row = db.execute("SELECT token, used FROM cli_tokens WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            if time.time() - float(row[1]) > self.idle_limit:
                db.execute("DELETE FROM cli_tokens WHERE key = ?", (key,))
                return None
        self._used.add(key)
        return str(row[0])

    def keys(self, host_key: str) -> list[str]:
        """The keys stored for a server host (one per phone)."""
        with self._db() as db:
            rows = db.execute("SELECT key FROM cli_tokens WHERE key LIKE ? ESCAPE '\\'",
                              (_like_prefix(host_key) + "|%",)).fetchall()
        return [str(r[0]) for r in rows]

    def touch(self) -> None:
        """This run used its tokens: the server's idle clock restarted for them."""
        with self._db() as db:
            db.executemany("UPDATE cli_tokens SET used = ? WHERE key = ?",
                           [(time.time(), key) for key in self._used])

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r})"


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
