"""The 16 calls of protocol.md §5: their parameters, results and error codes. No I/O.

Rules this module enforces:

* :data:`METHODS` is the one table from (method, error code) to exception class. The same code
  means different things in different methods (``1`` is a bad range, a bad token, an unknown
  group or a missing ``@group``), so there is no global code table beyond :data:`COMMON`.
* A builder validates and normalises its arguments (:mod:`.validate`) and returns a
  :class:`Request`; it never sees the token, which the session layer adds at send time.
* :func:`decode` returns a :class:`Response` or raises the method's :class:`APIError` subclass,
  or :class:`DecodeError`. A success without ``status`` is accepted when it carries a payload.
* Every call that carries a secret (a token, ``rand``, a confirmation code) is sent as POST
  (:attr:`MethodSpec.http_method`), so no secret is ever in a URL.
* No exception text quotes a secret: the call's secrets (its ``token``, ``rand``, ``confirm``,
  the session token handed to :func:`decode`) and a token the answer carries are blanked out of
  every message and excerpt; an answer that may carry a token is never quoted at all.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from agupshup import errors as E
from agupshup.models import (
    Challenge,
    ErrorDetail,
    Group,
    InviteResult,
    Lane,
    Message,
    Reply,
    ReplyResult,
    ThrottleTag,
)
from agupshup.wire import validate as V
from agupshup.wire.envelope import Body, decode_json, decode_xml, format_of, sniff_format
from agupshup.wire.redact import excerpt, redact, secrets_of

__all__ = [
    "COMMON",
    "METHODS",
    "Format",
    "Lane",
    "MethodSpec",
    "Request",
    "Response",
    "decode",
]

T = TypeVar("T")
Format = Literal["json", "xml"]
ErrorTable = Mapping[int, type[E.APIError]]

#: Codes that mean the same in every method.
COMMON: ErrorTable = {
    102: E.InvalidRequest,
    107: E.InvalidRequest,
    108: E.InvalidRequest,
    109: E.InvalidRequest,
    110: E.InvalidRequest,
    111: E.InvalidRequest,
    113: E.ThrottleLimitExceeded,
    129: E.ServerError,
}


@dataclass(frozen=True, slots=True)
class MethodSpec(Generic[T]):
    """One row of protocol.md §5."""

    name: str
    default_format: Format
    result: Callable[[Body], T]
    errors: ErrorTable = field(default_factory=dict)
    auth: Literal["none", "required", "optional"] = "none"
    lane: Lane = "bulk"
    #: Safe to resend after an unknown outcome.
    idempotent: bool = True
    max_range: int = 0
    #: The answer carries a secret (a token): never quote its body in an error.
    secret_answer: bool = False
    #: Its parameters carry a secret (``rand``, the phase-I token, the confirmation code).
    secret_params: bool = False

    @property
    def http_method(self) -> Literal["GET", "POST"]:
        """POST for calls that carry a secret (a token, ``rand``, a code), so no secret is ever
        in a URL; GET for the rest, which costs aiohttp one write (and CPU) less."""
        return "POST" if self.auth != "none" or self.secret_params else "GET"

    def error_class(self, code: int) -> type[E.APIError]:
        return self.errors.get(code) or COMMON.get(code) or E.APIError

    def __repr__(self) -> str:
        return f"<MethodSpec {self.name}>"


@dataclass(frozen=True, slots=True)
class Request(Generic[T]):
    """A call ready to send: the method and its parameters, minus ``v``/``format``/token."""

    spec: MethodSpec[T]
    params: tuple[tuple[str, str], ...] = ()
    #: Send the token even where it is optional (``getReplies`` with ``getAll``).
    wants_token: bool = False

    @property
    def needs_token(self) -> bool:
        return self.spec.auth == "required" or self.wants_token

    def fields(self, fmt: Format, token: str | None = None) -> list[tuple[str, str]]:
        out = [("method", self.spec.name), ("v", "1.0"), ("format", fmt), *self.params]
        if token is not None:
            out.append(("token", token))
        return out

    def __repr__(self) -> str:
        # Parameters stay out: ``rand`` is one of them.
        return f"<Request {self.spec.name}>"


@dataclass(frozen=True, slots=True)
class Response(Generic[T]):
    result: T
    throttle: tuple[ThrottleTag, ...] = ()
    status: str = "success"


def decode(
    request: Request[T] | MethodSpec[T],
    body: bytes,
    content_type: str | None = None,
    *,
    token: str | None = None,
) -> Response[T]:
    """Decode one response body for ``request``'s method.

    The content type decides the parser; with none, the first byte does. Raises the method's
    :class:`~agupshup.errors.APIError` subclass, or :class:`~agupshup.errors.DecodeError`.
    ``token`` is the session token the call carried: like the request's own secrets, it is kept
    out of every exception.
    """
    spec = request.spec if isinstance(request, Request) else request
    secrets = _secrets(request, token)
    raw = _parse(spec, body, content_type, secrets)
    if raw.token:  # the answer's own token is a secret too, wherever the body is quoted
        secrets = (*secrets, raw.token)
    throttle = raw.throttle_tags()
    errs = raw.errors()
    if errs and raw.status != "partial":
        raise _api_error(spec, errs, throttle, secrets)
    if raw.status is None and not errs and not _has_payload(raw):
        # protocol.md §2: a success has a status, an error has error tags; this has neither, nor
        # anything a success could carry.
        raise E.DecodeError(
            "neither a status, an error nor a payload",
            excerpt=_excerpt(spec, body, secrets),
            method=spec.name,
        )
    try:
        result = spec.result(raw)
    except _Missing as exc:
        raise E.DecodeError(
            f"success without {exc}", excerpt=_excerpt(spec, body, secrets), method=spec.name
        ) from None
    return Response(result, throttle, raw.status or "success")


def _secrets(request: Request[Any] | MethodSpec[Any], token: str | None) -> tuple[str, ...]:
    found = secrets_of(request.params) if isinstance(request, Request) else ()
    return (*found, token) if token else found


def _api_error(
    spec: MethodSpec[Any],
    errs: tuple[ErrorDetail, ...],
    throttle: tuple[ThrottleTag, ...],
    secrets: tuple[str, ...],
) -> E.APIError:
    if secrets:
        errs = tuple(
            ErrorDetail(code=e.code, msg=redact(e.msg, secrets)) if e.msg else e for e in errs
        )
    first = errs[0]
    cls = spec.error_class(first.code)
    return cls(spec.name, first.code, first.msg, errors=errs, throttle=throttle)


#: Every field of :class:`Body` a success may carry (all but status, error and throttle).
_PAYLOAD = tuple(f for f in Body.__struct_fields__ if f not in ("status", "error", "throttle"))


def _has_payload(raw: Body) -> bool:
    return any(getattr(raw, name) is not None for name in _PAYLOAD)


def _parse(
    spec: MethodSpec[Any], body: bytes, content_type: str | None, secrets: tuple[str, ...]
) -> Body:
    fmt = format_of(content_type) if content_type else sniff_format(body)
    try:
        if fmt is None:
            raise E.DecodeError(f"unexpected content type {content_type or 'none'!r}")
        return decode_json(body) if fmt == "json" else decode_xml(body)
    except E.DecodeError as exc:
        # Rebuilt rather than patched, so that the message names the method too.
        text = _excerpt(spec, body, secrets)
        raise E.DecodeError(redact(exc.reason, secrets), excerpt=text, method=spec.name) from None


def _excerpt(spec: MethodSpec[Any], body: bytes, secrets: tuple[str, ...]) -> str:
    return excerpt(body, secrets, secret_answer=spec.secret_answer)


class _Missing(Exception):
    pass


def _need(value: T | None, what: str) -> T:
    if value is None:
        raise _Missing(what)
    return value


# -- results -------------------------------------------------------------------------------------


def _messages(b: Body) -> list[Message]:
    return b.messages or []


def _groups(b: Body) -> list[Group]:
    return b.groups or []


def _replies(b: Body) -> list[Reply]:
    return b.replies or []


def _message(b: Body) -> Message | None:
    return b.message


def _group(b: Body) -> Group:
    return _need(b.group, "<group>")


def _token(b: Body) -> str:
    return _need(b.token, "<token>")


def _msg(b: Body) -> str:
    return b.msg or ""


def _challenge(b: Body) -> Challenge:
    return Challenge(salt=_need(b.salt, "<salt>"), challenge=_need(b.challenge, "<challenge>"))


def _post_id(b: Body) -> int:
    return _need(b.id, "<id>")


def _nothing(b: Body) -> None:
    return None


def _status(b: Body) -> Literal["success", "partial"]:
    return "partial" if b.status == "partial" else "success"


def _reply_result(b: Body) -> ReplyResult:
    return ReplyResult(status=_status(b), replies=tuple(b.replies or ()), failed=b.errors())


def _invite_result(b: Body) -> InviteResult:
    return InviteResult(
        status=_status(b), invited=tuple(b.invited or ()), failed=tuple(b.failed or ())
    )


# -- the table -----------------------------------------------------------------------------------

_PAGE15 = {1: E.InvalidRequest, 110: E.InvalidRequest, 111: E.InvalidRequest}
_SUBSCRIBE: ErrorTable = {
    1: E.GroupNotFound,
    2: E.InvalidPhone,
    3: E.PermissionDenied,
    5: E.TooManyAttempts,
    6: E.InvalidToken,
    7: E.InvalidConfirmation,
    8: E.AlreadySubscribed,
    9: E.TooManyAttempts,
    10: E.PrivateGroup,
}
_TEXT: ErrorTable = {124: E.GroupDisabled, 125: E.MessageRejected, 126: E.MessageRejected}
_JOINED: ErrorTable = {1: E.InvalidToken, 131: E.InvalidRequest, 150: E.InvalidRequest}


PUBLIC_STREAM = MethodSpec(
    "gupshup.getPublicStream", "xml", _messages, errors=_PAGE15, max_range=15
)
GET_MESSAGE = MethodSpec("groups.getMessage", "xml", _message, errors={2: E.GroupNotFound})
GET_STREAM = MethodSpec(
    "groups.getStream",
    "xml",
    _messages,
    errors={2: E.GroupNotFound, 3: E.InvalidRequest, 112: E.PrivateGroup},
    max_range=15,
)
GET_INFO = MethodSpec(
    "groups.getInfo", "xml", _group, errors={2: E.GroupNotFound, 112: E.PrivateGroup}
)
SUBSCRIBE = MethodSpec(
    "groups.subscribeGroupToken",
    "xml",
    _token,
    errors=_SUBSCRIBE,
    lane="interactive",
    idempotent=False,
    secret_answer=True,
)
CONFIRM = MethodSpec(
    "groups.subscribeGroupToken",
    "xml",
    _msg,
    errors=_SUBSCRIBE,
    lane="interactive",
    idempotent=False,
    secret_params=True,
)
GET_CHALLENGE = MethodSpec("users.getChallenge", "json", _challenge, lane="interactive")
LOGIN = MethodSpec(
    "users.login",
    "json",
    _token,
    errors={
        2: E.InvalidPhone,
        120: E.InvalidCountryCode,
        121: E.WrongPassword,
        122: E.NotActivated,
        123: E.AccountDisabled,
    },
    lane="interactive",
    idempotent=False,
    secret_answer=True,
    secret_params=True,
)
POST_MESSAGE = MethodSpec(
    "groups.postMessage",
    "json",
    _post_id,
    errors={
        6: E.InvalidToken,
        1: E.PermissionDenied,
        **_TEXT,
        127: E.PosterThrottled,
        128: E.DuplicateMessage,
    },
    auth="required",
    lane="interactive",
    idempotent=False,
)
MY_GROUPS = MethodSpec(
    "users.getMyGroups",
    "json",
    _groups,
    errors={6: E.InvalidToken},
    auth="required",
    max_range=30,
)
LOGOUT = MethodSpec("users.logout", "json", _nothing, auth="required", lane="interactive")
JOINED_GROUPS = MethodSpec(
    "users.getJoinedGroups",
    "json",
    _groups,
    errors=_JOINED,
    auth="required",
    max_range=30,
)
JOINED_STREAM = MethodSpec(
    "users.getJoinedGroupsStream",
    "json",
    _messages,
    errors=_JOINED,
    auth="required",
    max_range=30,
)
POST_REPLY = MethodSpec(
    "groups.postReply",
    "json",
    _reply_result,
    errors={
        6: E.InvalidToken,
        1: E.GroupNotFound,
        156: E.MessageRejected,
        155: E.PrivateGroup,
        **_TEXT,
    },
    auth="required",
    lane="interactive",
    idempotent=False,
)
GET_REPLIES = MethodSpec(
    "groups.getReplies",
    "json",
    _replies,
    errors={
        1: E.GroupNotFound,
        153: E.InvalidToken,
        154: E.PermissionDenied,
        155: E.PrivateGroup,
        131: E.InvalidRequest,
        150: E.InvalidRequest,
    },
    auth="optional",
    max_range=30,
)
INVITE = MethodSpec(
    "groups.inviteFriends",
    "json",
    _invite_result,
    errors={6: E.InvalidToken, 1: E.PermissionDenied, 161: E.InviteFailed, 163: E.InviteFailed},
    auth="required",
    lane="interactive",
    idempotent=False,
)

#: Every call of protocol.md §5, keyed by its builder's name here: the API call's name in
#: snake case (``users.getMyGroups`` → ``get_my_groups``), as the client's one-page method.
METHODS: dict[str, MethodSpec[Any]] = {
    "get_public_stream": PUBLIC_STREAM,
    "get_message": GET_MESSAGE,
    "get_stream": GET_STREAM,
    "get_info": GET_INFO,
    "subscribe": SUBSCRIBE,
    "confirm_subscription": CONFIRM,
    "get_challenge": GET_CHALLENGE,
    "login": LOGIN,
    "post_message": POST_MESSAGE,
    "get_my_groups": MY_GROUPS,
    "logout": LOGOUT,
    "get_joined_groups": JOINED_GROUPS,
    "get_joined_groups_stream": JOINED_STREAM,
    "post_reply": POST_REPLY,
    "get_replies": GET_REPLIES,
    "invite_friends": INVITE,
}

#: Methods whose answer may carry a token: no text of their answers is ever quoted.
SECRET_ANSWERS = frozenset(spec.name for spec in METHODS.values() if spec.secret_answer)


# -- builders ------------------------------------------------------------------------------------


def _page(spec: MethodSpec[T], start: int, count: int) -> tuple[tuple[str, str], ...]:
    V.check_page(spec.name, start, count, spec.max_range)
    return (("from", str(start)), ("range", str(count)))


def get_public_stream(
    start: int = 0, count: int = 15, *, skip_adult: bool = True
) -> Request[list[Message]]:
    params = (*_page(PUBLIC_STREAM, start, count), ("skipAdult", _bool(skip_adult)))
    return Request(PUBLIC_STREAM, params)


def get_message(group: str) -> Request[Message | None]:
    return Request(GET_MESSAGE, (("group", V.check_group(GET_MESSAGE.name, group)),))


def get_stream(group: str, start: int = 0, count: int = 15) -> Request[list[Message]]:
    name = V.check_group(GET_STREAM.name, group)
    return Request(GET_STREAM, (("group", name), *_page(GET_STREAM, start, count)))


def get_info(group: str) -> Request[Group]:
    return Request(GET_INFO, (("group", V.check_group(GET_INFO.name, group)),))


def subscribe(phone: str, group: str) -> Request[str]:
    phone = V.check_phone(SUBSCRIBE.name, phone)
    return Request(SUBSCRIBE, (("phone", phone), ("group", V.check_group(SUBSCRIBE.name, group))))


def confirm_subscription(phone: str, group: str, token: str, code: str) -> Request[str]:
    phone = V.check_phone(CONFIRM.name, phone)
    group = V.check_group(CONFIRM.name, group)
    if not token:
        raise E.ValidationError(CONFIRM.name, "token", "the phase I token is required")
    code = str(code).strip().upper()
    if len(code) != 4 or not code.isascii() or not code.isalnum():
        raise E.ValidationError(CONFIRM.name, "confirm", "the code is 4 letters or digits")
    params = (("phone", phone), ("group", group), ("token", token), ("confirm", code))
    return Request(CONFIRM, params)


def get_challenge() -> Request[Challenge]:
    return Request(GET_CHALLENGE)


def login(
    phone: str, password: str, challenge: Challenge, country_code: str = "91"
) -> Request[str]:
    """The login call for ``challenge``; the password leaves only as ``rand`` (protocol.md §6)."""
    phone = V.check_phone(LOGIN.name, phone)
    if str(country_code).lstrip("+") != "91":
        raise E.ValidationError(LOGIN.name, "countryCode", "only 91 (India) is supported")
    rand = compute_rand(password, challenge.salt, challenge.challenge)
    params = (
        ("phone", phone),
        ("countryCode", "91"),
        ("challenge", challenge.challenge),
        ("rand", rand),
    )
    return Request(LOGIN, params)


def compute_rand(password: str, salt: str, challenge: str) -> str:
    """``base64(md5(base64(md5(password + salt)) + challenge))``, standard base64 of raw digests."""
    inner = base64.b64encode(hashlib.md5((password + salt).encode()).digest()).decode()
    return base64.b64encode(hashlib.md5((inner + challenge).encode()).digest()).decode()


def post_message(group: str, text: str) -> Request[int]:
    group = V.check_group(POST_MESSAGE.name, group, "groupName")
    text = V.check_text(POST_MESSAGE.name, text)
    return Request(POST_MESSAGE, (("groupName", group), ("text", text)))


def get_my_groups(start: int = 0, count: int = 30) -> Request[list[Group]]:
    return Request(MY_GROUPS, _page(MY_GROUPS, start, count))


def logout() -> Request[None]:
    return Request(LOGOUT)


def get_joined_groups(start: int = 0, count: int = 30) -> Request[list[Group]]:
    return Request(JOINED_GROUPS, _page(JOINED_GROUPS, start, count))


def get_joined_groups_stream(start: int = 0, count: int = 30) -> Request[list[Message]]:
    return Request(JOINED_STREAM, _page(JOINED_STREAM, start, count))


def post_reply(text: str, group: str | None = None) -> Request[ReplyResult]:
    text = V.check_reply_text(POST_REPLY.name, text)
    params: tuple[tuple[str, str], ...] = (("text", text),)
    if group is not None:
        params = (("groupName", V.check_group(POST_REPLY.name, group, "groupName")), *params)
    return Request(POST_REPLY, params)


def get_replies(
    group: str, start: int = 0, count: int = 30, *, include_hidden: bool = False
) -> Request[list[Reply]]:
    group = V.check_group(GET_REPLIES.name, group, "groupName")
    params = (("groupName", group), *_page(GET_REPLIES, start, count))
    if include_hidden:
        params = (*params, ("getAll", "true"))
    return Request(GET_REPLIES, params, wants_token=include_hidden)


def invite_friends(phones: str | Iterable[str], group: str | None = None) -> Request[InviteResult]:
    listed = V.check_phones(INVITE.name, phones)
    if not any(V.indian_mobile(p) for p in listed):
        raise E.ValidationError(
            INVITE.name, "phoneNumbers", "no valid Indian mobile number (10 digits, 6–9 first)"
        )
    # Valid numbers go in the server's form (91 + 10 digits); the others go as given, so that
    # the server lists them under ``failed``.
    phones = ",".join(V.indian_mobile(p) or p.strip() for p in listed)
    params: tuple[tuple[str, str], ...] = (("phoneNumbers", phones),)
    if group is not None:
        params = (("groupName", V.check_group(INVITE.name, group, "groupName")), *params)
    return Request(INVITE, params)


def _bool(value: bool) -> str:
    return "true" if value else "false"
