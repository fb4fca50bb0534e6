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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from agupshup.client import egress_key
from agupshup.stores import SqliteThread

__all__ = ["IDLE_LIMIT", "TokenFile", "token_key"]

#: The server drops a token after 30 idle minutes; one less, for the clocks' disagreement.
IDLE_LIMIT = 29 * 60.0

_SCHEMA = "CREATE TABLE IF NOT EXISTS cli_tokens (key TEXT PRIMARY KEY, token TEXT, used REAL)"


def token_key(base_url: str, phone: str) -> str:
    """The file's key: the server host (every spelling of its URL alike) and the phone."""
    return f"{egress_key(base_url)}|{phone}"


class TokenFile:
    """A :class:`agupshup.session.TokenStore` in a SQLite file, for the CLI's runs. Its
    statements run on its own thread (:class:`agupshup.stores.SqliteThread`): off the event
    loop for the session, and blocking for the commands' synchronous calls."""

    shared = True

    def __init__(self, path: Path, *, time_scale: float = 1.0) -> None:
        self.path = path
        self.idle_limit = IDLE_LIMIT / time_scale
        self._db = SqliteThread(self._open, name="agupshup-cli-tokens")
        self._db.call(_execute, _SCHEMA)
        #: The keys this run loaded or saved a token for: :meth:`touch` renews their use.
        self._used: set[str] = set()

    def _open(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30.0, isolation_level=None)

    @staticmethod
    def _file_key(session_key: str) -> str:
        # The session keys by its client's base URL; the file by host, like the ledger.
        scope, _, phone = session_key.rpartition("|")
        return token_key(scope, phone)

    # -- the TokenStore protocol (called by the session) -------------------------------------

    async def load(self, key: str) -> str | None:
        return await self._db.run(self._stored, self._file_key(key))

    async def save(self, key: str, token: str) -> None:
        key = self._file_key(key)
        await self._db.run(_execute, "INSERT OR REPLACE INTO cli_tokens VALUES (?, ?, ?)",
                           key, token, time.time())
        self._used.add(key)

    async def discard(self, key: str, token: str) -> None:
        await self._db.run(_execute, "DELETE FROM cli_tokens WHERE key = ? AND token = ?",
                           self._file_key(key), token)

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        # Two commands logging in at once each get a token; the server allows it.
        yield

    # -- for the commands ---------------------------------------------------------------------

    def stored(self, key: str) -> str | None:
        """The live token under ``key`` (a :func:`token_key`), dropping one idle too long."""
        return self._db.call(self._stored, key)

    def _stored(self, db: sqlite3.Connection, key: str) -> str | None:
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
        like = "SELECT key FROM cli_tokens WHERE key LIKE ? ESCAPE '\\'"
        rows = self._db.call(_execute, like, _like_prefix(host_key) + "|%")
        return [str(r[0]) for r in rows]

    def touch(self) -> None:
        """This run used its tokens: the server's idle clock restarted for them."""
        rows = [(time.time(), key) for key in self._used]
        self._db.call(_execute_many, "UPDATE cli_tokens SET used = ? WHERE key = ?", rows)

    def close(self) -> None:
        self._db.close()

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r})"


def _execute(db: sqlite3.Connection, sql: str, *args: str | float) -> list[Any]:
    return db.execute(sql, args).fetchall()


def _execute_many(db: sqlite3.Connection, sql: str, rows: list[tuple[float, str]]) -> None:
    db.executemany(sql, rows)


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
