"""Every exception agupshup raises.

The whole tree, in one place::

    GupshupError                       base of everything below
    ├── ValidationError (ValueError)   refused locally: nothing was sent
    ├── UnreadableGroups (ValueError)  followed groups no source can read (``reasons``: each
    │                                  group and why); raised once, the follow goes on
    ├── FleetUnavailable               a fleet worker lost Redis or its lease and stopped
    ├── Fenced                         a fleet publish under a claim token no longer current
    ├── QuotaExhausted                 the scheduler would not admit a request before the call's
    │                                  deadline (max_wait): it was not sent; names the window
    │                                  and when it frees
    │   └── DeadlineExceeded              the deadline passed while the call waited for a login
    │                                     another call started, or for a shared throttle ledger
    │                                     that does not answer; nothing more was sent
    ├── OutcomeUnknown                 a write may or may not have been stored, and reading
    │                                  the group could not tell; carries the group and text
    ├── CircuitOpen                    repeated login refusals (faults never count); no call
    │                                  sent until it closes
    ├── Closed (RuntimeError)          the client or its scheduler was closed; nothing sent
    ├── LedgerError                    a shared throttle ledger (SQLite, Redis) failed;
    │                                  nothing sent; ``__cause__`` is the backend's error
    ├── TransportError                 no API answer could be read (the call may have run)
    │   ├── ConnectError                  connection refused / reset / closed early
    │   ├── TimeoutError (TimeoutError)   no complete answer in time
    │   ├── HTTPStatusError               5xx, 408, 429, other 2xx: transient (proxy pages)
    │   └── DecodeError                   a 200 whose body is not an API response
    │                                     (wrong type, truncated, garbage, too big)
    ├── HTTPRefused                    the HTTP request itself was refused, not transient:
    │   │                              never retried, nothing resent (the call did not run)
    │   ├── RedirectRefused               a 3xx: redirects are never followed (names the host)
    │   ├── HTTPClientError               a 4xx that is not an API envelope (wrong URL, 403)
    │   └── TLSRefused                    the TLS handshake failed (https:// to a plain-HTTP
    │                                     server, a bad certificate): nothing was sent
    └── APIError                       the server answered with one or more ``error`` tags
        ├── ThrottleLimitExceeded         113: not executed, a throttle window is full
        ├── ServerError                   129: internal error, safe to resubmit
        ├── InvalidRequest                102/107/108/109/110/111, range/from codes (1, 3, 131, 150)
        ├── InvalidToken                  the method's token-invalid code (6, 1, 153 …)
        ├── AuthenticationError           login refused
        │   ├── InvalidPhone                 2 at login/subscribe: malformed phone
        │   ├── InvalidCountryCode           120
        │   ├── WrongPassword                121 (also an unknown or spent challenge)
        │   ├── NotActivated                 122
        │   └── AccountDisabled              123
        ├── GroupNotFound                 unknown group (2, or 1 where a method uses it so)
        ├── PrivateGroup                  112, 155, 10: the group is not public
        ├── PermissionDenied              not the owner (1 for posts, 154), blocked (3)
        ├── GroupDisabled                 124
        ├── MessageRejected               125 non-ASCII, 126 too long, 156 empty reply,
        │                                 1 reply without @group
        ├── PosterThrottled               127: five posts a minute per user
        ├── DuplicateMessage              128: same text as the previous post
        ├── SubscriptionError             subscribe phase I/II codes 5, 7, 8, 9
        │   ├── AlreadySubscribed            8
        │   ├── InvalidConfirmation          7
        │   └── TooManyAttempts              5, 9
        └── InviteFailed                  161, 163: nobody could be invited

Which code becomes which class depends on the method; that table is
:data:`agupshup.wire.methods.METHODS` and nowhere else.

Every :class:`APIError` keeps ``method``, ``code``, ``msg``, every ``error`` tag of the response
(``errors``) and its ``throttle`` tags. Partial successes (157, 162) are not errors: they are
results with a ``failed`` list.

No exception text carries the password, ``rand``, a token or a confirmation code: the transport
strips query strings and form bodies from everything it wraps, and both the transport and the
wire codec blank out every secret the call sent (and a token the answer carries) wherever a
server's text is quoted. Nor the ``user:pass@`` of a URL: :func:`redact_url`, the one URL
redactor (errors, reprs, the CLI's log lines), is applied by every error that names a URL to
its ``url`` and its whole text, whoever built it.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agupshup.models import ErrorDetail, ThrottleTag

#: How many characters of a server's text an error quotes (the transport's pages, the codec's
#: bodies): enough to recognise a proxy's page, too little to carry a whole answer.
EXCERPT_CHARS = 120

__all__ = [
    "EXCERPT_CHARS",
    "APIError",
    "AccountDisabled",
    "AlreadySubscribed",
    "AuthenticationError",
    "CircuitOpen",
    "Closed",
    "ConnectError",
    "DeadlineExceeded",
    "DecodeError",
    "DuplicateMessage",
    "Fenced",
    "FleetUnavailable",
    "GroupDisabled",
    "GroupNotFound",
    "GupshupError",
    "HTTPClientError",
    "HTTPRefused",
    "HTTPStatusError",
    "InvalidConfirmation",
    "InvalidCountryCode",
    "InvalidPhone",
    "InvalidRequest",
    "InvalidToken",
    "InviteFailed",
    "LedgerError",
    "MessageRejected",
    "NotActivated",
    "OutcomeUnknown",
    "PermissionDenied",
    "PosterThrottled",
    "PrivateGroup",
    "QuotaExhausted",
    "RedirectRefused",
    "ServerError",
    "SubscriptionError",
    "TLSRefused",
    "ThrottleLimitExceeded",
    "TimeoutError",
    "TooManyAttempts",
    "TransportError",
    "UnreadableGroups",
    "ValidationError",
    "WrongPassword",
    "redact_url",
]


#: The ``user:pass@`` (or ``user@``) after a scheme; greedy up to the last ``@`` before the
#: path, since a careless password may hold an unencoded ``@``.
_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/?#\s]*@", re.IGNORECASE)


def redact_url(text: str) -> str:
    """``text`` (a URL, or any text quoting URLs) without the ``user:pass@`` of any of them.

    One word without ``://`` is taken for a URL written without its scheme (``me:pw@host``),
    so that even a malformed base URL loses its credentials. Cheap when there is no ``@``.
    """
    if "@" not in text:
        return text
    if "://" not in text and not any(c.isspace() for c in text):
        authority, slash, rest = text.partition("/")
        return authority.rpartition("@")[2] + slash + rest
    return _USERINFO.sub(r"\1", text)


class GupshupError(Exception):
    """Base class of every agupshup exception."""

    def __reduce__(self) -> tuple[object, ...]:
        # The default rebuilds with ``cls(*args)``, which fails for (or garbles) the classes
        # whose ``__init__`` takes other arguments than the message: rebuild without
        # ``__init__`` and restore the attributes and ``args`` as they were.
        return (_rebuild_error, (type(self), self.args), {**vars(self), "args": self.args})


def _rebuild_error(cls: type[GupshupError], args: tuple[object, ...]) -> GupshupError:
    return cls.__new__(cls, *args)


class ValidationError(GupshupError, ValueError):
    """An argument the server would refuse; raised before anything is sent."""

    def __init__(self, method: str, param: str, reason: str) -> None:
        self.method = method
        self.param = param
        self.reason = reason
        super().__init__(f"{method}: {param}: {reason}")


class UnreadableGroups(GupshupError, ValueError):
    """Followed groups that no source can read; ``reasons`` maps each to why."""

    def __init__(self, reasons: Mapping[str, str]) -> None:
        self.reasons = dict(reasons)
        listed = ", ".join(f"{g} ({why})" for g, why in sorted(self.reasons.items()))
        super().__init__(f"cannot follow {len(self.reasons)} group(s): {listed}")


class FleetUnavailable(GupshupError):
    """Redis could not be reached (``__cause__`` is its error), or this fleet worker's lease
    lapsed: the worker stopped following, so no group is polled by two workers."""


class Fenced(GupshupError):
    """A fleet publish refused: the claim of the message's group no longer holds the token the
    message was read under. Its owner now reads (or has read) the message itself."""


class QuotaExhausted(GupshupError):
    """The call could not be admitted within ``max_wait``; it was not sent."""

    def __init__(self, window: str, free_at: float, waited: float = 0.0) -> None:
        self.window = window
        #: ``Clock.monotonic()`` value at which the window has room again.
        self.free_at = free_at
        self.waited = waited
        super().__init__(
            f"throttle window {window!r} is full; it frees at t={free_at:.3f} "
            f"(waited {waited:.3f}s)"
        )


class DeadlineExceeded(QuotaExhausted):
    """The call's deadline (``max_wait``) passed while it waited for a login another call had
    started, for an earlier post to the group, or for a shared throttle ledger that did not
    answer (``__cause__`` then says so); nothing more was sent for it. ``free_at`` is the
    deadline; ``window`` is ``"deadline"``."""

    def __init__(self, deadline: float, waited: float = 0.0) -> None:
        self.window = "deadline"
        self.free_at = deadline
        self.waited = waited
        GupshupError.__init__(
            self, f"deadline t={deadline:.3f} passed before the call could go on "
            f"(waited {waited:.3f}s)"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.free_at, self.waited))


class OutcomeUnknown(GupshupError):
    """A write left, its answer was lost, and reading the group could not tell whether it was
    stored. Nothing more will be sent for it: look for ``text`` in ``group`` before retrying.
    ``__cause__`` is the last error met."""

    def __init__(self, method: str, group: str, text: str, reason: str) -> None:
        self.method = method
        self.group = group
        self.text = text
        self.reason = reason
        super().__init__(f"{method} to {group!r}: outcome unknown: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.method, self.group, self.text, self.reason))


class CircuitOpen(GupshupError):
    """Logins keep failing; no further attempt is made until ``retry_at``."""

    def __init__(self, retry_at: float, cause: str) -> None:
        self.retry_at = retry_at
        super().__init__(f"login circuit open until t={retry_at:.3f}: {cause}")


class Closed(GupshupError, RuntimeError):
    """The client, or the scheduler it shares, has been closed; nothing was sent."""


class LedgerError(GupshupError):
    """The shared throttle ledger failed, so no call could be admitted (nothing was sent)."""


class TransportError(GupshupError):
    """No API answer could be read. The call may or may not have run on the server."""

    def __init__(
        self, message: str, *, method: str = "", url: str = "", maybe_sent: bool = True
    ) -> None:
        self.method = method
        #: The request URL without its query string (which may hold secrets) or ``user:pass@``.
        self.url = redact_url(url)
        #: False only when the request certainly never reached the server (connect failed).
        self.maybe_sent = maybe_sent
        super().__init__(redact_url(message))


class ConnectError(TransportError):
    """The connection failed or closed before a full answer."""


class TimeoutError(TransportError, builtins.TimeoutError):
    """No complete answer arrived in time."""


class HTTPStatusError(TransportError):
    """The server answered with an HTTP status other than 200."""

    def __init__(self, status: int, *, method: str = "", url: str = "", excerpt: str = "") -> None:
        self.status = status
        self.excerpt = excerpt
        super().__init__(
            f"HTTP {status} from {url or 'server'}: {excerpt!r}", method=method, url=url
        )


class DecodeError(TransportError):
    """A body that is not a valid API response. ``excerpt`` keeps its first bytes."""

    def __init__(self, reason: str, *, excerpt: bytes | str = b"", method: str = "", url: str = ""):
        # Cut before decoding: a caller may hand over a whole (large) body.
        if isinstance(excerpt, bytes):
            excerpt = excerpt[:EXCERPT_CHARS].decode("utf-8", "replace")
        self.reason = reason
        self.excerpt = excerpt[:EXCERPT_CHARS]
        super().__init__(
            f"{method or 'response'}: {reason}: {self.excerpt!r}", method=method, url=url
        )


# -- refused HTTP requests: not TransportError, so that no retry or post resolution resends them


class HTTPRefused(GupshupError):
    """The HTTP request was refused as such (a 3xx or 4xx, not an API answer).

    Not a :class:`TransportError`: resending the same request to the same URL gets the same
    refusal, so it is never retried, and the call did not run.
    """

    def __init__(self, status: int, message: str, *, method: str = "", url: str = "") -> None:
        self.status = status
        self.method = method
        #: The request URL without its query string or ``user:pass@``.
        self.url = redact_url(url)
        super().__init__(redact_url(message))


class RedirectRefused(HTTPRefused):
    """A 3xx answer. Redirects are never followed: the request would carry the form body (a
    token, ``rand``) to wherever ``Location`` points, and each hop would be an unadmitted call.
    ``location_host`` is the host it pointed to (no path or query: they may echo secrets)."""

    def __init__(self, status: int, location_host: str, *, method: str = "", url: str = ""):
        self.location_host = location_host
        where = location_host or "the same host"
        super().__init__(
            status,
            f"HTTP {status} redirect to {where} from {url or 'server'}; redirects are not followed",
            method=method,
            url=url,
        )


class HTTPClientError(HTTPRefused):
    """A 4xx answer that is not an API envelope: a wrong base URL or path (404), a proxy or
    firewall refusing the request (403) …. ``excerpt`` keeps the page's first characters."""

    def __init__(self, status: int, *, method: str = "", url: str = "", excerpt: str = ""):
        self.excerpt = excerpt
        super().__init__(
            status, f"HTTP {status} from {url or 'server'}: {excerpt!r}", method=method, url=url
        )


class TLSRefused(HTTPRefused):
    """The TLS handshake failed: ``https://`` to a server that speaks plain HTTP, or a
    certificate that does not verify. Nothing was sent, and a resend meets the same handshake,
    so it is never retried (each attempt would cost a place in the quota)."""

    def __init__(self, reason: str, *, method: str = "", url: str = "") -> None:
        self.reason = reason
        hint = ""
        if "WRONG_VERSION_NUMBER" in reason or "wrong version number" in reason:
            hint = "; the server speaks plain HTTP: use http://"
        super().__init__(0, f"TLS handshake with {url or 'server'} failed ({reason}){hint}",
                         method=method, url=url)


class APIError(GupshupError):
    """The server answered with ``error`` tags.

    ``code`` and ``msg`` are the first error's; ``errors`` holds them all (127 comes with a second
    error naming the throttle), ``throttle`` the response's throttle tags.
    """

    def __init__(
        self,
        method: str,
        code: int,
        msg: str,
        *,
        errors: Sequence[ErrorDetail] = (),
        throttle: Sequence[ThrottleTag] = (),
    ) -> None:
        self.method = method
        self.code = code
        self.msg = msg
        self.errors = tuple(errors)
        self.throttle = tuple(throttle)
        super().__init__(f"{method}: error {code}: {msg}")

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_api_error,
            (type(self), self.method, self.code, self.msg, self.errors, self.throttle),
        )


def _rebuild_api_error(
    cls: type[APIError],
    method: str,
    code: int,
    msg: str,
    errors: Sequence[ErrorDetail],
    throttle: Sequence[ThrottleTag],
) -> APIError:
    return cls(method, code, msg, errors=errors, throttle=throttle)


class ThrottleLimitExceeded(APIError):
    """113: the call was not executed because a throttle window is full."""


class ServerError(APIError):
    """129: an internal error; the action may be resubmitted later."""


class InvalidRequest(APIError):
    """The request was malformed: a bad format, version, method, parameter, range or offset."""


class InvalidToken(APIError):
    """The login token is unknown, expired or logged out."""


class AuthenticationError(APIError):
    """Login was refused."""


class InvalidPhone(AuthenticationError):
    """The phone number is malformed."""


class InvalidCountryCode(AuthenticationError):
    """The country code is not 91."""


class WrongPassword(AuthenticationError):
    """Wrong password, or an unknown or spent challenge."""


class NotActivated(AuthenticationError):
    """The phone number has not been activated."""


class AccountDisabled(AuthenticationError):
    """The phone number has been disabled."""


class GroupNotFound(APIError):
    """No such group (some methods also say this of private groups)."""


class PrivateGroup(APIError):
    """The group is private (or not public) and the caller is not its owner."""


class PermissionDenied(APIError):
    """The caller does not own the group, or the group's settings refuse the action."""


class GroupDisabled(APIError):
    """The group has been disabled."""


class MessageRejected(APIError):
    """The text was refused: non-ASCII, too long, empty, or a reply without ``@group``."""


class PosterThrottled(APIError):
    """127: the user has posted too often; see ``errors`` for the throttle named."""


class DuplicateMessage(APIError):
    """128: the text repeats the user's previous post to that group."""


class SubscriptionError(APIError):
    """A subscription step failed."""


class AlreadySubscribed(SubscriptionError):
    """8: the phone is already subscribed to the group."""


class InvalidConfirmation(SubscriptionError):
    """7: the confirmation code is wrong."""


class TooManyAttempts(SubscriptionError):
    """5 or 9: too many unconfirmed requests or wrong codes."""


class InviteFailed(APIError):
    """161 or 163: no phone number could be invited."""
