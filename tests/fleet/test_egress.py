"""An egress per Client: the source address, and a throttle budget per address.

The emulator counts calls per peer address (protocol.md §3), so clients bound to 127.0.0.2, .3 and
.4 have three budgets there; the client keeps one budget per address too, locally and in shared
ledgers, and a shared ledger that cannot be reached refuses to admit rather than over-admit.
"""

from __future__ import annotations

import uuid

import pytest

from agupshup import Client, Throttle
from agupshup import errors as E
from agupshup.emulator.server import EmulatorServer
from agupshup.emulator.throttle import ThrottleConfig
from agupshup.fleet import FleetUnavailable, FleetWorker
from agupshup.throttle import RedisLedger, Scheduler, Window

from .conftest import ADDRESSES, GROUPS

TIGHT = [Window("minute", 2, 600.0, 2)]


@pytest.mark.gupshup(throttle=ThrottleConfig.single(limit=3, length=600))
async def test_emulator_throttles_each_client_address_apart(gupshup_server: EmulatorServer) -> None:
    for address in ADDRESSES:
        async with Client(gupshup_server.base_url, throttle=None, local_address=address) as c:
            for _ in range(3):
                await c.get_info(GROUPS[0])
            with pytest.raises(E.ThrottleLimitExceeded):
                await c.get_info(GROUPS[0])
    throttle, now = gupshup_server.emulator.throttle, gupshup_server.emulator.timebase.now()
    assert {a: throttle.usage(a, now)["minute"] for a in ADDRESSES} == dict.fromkeys(ADDRESSES, 3)
    assert throttle.refusals == dict.fromkeys(ADDRESSES, 1)


async def test_clients_share_a_scheduler_per_address_only(gupshup_server: EmulatorServer) -> None:
    url = gupshup_server.base_url
    async with (
        Client(url, local_address="127.0.0.2") as a,
        Client(url, local_address="127.0.0.2") as b,
        Client(url, local_address="127.0.0.3") as c,
    ):
        assert a.scheduler is b.scheduler
        assert a.scheduler is not c.scheduler


async def test_a_shared_ledger_is_keyed_by_address(
    gupshup_server: EmulatorServer, redis_url: str
) -> None:
    key = f"test:{uuid.uuid4().hex}"
    url = gupshup_server.base_url
    clients = [
        Client(url, local_address=a,
               throttle=Throttle(windows=TIGHT, ledger=RedisLedger(redis_url, key=key)))
        for a in ADDRESSES[:2]
    ]
    try:
        for client in clients:  # each address has a budget of 2 of its own
            for _ in range(2):
                await client.get_info(GROUPS[0], max_wait=0)
        assert "127.0.0.2" in repr(clients[0].scheduler)
        with pytest.raises(E.QuotaExhausted):
            await clients[0].get_info(GROUPS[0], max_wait=0)
        # A third process on the first address shares that address's (spent) budget (in this
        # process it needs a scheduler of its own: clients of one egress share one otherwise).
        ledger = RedisLedger(redis_url, key=key)
        ledger.for_egress(ADDRESSES[0])
        same = Client(url, local_address=ADDRESSES[0],
                      throttle=Scheduler(TIGHT, ledger=ledger))
        clients.append(same)
        with pytest.raises(E.QuotaExhausted):
            await same.get_info(GROUPS[0], max_wait=0)
    finally:
        for client in clients:
            await client.aclose()
            await client.scheduler.aclose()  # type: ignore[attr-defined]
    assert sum(gupshup_server.emulator.calls.values()) == 4


def test_a_ledger_serves_one_egress() -> None:
    ledger = RedisLedger("redis://127.0.0.1:1", key="k")
    ledger.for_egress("127.0.0.2")
    ledger.for_egress("127.0.0.2")
    with pytest.raises(ValueError, match="already in use"):
        ledger.for_egress("127.0.0.3")
    assert repr(ledger) == "RedisLedger(key='k:127.0.0.2')"


async def test_redis_down_refuses_rather_than_over_admits(
    gupshup_server: EmulatorServer, unused_tcp_port: int
) -> None:
    dead = f"redis://127.0.0.1:{unused_tcp_port}/0"
    ledger = RedisLedger(dead, key="down")
    async with Client(gupshup_server.base_url, local_address=ADDRESSES[0],
                      throttle=Throttle(ledger=ledger)) as c:
        with pytest.raises(E.LedgerError):
            await c.get_info(GROUPS[0])
        with pytest.raises(FleetUnavailable, match="heartbeat"):
            async with FleetWorker(c, dead, GROUPS):
                pass
        await c.scheduler.aclose()  # type: ignore[attr-defined]
    assert sum(gupshup_server.emulator.calls.values()) == 0
