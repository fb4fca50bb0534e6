"""The client composes its streams: one :class:`~agupshup.streams.Streams` per client, the
iterator methods delegating to it with its signatures, page sizes from ``wire.METHODS``."""

from __future__ import annotations

import inspect

import pytest

from agupshup import Client, wire
from agupshup.emulator.server import EmulatorServer
from agupshup.polling import PollPolicy
from agupshup.streams import Streams

from .helpers import demo_client

ITERATORS = [
    "public_stream",
    "group_stream",
    "replies",
    "joined_groups_stream",
    "my_groups",
    "joined_groups",
]


@pytest.mark.parametrize("name", ITERATORS)
def test_each_iterator_is_the_streams_method_of_the_same_name(name: str) -> None:
    client = Client(throttle=None)
    assert isinstance(client.streams, Streams)
    assert client.streams is client.streams  # one per client
    method = getattr(client, name)
    assert method == getattr(client.streams, name)
    assert inspect.signature(method) == inspect.signature(getattr(Streams, name).__get__(
        client.streams))
    assert getattr(Client, name).__doc__ == getattr(Streams, name).__doc__
    assert Streams not in type(client).__mro__  # owned, not inherited
    assert "_agupshup_stream_engine" not in vars(client)


def test_policy_hub_and_page_count_are_the_streams_own() -> None:
    client = Client(throttle=None)
    policy = PollPolicy(min_interval=1.0)
    client.poll_policy = policy
    assert client.streams.policy is policy is client.stream_hub.policy
    assert client.stream_pages == client.streams.pages_read == 0


@pytest.mark.parametrize(
    ("iterator", "method", "args"),
    [
        ("group_stream", "groups.getstream", ("few",)),
        ("public_stream", "gupshup.getpublicstream", ()),
        ("replies", "groups.getreplies", ("jumpy",)),
        ("my_groups", "users.getmygroups", ()),
        ("joined_groups", "users.getjoinedgroups", ()),
        ("joined_groups_stream", "users.getjoinedgroupsstream", ()),
    ],
)
async def test_every_read_asks_for_the_largest_page_of_its_method(
    gupshup_server: EmulatorServer, iterator: str, method: str, args: tuple[str, ...]
) -> None:
    spec = next(s for s in wire.METHODS.values() if s.name.lower() == method)
    seen: list[str] = []
    async with demo_client(gupshup_server.base_url) as client:
        send = client._transport.send

        async def spy(fields, **kw):  # type: ignore[no-untyped-def]
            if dict(fields).get("method", "").lower() == method:
                seen.append(dict(fields)["range"])
            return await send(fields, **kw)

        client._transport.send = spy  # type: ignore[method-assign]
        async for _ in getattr(client, iterator)(*args, limit=1):
            break
    assert seen == [str(spec.max_range)]
