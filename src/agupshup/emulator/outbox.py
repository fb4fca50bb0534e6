"""The SMS outbox: every text the emulator "sends".

Rules this module enforces:

* Every phase-I confirmation code and every invite is recorded, in sending order, with the
  phone as the API normalised it, the full text, the code (for subscriptions), the kind
  (``"subscribe"`` or ``"invite"``), the group and the emulator time (epoch seconds).
* Looking up by phone matches on the last 10 digits, so ``9888800001`` finds ``919888800001``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["Outbox", "SmsRecord"]


@dataclass(frozen=True, slots=True)
class SmsRecord:
    phone: str
    text: str
    code: str | None
    kind: Literal["subscribe", "invite"]
    group: str
    time: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Outbox(list[SmsRecord]):
    """A list of :class:`SmsRecord`, oldest first, with lookups."""

    def for_phone(self, phone: str) -> list[SmsRecord]:
        tail = _tail(phone)
        return [r for r in self if _tail(r.phone) == tail]

    def last_code(self, phone: str) -> str | None:
        """The most recent confirmation code texted to ``phone``."""
        for record in reversed(self.for_phone(phone)):
            if record.code is not None:
                return record.code
        return None


def _tail(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    return digits[-10:]
