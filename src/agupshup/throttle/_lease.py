"""Leases: how a shared ledger forgets the calls of a process that died.

Rules this module enforces:

* An entry in flight in a shared ledger carries a lease expiry in place of a completion time.
  If its process dies, the entry counts as completed at that expiry (the call reached the server
  no later than that), so it leaves window ``w`` at ``expiry + length_w``. Nothing is lost:
  a dead process's calls keep counting exactly as long as they might matter.
* While this process has calls in flight, it renews their leases by the one lease rule
  (:class:`agupshup.stores.Renewer`: every third of the lease, on the injected clock), naming
  them by ticket. A ticket this process lost track of (its admission
  was cancelled half-way) is never renewed, so it expires like a dead process's.
* A failed renewal is logged, not raised. A lease that lapses while its call still runs ends
  that call's count early, so the lease must stay well above the longest request.
* :class:`SharedLedger` is what the SQLite and Redis ledgers have in common: binding, keeping the
  leases of the tickets they hand out, and the last view; they supply the storage (``_admit``,
  ``_release``, ``_cancel``, ``_renew``, ``_close``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from agupshup.clock import Clock
from agupshup.stores import Renewer

from ._ledger import Admission, View
from ._windows import Window

__all__ = ["LeaseKeeper", "SharedLedger"]

logger = logging.getLogger("agupshup.throttle")


class LeaseKeeper:
    """Renews the leases of this process's calls in flight (:class:`agupshup.stores.Renewer`:
    every third of the lease, while any is in flight)."""

    __slots__ = ("_owned", "_renew", "_renewer")

    def __init__(
        self,
        renew: Callable[[tuple[int, ...]], Awaitable[None]],
        clock: Clock,
        lease: float,
    ) -> None:
        self._renew = renew
        self._owned: set[int] = set()
        self._renewer = Renewer(self._renew_owned, clock, lease, what="throttle lease",
                                wanted=lambda: bool(self._owned), log=logger)

    @property
    def owned(self) -> frozenset[int]:
        return frozenset(self._owned)

    def add(self, ticket: int) -> None:
        self._owned.add(ticket)
        self._renewer.start()

    def discard(self, ticket: int) -> None:
        self._owned.discard(ticket)

    async def _renew_owned(self) -> None:
        await self._renew(tuple(self._owned))

    async def aclose(self) -> None:
        """Stop renewing; the leases of calls still in flight run out by themselves."""
        await self._renewer.stop()


class SharedLedger:
    """A ledger kept outside this process, whose in-flight entries carry leases."""

    __slots__ = ("_clock", "_egress", "_key", "_lease", "_leases", "_view", "_windows")

    def __init__(self, lease: float) -> None:
        self._lease = lease
        #: Where the entries live in the backend; ``for_egress`` appends the source address.
        self._key = ""
        self._egress: str | None = None
        self._windows: tuple[Window, ...] = ()
        self._clock: Clock | None = None
        self._leases: LeaseKeeper | None = None
        self._view: View | None = None

    def bind(self, windows: Sequence[Window], clock: Clock) -> None:
        if self._clock is not None:
            raise ValueError(f"a {type(self).__name__} serves one scheduler")
        self._windows = tuple(windows)
        self._clock = clock
        self._leases = LeaseKeeper(self._renew, clock, self._lease)
        self._view = View(clock.monotonic(), [0] * len(windows), [0.0] * len(windows))

    def for_egress(self, egress: str) -> None:
        """Keep the entries of source address ``egress`` only (the server counts per IP), under
        ``{key}:{egress}``: workers on other addresses have budgets of their own. Before first
        use; naming the same egress again is a no-op."""
        if self._egress == egress:
            return
        if self._egress is not None or self._clock is not None:
            raise ValueError(f"{self!r} is already in use; give each egress its own ledger")
        self._egress = egress
        self._key = f"{self._key}:{egress}"

    def _keeper(self) -> LeaseKeeper:
        assert self._leases is not None, "bind() first"
        return self._leases

    async def admit(self, limits: Sequence[int]) -> Admission:
        admission = await self._admit(tuple(limits))
        if admission.ticket is not None:
            self._keeper().add(admission.ticket)
        return admission

    async def release(
        self,
        ticket: int,
        learned: Sequence[tuple[int, int]] = (),
        held: Sequence[int] = (),
    ) -> None:
        self._keeper().discard(ticket)
        await self._release(ticket, tuple(learned), tuple(held))

    async def cancel(self, ticket: int) -> None:
        self._keeper().discard(ticket)
        await self._cancel(ticket)

    def view(self) -> View:
        assert self._view is not None, "bind() first"
        return self._view

    async def aclose(self) -> None:
        if self._leases is not None:
            await self._leases.aclose()
        await self._close()

    # -- the storage ------------------------------------------------------------------------

    async def _admit(self, limits: tuple[int, ...]) -> Admission:
        raise NotImplementedError

    async def _release(
        self, ticket: int, learned: tuple[tuple[int, int], ...], held: tuple[int, ...]
    ) -> None:
        raise NotImplementedError

    async def _cancel(self, ticket: int) -> None:
        raise NotImplementedError

    async def _renew(self, tickets: tuple[int, ...]) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError
