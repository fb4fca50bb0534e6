"""Secrets out of every text a server wrote: one rule for the transport and the codec.

Rules this module enforces:

* The secrets of a call are the values of its ``token``, ``rand`` and ``confirm`` fields (the
  password never leaves the client; ``rand`` stands for it). A server may echo any of them, in
  any case and URL-encoded, in an error message or a page; :func:`redact` blanks them all.
* Redaction costs nothing when no secret occurs: it only runs on the error paths anyway.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote, quote_plus

from agupshup.errors import EXCERPT_CHARS

__all__ = ["REDACTED", "SECRET_PARAMS", "excerpt", "redact", "secrets_of"]

REDACTED = "<redacted>"
SECRET_PARAMS = frozenset({"token", "rand", "confirm"})


def secrets_of(fields: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """The values of a call's secret fields."""
    return tuple(value for key, value in fields if key.lower() in SECRET_PARAMS and value)


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every spelling of every secret replaced by :data:`REDACTED`."""
    spellings = {form for s in secrets if s for form in (s, quote_plus(s), quote(s, safe=""))}
    present = [s for s in spellings if s.lower() in text.lower()]
    if not present:
        return text
    # Longest first, so that a secret containing another is blanked whole.
    pattern = "|".join(re.escape(s) for s in sorted(present, key=len, reverse=True))
    return re.sub(pattern, REDACTED, text, flags=re.IGNORECASE)


def excerpt(
    data: bytes, secrets: Sequence[str], size: int = EXCERPT_CHARS, *, secret_answer: bool = False
) -> str:
    """The first ``size`` characters of ``data``, all of it redacted before the cut (a secret
    the cut split would otherwise survive in part). None at all of an answer that may carry a token
    the client has not read yet (``secret_answer``)."""
    if secret_answer:
        return "<redacted: this answer may carry a token>"
    if not any(secrets):
        return data[:size].decode("utf-8", "replace")[:size]
    # The whole body, not a prefix: each secret shrinks to REDACTED, pulling later text (and
    # a secret a prefix would have cut in part) into the excerpt. Error paths only, and the
    # body is bounded by the transport's max_body.
    return redact(data.decode("utf-8", "replace"), secrets)[:size]
