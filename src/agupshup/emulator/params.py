"""Request parameters, as the API reads them (protocol.md §1).

Rules this module enforces:

* Names are case-insensitive; ``groupName`` is an alias of ``group`` (both names reach the same
  value); the first occurrence of a name wins.
* A present-but-blank value counts as missing for required parameters (109) and as "use the
  default" for optional ones. Values are stripped of surrounding whitespace before checks.
* Integers are optional-sign decimal digits; booleans are ``true``/``false`` in any case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["Params", "parse_bool", "parse_int"]

_ALIASES = {"groupname": "group"}
_INT = re.compile(r"[+-]?[0-9]{1,18}")


def _key(name: str) -> str:
    key = name.strip().lower()
    return _ALIASES.get(key, key)


class Params:
    """The parameters of one call, looked up by case-insensitive name."""

    __slots__ = ("_values",)

    def __init__(self, pairs: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        values: dict[str, str] = {}
        for name, value in items:
            values.setdefault(_key(name), value)
        self._values = values

    def raw(self, name: str) -> str | None:
        """The value as sent, or ``None`` when absent."""
        return self._values.get(_key(name))

    def get(self, name: str) -> str | None:
        """The stripped value, or ``None`` when absent or blank."""
        value = self._values.get(_key(name))
        if value is None:
            return None
        value = value.strip()
        return value or None

    def names(self) -> list[str]:
        return list(self._values)


def parse_int(text: str) -> int | None:
    return int(text) if _INT.fullmatch(text) else None


def parse_bool(text: str) -> bool | None:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return None
