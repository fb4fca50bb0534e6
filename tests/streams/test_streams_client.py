"""One route to the streams: they are the client's own methods (the Client mixes in
:class:`~agupshup.streams.Streams`), page sizes from ``wire.METHODS``; ``client.streams``, the
route before issue 25, still works with a warning."""

from __future__ import annotations

import inspect

import pytest

from agupshup import Client, wire
from agupshup.checkpoint import Cursor, MemoryCheckpointStore
from agupshup.emulator.server import EmulatorServer
from agupshup.polling import PollPolicy
from agupshup.streams import Stream, Streams

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
def test_each_iterator_is_a_plain_method_of_the_client(name: str) -> None:
    client = Client(throttle=None)
    method = getattr(client, name)
    assert inspect.ismethod(method)
    assert method.__func__ is getattr(Streams, name)
    assert "self" not in inspect.signature(method).parameters
    assert getattr(Client, name).__doc__


def test_policy_hub_and_page_count_are_the_clients() -> None:
    client = Client(throttle=None)
    policy = PollPolicy(min_interval=1.0)
    client.poll_policy = policy
    assert client.stream_hub.policy is policy
    assert client.stream_hub is client.stream_hub  # one per client
    assert client.stream_pages == 0


def test_the_old_route_warns_and_reaches_the_same_things() -> None:
    client = Client(throttle=None)
    with pytest.warns(DeprecationWarning, match=r"client.group_stream\(\.\.\.\)") as caught:
        old = client.streams
    assert caught[0].filename == __file__
    policy = PollPolicy(min_interval=2.0)
    old.policy = policy
    assert client.poll_policy is policy
    assert old.hub is client.stream_hub
    assert old.pages_read == 0
    assert old.reader is client._stream_reader
    stream = old.group_stream("few", limit=1)
    assert isinstance(stream, Stream)
    assert stream.key == "group:few"


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


async def test_checkpoint_takes_a_store_as_token_store_does(
    fake_client: tuple[Client, object, object, object],
) -> None:
    """``checkpoint=store`` is ``Checkpoint(store)``: saved under the stream's own key."""
    client = fake_client[0]
    store = MemoryCheckpointStore()
    async with client.group_stream("few", limit=2, checkpoint=store) as stream:
        got = [m.id async for m in stream]
    saved = await store.load("group:few")
    assert saved is not None
    assert Cursor.from_json(saved).newest == got[0]  # the backlog comes newest first
    many = MemoryCheckpointStore()
    async with client.merged_stream(["few", "jumpy"], checkpoint=many) as merged:
        assert [m async for m in merged]
    assert [key.startswith("aggregate:") for key in many.data] == [True]
