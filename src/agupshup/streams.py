"""Paginated and live streams as async iterators: ``async for m in client.group_stream("jumpy")``.

Rules this module enforces:

* One iterator per paginated call, as a method of the client (one route: the Client is a
  :class:`Streams`, this module's mixin): ``public_stream``, ``group_stream``, ``replies``,
  ``joined_groups_stream`` (id-ordered messages and replies) and ``my_groups``,
  ``joined_groups`` (groups, told apart by name). Each reads the largest page its
  method allows (``wire.METHODS``), asks for no page after a short one, and never reads a page
  for items it already has, apart from the positions new items pushed down (see
  :mod:`agupshup.paging`).
* Exactly once: an id-ordered stream yields its backlog newest first, then (``follow=True``) what
  arrives, oldest first; each item once, none skipped, however the stream moves meanwhile.
* ``limit`` caps the items yielded; no call is made once it is reached.
* ``follow=True`` streams poll through the client's :class:`~agupshup.polling.Hub`: followers of
  one stream share one poller and its calls; the pace adapts to activity and quota.
  ``since="now"`` skips the history: the stream starts at the head (one call to learn it, none
  when the stream is already followed) unless a checkpoint says where it stands; ``since=<id>``
  yields every item with a larger id, oldest first (:data:`Since`: one meaning everywhere).
* Every iterator exposes ``cursor`` (a :class:`~agupshup.checkpoint.Cursor`) covering exactly the
  items yielded so far; ``resume_from=cursor`` yields only what that cursor does not cover:
  the rest of the backlog, then (live) what is newer. With a
  :class:`~agupshup.checkpoint.Checkpoint` the acknowledged cursor is saved as the stream goes and
  loaded when the stream starts without ``resume_from`` (what "acknowledged" means:
  :mod:`agupshup.checkpoint`).
* Iterators are closed by ``aclose()``, ``async with``, or :func:`contextlib.aclosing`: that ends
  the page walk, leaves the poller (which stops with its last follower) and saves the checkpoint.
  No task outlives an iterator.
* Following many groups as one (``merged_stream``, ``follow_groups``) is the follow engine's
  (:mod:`agupshup.aggregate`), not this module's: this one is about single streams.
* This module sits above paging, polling and checkpoint and below the client: it never imports
  :mod:`agupshup.client`, not even for types: what it uses of a client is the ``Pages``
  protocol (its clock, quota and page calls), which a class mixing in :class:`Streams` meets.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncGenerator, Callable
from functools import cached_property
from types import TracebackType
from typing import Any, Generic, Literal, Protocol, Self, TypeVar, cast

from agupshup import wire
from agupshup.checkpoint import Checkpoint, Checkpointer, CheckpointStore, Cursor
from agupshup.clock import Clock
from agupshup.models import Group, Message, QuotaWindow, Reply
from agupshup.paging import (
    IdState,
    NameState,
    Reader,
    Source,
    catch_up,
    walk_back,
    walk_names,
)
from agupshup.polling import Hub, PollPolicy


class Pages(Protocol):
    """What the streams use of a client (:class:`~agupshup.Client` has it): its clock, its
    quota and its page calls. A protocol, so that this module needs no type from above."""

    clock: Clock

    def quota(self) -> list[QuotaWindow]: ...

    async def get_public_stream(
        self, start: int = ..., count: int = ..., *, skip_adult: bool = ...
    ) -> list[Message]: ...

    async def get_stream(self, group: str, start: int = ..., count: int = ...) -> list[Message]: ...

    async def get_replies(
        self, group: str, start: int = ..., count: int = ..., *, include_hidden: bool = ...
    ) -> list[Reply]: ...

    async def get_joined_groups_stream(
        self, start: int = ..., count: int = ...
    ) -> list[Message]: ...

    async def get_my_groups(self, start: int = ..., count: int = ...) -> list[Group]: ...

    async def get_joined_groups(self, start: int = ..., count: int = ...) -> list[Group]: ...

__all__ = ["CheckpointLike", "Since", "Stream", "Streams", "checkpoint_of", "group_key"]

log = logging.getLogger("agupshup.streams")
T = TypeVar("T")

ResumeFrom = Cursor | str | bytes | None
#: Where a stream starts, when no cursor says (one meaning wherever a ``since=`` is taken, the
#: follow engine's included): ``None``, its whole history; ``"now"``, its head at the start
#: (new items only); a message id, every item with a larger id, oldest first.
Since = Literal["now"] | int | None


#: What ``checkpoint=`` takes (of a single stream or the follow engine): a store, as ``ledger=``
#: and ``token_store=`` take one (saved under the stream's own key, every 100 items), or a
#: :class:`~agupshup.checkpoint.Checkpoint`: a store with a key and a pace of its own.
CheckpointLike = Checkpoint | CheckpointStore


def checkpoint_of(value: CheckpointLike | None) -> Checkpoint | None:
    """``checkpoint=`` as a :class:`~agupshup.checkpoint.Checkpoint` (a store: the defaults)."""
    if value is None or isinstance(value, Checkpoint):
        return value
    return Checkpoint(value)


def group_key(group: str) -> str:
    """The key of ``group_stream(group)`` (its cursors' ``source``, its feed in the hub)."""
    return f"group:{group.strip().lower()}"


def _item_id(item: Message | Reply) -> int:
    return item.id


def _group_name(item: Group) -> str:
    return item.group_name


# -- one stream -------------------------------------------------------------------------------


class Stream(Generic[T]):
    """An async iterator over one paginated call, with a cursor. Close it (``async with``)."""

    def __init__(
        self,
        source: Source[T],
        body: Callable[[IdState | NameState], AsyncGenerator[T, None]],
        *,
        clock: Clock,
        resume_from: ResumeFrom = None,
        limit: int | None = None,
        checkpoint: CheckpointLike | None = None,
    ) -> None:
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0")
        self.source = source
        self.limit = limit
        self._body = body
        self._start: Cursor | None = _cursor(resume_from, source.key)
        self._state: IdState | NameState | None = None
        self._gen: AsyncGenerator[T, None] | None = None
        self._count = 0
        self._closed = False
        saved = checkpoint_of(checkpoint)
        self._checkpoint = Checkpointer(saved, source.key, clock) if saved is not None else None

    @property
    def key(self) -> str:
        """The stream's source, as named in its cursors."""
        return self.source.key

    @property
    def count(self) -> int:
        """Items yielded so far."""
        return self._count

    @property
    def cursor(self) -> Cursor:
        """Covers exactly the items yielded so far; pass it as ``resume_from`` to go on."""
        if self._state is None:
            return self._start or Cursor(source=self.source.key)
        return Cursor.of(self.source.key, self._state)

    def _cursor(self) -> Cursor:
        return self.cursor

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        if self._closed:
            raise StopAsyncIteration
        cp = self._checkpoint
        if self._state is None:
            self._state = await self._open()
        elif cp is not None:
            await cp.acknowledge(self._cursor)
        if self.limit is not None and self._count >= self.limit:
            await self.aclose()
            raise StopAsyncIteration
        if self._gen is None:
            self._gen = self._body(self._state)
        try:
            item = await self._gen.__anext__()
        except StopAsyncIteration:
            self._closed = True
            if cp is not None:
                await cp.acknowledge(self._cursor, force=True)
                await cp.flush()
            raise
        except BaseException:
            # An error or a cancellation (a timeout around ``anext``) finishes the generator;
            # its state is exact, so the next call walks on from it instead of ending the stream.
            self._gen = None
            raise
        self._count += 1
        if cp is not None:
            cp.sent()
        return item

    async def _open(self) -> IdState | NameState:
        if self._start is None and self._checkpoint is not None:
            raw = await self._checkpoint.load()
            if raw is not None:
                self._start = _cursor(raw, self.source.key)
                log.info("%s: resuming from checkpoint %s", self.key, raw)
        start = self._start or Cursor(source=self.source.key)
        return start.id_state() if self.source.ident is not None else start.name_state()

    async def commit(self) -> None:
        """Save the cursor now, including the last item yielded (the consumer is done with it)."""
        if self._checkpoint is not None and self._state is not None:
            await self._checkpoint.acknowledge(self._cursor, force=True)
            await self._checkpoint.flush()

    async def aclose(self) -> None:
        """Stop: end the walk, leave the poller, save what was acknowledged. Idempotent.

        The last item yielded counts as unacknowledged (use ``commit()`` first, or leave an
        ``async with`` block normally, to acknowledge it)."""
        await self._close(ack=False)

    async def _close(self, *, ack: bool) -> None:
        self._closed = True
        gen, self._gen = self._gen, None
        try:
            if gen is not None:
                await gen.aclose()
        finally:
            if self._checkpoint is not None and self._state is not None:
                await self._checkpoint.close(self._cursor, ack=ack)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close; leaving normally (``break`` included) acknowledges the last item."""
        await self._close(ack=exc_type is None)

    def __repr__(self) -> str:
        return f"<Stream {self.key} yielded={self._count} {self.cursor.to_json()}>"


def _cursor(value: ResumeFrom, key: str) -> Cursor | None:
    if value is None:
        return None
    cursor = value if isinstance(value, Cursor) else Cursor.from_json(value)
    if cursor.source != key:
        raise ValueError(f"cursor of {cursor.source!r} cannot resume {key!r}")
    return cursor


async def _id_body(
    source: Source[T],
    state: IdState,
    *,
    follow: bool,
    reader: Reader,
    hub: Hub,
    since: Since = None,
) -> AsyncGenerator[T, None]:
    """Backlog newest first; then (follow, or resuming a finished backlog) newer items.
    ``since`` ("now" or an id) starts past the backlog, unless a cursor says where to start."""
    ident = source.ident
    assert ident is not None
    start = since is not None and state == IdState()  # nothing yielded yet, nothing to resume
    if start:
        state.newest = await _head(source, reader, hub) if since == "now" else since
        state.phase = "live"
    if state.phase == "backlog":
        async for item in walk_back(source, state, reader):
            yield item
        state.phase = "live"
        if not follow:
            return
        immediate = False
    elif not follow:  # a finished walk resumed, or an id to start after: what is newer, once
        for item in await catch_up(source, state.newest, reader):
            state.newest = ident(item)
            yield item
        return
    else:
        immediate = not (start and since == "now")  # "now": the head was just read
    sub = hub.subscribe(source, state.newest, immediate=immediate)
    try:
        while True:
            for item in await sub.next():
                i = ident(item)
                if state.newest is not None and i <= state.newest:
                    continue
                state.newest = i
                yield item
    finally:
        sub.close()


async def _name_body(
    source: Source[T], state: NameState, *, reader: Reader
) -> AsyncGenerator[T, None]:
    if state.phase == "live":  # a finished walk resumed: walk again for names not yielded
        state.phase, state.offset = "backlog", 0
    async for item in walk_names(source, state, reader):
        yield item
    state.phase = "live"


# -- the streams of a client ------------------------------------------------------------------


class Streams:
    """The iterators over a client's page calls, as the client's own methods: the
    :class:`~agupshup.Client` mixes this class in, so ``client.group_stream("jumpy")`` is the
    one route. A class mixing it in meets :class:`Pages`.

    Each method builds a :class:`~agupshup.paging.Source` over one page call, read at the
    largest page its method allows (``wire.METHODS``), and returns a :class:`Stream` over it,
    read by the client's page reader (quota-patient) and polled by its hub.
    """

    def _pages(self) -> Pages:
        return cast(Pages, self)  # the class mixing this in meets Pages (see the docstring)

    @cached_property
    def _stream_reader(self) -> Reader:
        pages = self._pages()
        return Reader(pages.clock, pages.quota)

    @cached_property
    def stream_hub(self) -> Hub:
        """The pollers of this client's followed streams (one per stream)."""
        pages = self._pages()
        return Hub(pages.clock, pages.quota, self._stream_reader)

    @property
    def poll_policy(self) -> PollPolicy:
        """How followed streams poll; assign a :class:`~agupshup.polling.PollPolicy` to change."""
        return self.stream_hub.policy

    @poll_policy.setter
    def poll_policy(self, policy: PollPolicy) -> None:
        self.stream_hub.policy = policy

    @property
    def stream_pages(self) -> int:
        """Pages read by this client's streams (successful calls)."""
        return self._stream_reader.calls

    @property
    def streams(self) -> _OldStreams:
        """Deprecated: the iterators are the client's own methods."""
        warnings.warn("client.streams is deprecated; use the client's own methods and "
                      "properties (client.group_stream(...), client.stream_hub, "
                      "client.poll_policy, client.stream_pages)", DeprecationWarning,
                      stacklevel=2)
        return _OldStreams(self)

    def _stream(
        self,
        source: Source[T],
        follow: bool,
        limit: int | None,
        resume_from: ResumeFrom,
        checkpoint: CheckpointLike | None,
        since: Since = None,
    ) -> Stream[T]:
        """A :class:`Stream` over ``source``: an id walk (``follow`` applies) or a name walk."""
        reader, hub = self._stream_reader, self.stream_hub
        if since is not None:
            _check_since(since, follow, resume_from)

        def body(state: IdState | NameState) -> AsyncGenerator[T, None]:
            if isinstance(state, IdState):
                return _id_body(
                    source, state, follow=follow, reader=reader, hub=hub, since=since
                )
            return _name_body(source, state, reader=reader)

        return Stream(
            source,
            body,
            clock=self._pages().clock,
            resume_from=resume_from,
            limit=limit,
            checkpoint=checkpoint,
        )

    # -- id-ordered streams ---------------------------------------------------------------

    def public_stream(
        self,
        *,
        skip_adult: bool = True,
        follow: bool = False,
        limit: int | None = None,
        resume_from: ResumeFrom = None,
        checkpoint: CheckpointLike | None = None,
        since: Since = None,
    ) -> Stream[Message]:
        """Messages of every public group (``gupshup.getPublicStream``, 15 a page)."""
        pages = self._pages()

        async def fetch(start: int, count: int) -> list[Message]:
            return await pages.get_public_stream(start, count, skip_adult=skip_adult)

        key = "public" if skip_adult else "public+adult"
        source = Source(key, fetch, _page("get_public_stream"), ident=_item_id)
        return self._stream(source, follow, limit, resume_from, checkpoint, since)

    def group_stream(
        self,
        group: str,
        *,
        follow: bool = False,
        limit: int | None = None,
        resume_from: ResumeFrom = None,
        checkpoint: CheckpointLike | None = None,
        since: Since = None,
    ) -> Stream[Message]:
        """A public group's messages (``groups.getStream``, 15 a page)."""
        pages = self._pages()
        name = group.strip()

        async def fetch(start: int, count: int) -> list[Message]:
            return await pages.get_stream(name, start, count)

        source = Source(group_key(name), fetch, _page("get_stream"), ident=_item_id)
        return self._stream(source, follow, limit, resume_from, checkpoint, since)

    def replies(
        self,
        group: str,
        *,
        include_hidden: bool = False,
        follow: bool = False,
        limit: int | None = None,
        resume_from: ResumeFrom = None,
        checkpoint: CheckpointLike | None = None,
        since: Since = None,
    ) -> Stream[Reply]:
        """Replies to a group (``groups.getReplies``, 30 a page; hidden ones: owner only)."""
        pages = self._pages()
        name = group.strip()

        async def fetch(start: int, count: int) -> list[Reply]:
            return await pages.get_replies(name, start, count, include_hidden=include_hidden)

        kind = "replies+hidden" if include_hidden else "replies"
        source = Source(f"{kind}:{name.lower()}", fetch, _page("get_replies"), ident=_item_id)
        return self._stream(source, follow, limit, resume_from, checkpoint, since)

    def joined_groups_stream(
        self,
        *,
        follow: bool = False,
        limit: int | None = None,
        resume_from: ResumeFrom = None,
        checkpoint: CheckpointLike | None = None,
        since: Since = None,
    ) -> Stream[Message]:
        """Messages of the groups the user joined (``users.getJoinedGroupsStream``, 30 a page)."""
        fetch = self._pages().get_joined_groups_stream
        source = Source("joined-stream", fetch, _page("get_joined_groups_stream"), ident=_item_id)
        return self._stream(source, follow, limit, resume_from, checkpoint, since)

    # -- group lists ----------------------------------------------------------------------

    def my_groups(
        self,
        *,
        limit: int | None = None,
        resume_from: ResumeFrom = None,
        checkpoint: CheckpointLike | None = None,
    ) -> Stream[Group]:
        """The groups the user owns (``users.getMyGroups``, 30 a page), each once by name."""
        fetch = self._pages().get_my_groups
        source = Source("my-groups", fetch, _page("get_my_groups"), name=_group_name)
        return self._stream(source, False, limit, resume_from, checkpoint)

    def joined_groups(
        self,
        *,
        limit: int | None = None,
        resume_from: ResumeFrom = None,
        checkpoint: CheckpointLike | None = None,
    ) -> Stream[Group]:
        """The groups the user joined (``users.getJoinedGroups``, 30 a page), each once by name."""
        fetch = self._pages().get_joined_groups
        source = Source("joined-groups", fetch, _page("get_joined_groups"), name=_group_name)
        return self._stream(source, False, limit, resume_from, checkpoint)

def _page(method: str) -> int:
    """The largest page of a client method's API call (protocol.md §5)."""
    return wire.METHODS[method].max_range


def _check_since(since: object, follow: bool, resume_from: object) -> None:
    if since == "now":
        if not follow:
            raise ValueError("since='now' follows new items only: it needs follow=True")
    elif isinstance(since, bool) or not isinstance(since, int) or since < 0:
        raise ValueError(f"since must be 'now', a message id >= 0 or None, not {since!r}")
    if resume_from is not None:
        raise ValueError(f"since={since!r} and resume_from both say where to start: pass one")


async def _head(source: Source[T], reader: Reader, hub: Hub) -> int | None:
    """The newest id of ``source`` now: its feed's, when it is already followed; else one read."""
    known = hub.head(source.key)
    if known is not None:
        return known
    ident = source.ident
    assert ident is not None
    return max((ident(item) for item in await reader(source, 0)), default=None)


# -- the spelling before issue 25 ------------------------------------------------------------


#: ``client.streams.<old name>`` → the client's attribute now.
_RENAMED = {"hub": "stream_hub", "policy": "poll_policy", "pages_read": "stream_pages",
            "reader": "_stream_reader"}


class _OldStreams:
    """What ``client.streams`` was: the same iterators, and the reader, hub, policy and page
    count under their old names."""

    def __init__(self, owner: Streams) -> None:
        object.__setattr__(self, "_owner", owner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner, _RENAMED.get(name, name))

    def __setattr__(self, name: str, value: object) -> None:
        setattr(self._owner, _RENAMED.get(name, name), value)
