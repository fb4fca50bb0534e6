"""Posting at most once: ``post_message``, the one write whose outcome matters.

Rules this module enforces:

* Posts to one group are serialised within a client, so that the server's "previous post"
  (128 refuses a repeat of it) is always this client's own; waiting for an earlier post counts
  against the call's deadline (:class:`~agupshup.errors.DeadlineExceeded`).
* A post whose outcome is unknown (a timeout or a broken answer after the request left) is
  resent, never blindly: 128 makes a resend unable to store it twice. If the resend is refused
  or cannot be sent, the group's head is read back to before the first attempt: the post found
  there is reported with its id, a post proven absent gets the resend's refusal, anything else
  raises :class:`~agupshup.errors.OutcomeUnknown`. Never "refused" once stored.
* The bound of that read is on the server's clock (no skew between the clocks matters), and an
  attempt whose answer was lost is waited out (``RetryPolicy.late_landing``) before "absent".

:class:`Posting` is a part of the :class:`~agupshup.client.Client` (a mixin, like
:class:`~agupshup.streams.Streams`): it reaches the server only through the client's call path
(``_call_until``), so every read and resend is admitted, retried and deadline-bound like any
call.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

from agupshup import errors as E
from agupshup import wire
from agupshup.clock import Clock, Overdue, within
from agupshup.models import Message
from agupshup.retry import RetryPolicy

__all__ = ["Posting"]

# The Client's logger: these are the Client's calls.
log = logging.getLogger("agupshup.client")
T = TypeVar("T")


class _Unresolved(Exception):
    """The group's head, as far as it may be read, neither shows the post nor proves it
    absent."""


class Posting:
    """``post_message`` and how its outcome is settled; a part of the Client."""

    clock: Clock
    retry: RetryPolicy

    def _start_posting(self) -> None:
        #: group → the text of this client's last post there (the server refuses repeats).
        self._last_post: dict[str, str] = {}
        #: group → the id of this client's last stored post there: ids grow, so a post
        #: looked for after it must have a greater one (an older twin of the text has not).
        self._last_id: dict[str, int] = {}
        self._post_locks: dict[str, asyncio.Lock] = {}

    # -- what the Client supplies --------------------------------------------------------

    async def _call_until(self, request: wire.Request[T], deadline: float | None) -> T:
        raise NotImplementedError

    def _deadline(self, max_wait: float | None) -> float | None:
        raise NotImplementedError

    def _left(self, deadline: float | None) -> float | None:
        raise NotImplementedError

    # -- posting ----------------------------------------------------------------------------

    async def post_message(self, group: str, text: str, *, max_wait: float | None = None) -> int:
        """``groups.postMessage``: post ``text`` to a group the user owns; the new id.

        Delivered once, never twice, and never reported refused once stored. When the outcome
        is unknown (a timeout or a broken answer after the request left), the post is resent:
        the server refuses a text equal to the user's previous post to that group (128), so a
        resend can never store it twice. Posts to one group are serialised within a client, so
        that "previous post" is always this one. If the resend is refused (128, but also 127,
        113 …) or cannot be sent, the group's head is read back to before the first attempt:
        the post found there is reported with its id; a post proven absent gets the resend's
        refusal; anything else raises :class:`~agupshup.errors.OutcomeUnknown`.

        Precondition: this client is the account's only poster to that group — 128 compares
        with the user's previous post, whoever sent it, so another poster voids at-most-once.
        Waiting for an earlier post to the same group counts against ``max_wait``
        (:class:`~agupshup.errors.DeadlineExceeded`).
        """
        request = wire.post_message(group, text)
        name = _post_fields(request)[0].lower()  # the server matches group names in any case
        deadline = self._deadline(max_wait)
        lock = self._post_locks.setdefault(name, asyncio.Lock())
        await self._acquire(lock, deadline)
        try:
            return await self._post_once(request, name, deadline)
        finally:
            lock.release()

    async def _post_once(
        self, request: wire.Request[int], name: str, deadline: float | None
    ) -> int:
        """Post with the group's lock held (so "previous post" is always this client's)."""
        text = _post_fields(request)[1]
        if self._last_post.get(name) == text:
            raise E.ValidationError(
                request.spec.name, "text", "same text as your previous post here (128)"
            )
        # Taken before admission, so that it is surely earlier than the post, if stored.
        sent = self.clock.monotonic()
        try:
            post_id = await self._call_until(request, deadline)
        except (E.TransportError, E.ServerError) as exc:
            if not _post_may_have_run(request, exc):
                raise
            post_id = await self._resolve_post(request, exc, sent, deadline)
        self._last_post[name] = text
        self._last_id[name] = post_id
        return post_id

    async def _resolve_post(
        self,
        request: wire.Request[int],
        fault: E.GupshupError,
        sent: float,
        deadline: float | None,
    ) -> int:
        group = _post_fields(request)[0]
        started = self.clock.monotonic()
        # When the last attempt whose answer was lost (it may still be stored) ended.
        lost = started if _unanswered(fault) else None
        for attempt in range(self.retry.resolve_attempts):
            log.warning("postMessage to %s: %s; resending (%d)", group, fault, attempt + 1)
            try:
                return await self._call_until(request, deadline)
            except (E.TransportError, E.ServerError) as exc:
                fault = exc
                lost = self.clock.monotonic() if _unanswered(exc) else lost
            except E.GupshupError as refusal:
                return await self._settle_post(request, refusal, (sent, lost), deadline)
            elapsed = self.clock.monotonic() - started
            what = f"postMessage to {group}: {type(fault).__name__}"
            if not await self.retry.back_off(
                self.clock, what, attempt, elapsed,
                attempts=self.retry.resolve_attempts, left=self._left(deadline),
            ):
                break
        return await self._settle_post(request, fault, (sent, lost), deadline)

    async def _settle_post(
        self,
        request: wire.Request[int],
        refusal: E.GupshupError,
        attempts: tuple[float, float | None],
        deadline: float | None,
    ) -> int:
        """The id of the stored post, read from the group; else ``refusal`` if the post is
        proven absent, else :class:`~agupshup.errors.OutcomeUnknown`. ``attempts``: when the
        first attempt was admitted, and when the last one whose answer was lost ended."""
        group, text = _post_fields(request)
        sent, lost = attempts
        since = (sent, self._last_id.get(group.lower(), -1))
        try:
            read_at = self.clock.monotonic()
            found = await self._find_own_post(group, text, since, deadline)
            if found is None and lost is not None and read_at < lost + self.retry.late_landing:
                found = await self._find_once_landed(group, text, since, lost, deadline)
        except (E.GupshupError, _Unresolved) as exc:
            reason = f"{exc} (the resend met: {type(refusal).__name__})"
            raise E.OutcomeUnknown(request.spec.name, group, text, reason) from exc
        if found is None:
            raise refusal
        return found

    async def _find_once_landed(
        self, group: str, text: str, since: tuple[float, int], lost: float,
        deadline: float | None,
    ) -> int | None:
        """Not in the group yet, but an attempt whose answer was lost at ``lost`` may still be
        stored (the server may run it late): read again once it no longer can, or give up with
        :class:`_Unresolved` if the deadline comes first. Never "absent" before then."""
        landed = lost + self.retry.late_landing
        if deadline is not None and landed > deadline:
            raise _Unresolved(f"an attempt whose answer was lost may still be stored until "
                              f"t={landed:.3f}, past the deadline")
        log.info("postMessage to %s: not stored yet; reading again in %.0fs, when an "
                 "unanswered attempt can no longer land", group, landed - self.clock.monotonic())
        await self.clock.sleep(landed - self.clock.monotonic())
        return await self._find_own_post(group, text, since, deadline)

    async def _find_own_post(
        self, group: str, text: str, since: tuple[float, int], deadline: float | None
    ) -> int | None:
        """The id of ``text`` in ``group`` if posted since ``sent`` (``Clock.monotonic()``)
        with an id above ``after`` (this client's last stored post there), or None once the
        head is read back to messages older than that; ``since`` is ``(sent, after)``.

        The bound is taken on the server's clock, so that no skew between client and server
        clocks matters: the post, if stored, is at most ``elapsed`` seconds older than the
        newest message of the first page (which is no newer than the server's now), where
        ``elapsed`` is how long before the end of that read, on this client's clock, the first
        attempt left; ``clock_tolerance`` covers steps of the server's clock. A match older
        than ``elapsed`` but within the tolerance may be an earlier post of the same text (five
        posts a minute are allowed), so it raises :class:`_Unresolved` rather than be claimed."""
        sent, after = since
        pages = self.retry.resolve_pages
        bounds: tuple[int, int] | None = None
        for page in range(pages):
            messages = await self._call_until(wire.get_stream(group, page * 15, 15), deadline)
            if bounds is None:
                bounds = self._bounds(messages, sent)
            strict, loose = bounds
            for m in messages:
                if m.text == text and m.id > after and m.timestamp >= loose:
                    if m.timestamp < strict:
                        raise _Unresolved(f"{m.id} is within the clock tolerance only")
                    return m.id
            if len(messages) < 15 or messages[-1].timestamp < loose:
                return None
        raise _Unresolved(f"not among the {pages * 15} newest messages of {group!r}")

    def _bounds(self, head: list[Message], sent: float) -> tuple[int, int]:
        """The oldest server timestamp the post can have, without and with the tolerance."""
        newest = head[0].timestamp if head else 0
        elapsed = self.clock.monotonic() - sent
        strict = newest - int(elapsed * 1000)
        return strict, strict - int(self.retry.clock_tolerance * 1000)

    async def _acquire(self, lock: asyncio.Lock, deadline: float | None) -> None:
        """Take ``lock``, or raise :class:`~agupshup.errors.DeadlineExceeded` if it is not free
        by ``deadline``. (A grant that comes with the deadline is passed on: asyncio.Lock
        hands a cancelled waiter's grant to the next.)"""
        if not lock.locked():
            await lock.acquire()  # free: taken at once, even at the deadline
            return
        since = self.clock.monotonic()
        try:
            await within(self.clock, deadline, lock.acquire())
        except Overdue as exc:
            assert deadline is not None
            raise E.DeadlineExceeded(deadline, self.clock.monotonic() - since) from exc


def _post_fields(request: wire.Request[int]) -> tuple[str, str]:
    """The group and the text of a ``groups.postMessage`` request (as validated)."""
    fields = dict(request.params)
    return fields["groupName"], fields["text"]


def _post_may_have_run(request: wire.Request[int], fault: E.GupshupError) -> bool:
    """Whether ``fault`` leaves the post's outcome unknown: only a fault of the postMessage
    request itself does (``_send_response`` names it); a fault of the implicit login means
    the post never left."""
    if getattr(fault, "method", "") != request.spec.name:
        return False
    return not isinstance(fault, E.TransportError) or fault.maybe_sent


def _unanswered(fault: E.GupshupError) -> bool:
    """The attempt may have reached the server and its answer was never read: the server may
    still store it (a 129 or a refusal is an answer: that attempt did not run)."""
    return isinstance(fault, E.TransportError) and fault.maybe_sent
