"""Local checks: refuse before sending what the server would refuse anyway.

Rules this module enforces:

* A check here never refuses what the server accepts (protocol.md §5 is the bound); where
  protocol.md is silent the check is left to the server.
* Every refusal is a :class:`ValidationError` naming the method and the parameter.
* Values are normalised to the form the server expects (phones, booleans) on the way through.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from agupshup.errors import ValidationError

__all__ = [
    "GROUP_NAME",
    "MAX_TEXT",
    "check_group",
    "check_page",
    "check_phone",
    "check_reply_text",
    "check_text",
    "indian_mobile",
    "reply_targets",
]

MAX_TEXT = 160
_TEN_DIGITS = re.compile(r"[0-9]{10}")
_MOBILE = re.compile(r"(?:\+?91)?([6-9][0-9]{9})")
_SEPARATORS = re.compile(r"[\s\-()]")
#: A group name: letters, digits, ``_``, ``-`` and ``.``, not starting with a sign. The one
#: spelling of the rule (``@group`` in a reply here, the widget's URLs).
GROUP_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
_TARGET = re.compile(f"@({GROUP_NAME})")
_GROUP = re.compile(GROUP_NAME)


def check_page(method: str, start: int, count: int, max_count: int) -> None:
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValidationError(method, "from", f"must be an integer ≥ 0, got {start!r}")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= max_count:
        raise ValidationError(method, "range", f"must be an integer 1–{max_count}, got {count!r}")


def check_group(method: str, group: str, param: str = "group") -> str:
    if not isinstance(group, str) or not group.strip():
        raise ValidationError(method, param, "a group name is required")
    name = group.strip()
    if not _GROUP.fullmatch(name):
        # protocol.md §5: the server refuses such names, and the call would cost quota.
        raise ValidationError(
            method, param, f"{name!r}: only letters, digits, '_', '-' and '.' (not first)"
        )
    return name


def check_phone(method: str, phone: str, param: str = "phone") -> str:
    """A 10-digit phone number; a leading ``+91``/``91`` and separators are dropped."""
    digits = _SEPARATORS.sub("", str(phone))
    if len(digits) > 10 and digits.lstrip("+").startswith("91"):
        digits = digits.lstrip("+")[2:]
    if not _TEN_DIGITS.fullmatch(digits):
        raise ValidationError(method, param, "must be a 10-digit phone number")
    return digits


def indian_mobile(phone: str) -> str | None:
    """``91`` + 10 digits for an Indian mobile (6–9 first), else None."""
    match = _MOBILE.fullmatch(_SEPARATORS.sub("", str(phone)))
    return f"91{match.group(1)}" if match else None


def check_text(method: str, text: str, param: str = "text") -> str:
    if not isinstance(text, str) or not text:
        raise ValidationError(method, param, "the text must not be empty")
    if not text.isascii():
        bad = next(c for c in text if not c.isascii())
        raise ValidationError(
            method, param, f"non-ASCII character {bad!r} (the server refuses 125)"
        )
    if len(text) > MAX_TEXT:
        raise ValidationError(
            method,
            param,
            f"{len(text)} characters; the limit is {MAX_TEXT} (the server refuses 126)",
        )
    return text


def reply_targets(text: str) -> list[str]:
    return _TARGET.findall(text)


def check_reply_text(method: str, text: str) -> str:
    check_text(method, text)
    if not reply_targets(text):
        raise ValidationError(method, "text", "a reply must name its destination as @group")
    if not _TARGET.sub("", text).strip():
        raise ValidationError(method, "text", "the reply is empty beyond its @groups (156)")
    return text


def check_phones(method: str, phones: Iterable[str]) -> list[str]:
    listed = [str(p).strip() for p in ([phones] if isinstance(phones, str) else phones)]
    listed = [p for chunk in listed for p in chunk.split(",") if p.strip()]
    if not listed:
        raise ValidationError(method, "phoneNumbers", "at least one phone number is required")
    return listed
