"""The building blocks of the outside stores (``agupshup.stores``), each on its own, and the rule
that every store uses them instead of writing its own."""

from __future__ import annotations

import ast
import asyncio
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from agupshup.clock import FakeClock
from agupshup.stores import (
    RENEW_SHARE,
    Renewer,
    SqliteThread,
    close_redis,
    connect_redis,
    renew_period,
)

SRC = Path(__file__).resolve().parents[1] / "src" / "agupshup"

# -- Redis --------------------------------------------------------------------------------------


async def test_a_url_makes_a_client_the_caller_owns_and_closes() -> None:
    import redis.asyncio

    client, owned = connect_redis("redis://127.0.0.1:1/0", decode_responses=True)  # never used
    assert isinstance(client, redis.asyncio.Redis)
    assert owned
    assert client.get_encoder().decode_responses  # the options reach the client
    closed: list[bool] = []
    real = client.aclose

    async def aclose() -> None:
        closed.append(True)
        await real()

    client.aclose = aclose
    await close_redis(client, owned)
    assert closed == [True]


async def test_a_client_given_is_used_as_it_is_and_never_closed() -> None:
    class Given:
        async def aclose(self) -> None:
            raise AssertionError("a client given to a store is its owner's to close")

    given = Given()
    client, owned = connect_redis(given)
    assert client is given
    assert not owned
    await close_redis(client, owned)


# -- SQLite -------------------------------------------------------------------------------------


def _opener(path: Path, opened: list[int]) -> Any:
    def open_() -> sqlite3.Connection:
        opened.append(threading.get_ident())
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
        return conn

    return open_


def _insert(db: sqlite3.Connection, value: int) -> int:
    db.execute("INSERT INTO t VALUES (?)", (value,))
    return threading.get_ident()


def _values(db: sqlite3.Connection) -> list[int]:
    return [int(r[0]) for r in db.execute("SELECT v FROM t ORDER BY rowid")]


async def test_statements_run_in_order_on_one_thread_off_the_loop(tmp_path: Path) -> None:
    opened: list[int] = []
    db = SqliteThread(_opener(tmp_path / "x.db", opened))
    threads = await asyncio.gather(*(db.run(_insert, i) for i in range(20)))
    assert await db.run(_values) == list(range(20))  # asked in this order, run in this order
    assert len(set(threads)) == 1
    assert threads[0] != threading.get_ident()  # never the event loop's thread
    assert opened == threads[:1]  # one connection, opened on that thread
    await db.aclose()


async def test_a_closed_connection_opens_again_on_next_use(tmp_path: Path) -> None:
    opened: list[int] = []
    db = SqliteThread(_opener(tmp_path / "x.db", opened))
    await db.run(_insert, 1)
    db.close()  # without waiting: the connection closes after what was queued
    assert await db.run(_values) == [1]
    assert len(opened) == 2
    await db.aclose()


def test_a_synchronous_caller_uses_the_same_thread(tmp_path: Path) -> None:
    opened: list[int] = []
    db = SqliteThread(_opener(tmp_path / "x.db", opened))
    thread = db.call(_insert, 7)
    assert db.call(_values) == [7]
    assert opened == [thread]
    db.close()


async def test_an_error_reaches_the_caller_and_the_connection_stays(tmp_path: Path) -> None:
    opened: list[int] = []
    db = SqliteThread(_opener(tmp_path / "x.db", opened))

    def bad(conn: sqlite3.Connection) -> None:
        conn.execute("SELECT * FROM missing")

    with pytest.raises(sqlite3.OperationalError):
        await db.run(bad)
    await db.run(_insert, 1)
    assert len(opened) == 1
    await db.aclose()


# -- leases -------------------------------------------------------------------------------------


def test_one_rule_a_third_of_the_ttl() -> None:
    assert RENEW_SHARE == 1 / 3
    assert renew_period(30.0) == 10.0
    with pytest.raises(ValueError):
        renew_period(0.0)


async def test_renewals_come_every_third_while_wanted_then_stop() -> None:
    clock = FakeClock()
    times: list[float] = []
    wanted = [True]

    async def renew() -> None:
        times.append(clock.monotonic())

    renewer = Renewer(renew, clock, 30.0, wanted=lambda: wanted[0])
    renewer.start()
    renewer.start()  # idempotent: one renewal loop
    await asyncio.sleep(0)  # it starts sleeping on the clock
    await clock.advance(35.0)
    assert times == [10.0, 20.0, 30.0]
    wanted[0] = False
    await clock.advance(30.0)
    assert times == [10.0, 20.0, 30.0]
    assert clock.sleepers == 0  # the loop ended by itself


async def test_a_failed_renewal_is_logged_and_the_next_one_still_comes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    attempts: list[float] = []

    async def renew() -> None:
        attempts.append(clock.monotonic())
        if len(attempts) == 1:
            raise ConnectionError("store away")

    caplog.set_level(logging.WARNING, "agupshup.stores")
    renewer = Renewer(renew, clock, 3.0, what="test lease")
    async with renewer.held():
        await asyncio.sleep(0)
        await clock.advance(2.5)
    assert attempts == [1.0, 2.0]
    assert [r.getMessage() for r in caplog.records] == [
        "test lease renewal failed: ConnectionError('store away')"
    ]
    await clock.advance(10.0)
    assert attempts == [1.0, 2.0]  # held() ended: no renewal after the block


# -- one place ----------------------------------------------------------------------------------

#: The one module allowed to spell each building block.
BLOCKS = {
    "Redis.from_url": "stores.py",
    "run_in_executor": "stores.py",
    "to_thread": "",  # nowhere: a thread of the store's own instead
    "ThreadPoolExecutor": "stores.py",
}
#: Modules that still build a block of their own (none left).
PENDING: dict[str, list[str]] = {}


def _spellings(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr == "from_url" and ast.unparse(node.value).endswith("Redis"):
                found.add("Redis.from_url")
            elif node.attr in BLOCKS:
                found.add(node.attr)
        elif isinstance(node, ast.Name) and node.id in BLOCKS:
            found.add(node.id)
    return found


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_each_block_is_built_in_one_module(block: str) -> None:
    where = []
    for path in sorted(SRC.rglob("*.py")):
        module = str(path.relative_to(SRC))
        if not module.startswith("emulator") and block in _spellings(ast.parse(path.read_text())):
            where.append(module)
    assert where == sorted(m for m in [BLOCKS[block], *PENDING.get(block, [])] if m)
