"""Issue 13.6: no secret in any exception text, repr or log line, on any error path.

A hostile server echoes every secret a call carried (its token, ``rand``, the confirmation
code, URL-encoded too) and, where the answer is a token, a fresh token, into every kind of
answer: each method's every error code, malformed, status-less, incomplete, mistyped and
DTD-laden bodies, HTML pages, 4xx, 5xx, redirects, connection failures and timeouts — in both
formats, over the real aiohttp transport (aioresponses). The password, which never leaves the
client, must not appear either.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, quote_plus

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses

from agupshup import Client, GupshupError, wire
from agupshup.models import SubscribeTicket
from agupshup.retry import RetryPolicy
from agupshup.wire.methods import COMMON

BASE = "http://api.test"
ANY_CALL = re.compile(r"^http://api\.test/GupshupAPI/rest(\?.*)?$")
PHONE, PASSWORD = "9812345678", "hunter2-Pa55word"
SALT, CHALLENGE = "k3J9xQ", "8f2c41a7e0"
RAND = wire.compute_rand(PASSWORD, SALT, CHALLENGE)
TOKEN = "IIQiU1107028137"  # the session token, from login
PHASE1 = "0123456789abcdef0123456789abcdef"  # the subscription ticket's token
CODE = "Q7ZK"
NEW_TOKEN = "zt00e-639104101"  # a token an answer carries
SECRETS = (PASSWORD, RAND, quote_plus(RAND), TOKEN, PHASE1, CODE, NEW_TOKEN)
#: ``late_landing`` short: a post whose answer is lost is read back at once (no server here
#: runs a request late), so each hostile answer costs no minute of waiting.
FAST = RetryPolicy(attempts=2, base=0.001, cap=0.001, total=1.0, resolve_attempts=2,
                   late_landing=0.01)

Call = Callable[[Client], Awaitable[Any]]
CALLS: dict[str, Call] = {
    "get_public_stream": lambda c: c.get_public_stream(),
    "get_message": lambda c: c.get_message("jumpy"),
    "get_stream": lambda c: c.get_stream("jumpy"),
    "get_info": lambda c: c.get_info("jumpy"),
    "subscribe": lambda c: c.subscribe(PHONE, "jumpy"),
    "confirm_subscription": lambda c: c.confirm_subscription(
        SubscribeTicket(phone=PHONE, group="jumpy", token=PHASE1), CODE
    ),
    "get_challenge": lambda c: c.get_challenge(),
    "login": lambda c: c.login(),
    "post_message": lambda c: c.post_message("jumpy", "hello"),
    "get_my_groups": lambda c: c.get_my_groups(),
    "logout": lambda c: _login_then_logout(c),
    "get_joined_groups": lambda c: c.get_joined_groups(),
    "get_joined_groups_stream": lambda c: c.get_joined_groups_stream(),
    "post_reply": lambda c: c.post_reply("hi @other", "jumpy"),
    "get_replies": lambda c: c.get_replies("jumpy", include_hidden=True),
    "invite_friends": lambda c: c.invite_friends([PHONE], "jumpy"),
}
assert set(CALLS) == set(wire.METHODS)


async def _login_then_logout(client: Client) -> None:
    await client.login()
    await client.logout()


class _Compat(aiohttp.ClientResponse):
    """aioresponses 0.7.9 (the latest) predates aiohttp 3.14's required ``stream_writer``."""

    def __init__(self, method: str, url: Any, **kw: Any) -> None:
        kw.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kw)


def _render(fields: dict[str, Any], fmt: str) -> tuple[str, str]:
    """A flat response in ``fmt``, and its content type (``error`` may be a dict)."""
    if fmt == "json":
        import json

        return json.dumps({"response": fields}), "application/json"
    inner = "".join(
        f"<{k}>" + ("".join(f"<{a}>{b}</{a}>" for a, b in v.items()) if isinstance(v, dict) else v)
        + f"</{k}>"
        for k, v in fields.items()
    )
    return f'<?xml version="1.0"?>\n<response>{inner}</response>', "text/xml"


def _echo(sent: dict[str, str], secret_answer: bool) -> str:
    found = [sent[k] for k in ("token", "rand", "confirm") if k in sent]
    found += [quote_plus(v) for v in found]
    return " ".join(found + ([NEW_TOKEN] if secret_answer else []))


#: path → the hostile answer, from (what was sent, echo, format); a CallbackResult or raises.
Hostile = Callable[[dict[str, str], str, str], CallbackResult]


def _api_error(code: int) -> Hostile:
    def answer(sent: dict[str, str], echo: str, fmt: str) -> CallbackResult:
        body, ctype = _render(
            {"error": {"code": str(code), "msg": f"refused {echo}"}, "token": NEW_TOKEN}, fmt
        )
        return CallbackResult(body=body, content_type=ctype, response_class=_Compat)

    return answer


def _body(build: Callable[[str, str], tuple[str, str]], status: int = 200) -> Hostile:
    def answer(sent: dict[str, str], echo: str, fmt: str) -> CallbackResult:
        body, ctype = build(echo, fmt)
        return CallbackResult(
            status=status, body=body, content_type=ctype, response_class=_Compat
        )

    return answer


def _malformed(echo: str, fmt: str) -> tuple[str, str]:
    body, ctype = _render({"status": "success", "msg": echo}, fmt)
    return body[: body.index(echo) + len(echo) - 3], ctype


def _redirect(sent: dict[str, str], echo: str, fmt: str) -> CallbackResult:
    user = quote_plus(echo.split()[0]) if echo else "user"
    where = f"http://{user}@evil.test/{quote_plus(echo)}?t={quote_plus(echo)}"
    return CallbackResult(status=307, headers={"Location": where}, response_class=_Compat)


def _raise(exc: BaseException) -> Hostile:
    def answer(sent: dict[str, str], echo: str, fmt: str) -> CallbackResult:
        raise exc

    return answer


def _connect_error(sent: dict[str, str], echo: str, fmt: str) -> CallbackResult:
    # No answer came, so no answer's token: only what was sent could be in aiohttp's text.
    sent_only = _echo(sent, secret_answer=False)
    raise aiohttp.ClientConnectionError(f"lost http://api.test/GupshupAPI/rest?e={sent_only}")


def _html(echo: str, fmt: str) -> tuple[str, str]:
    return f"<html><body>{echo}</body></html>", "text/html"


HOSTILE: dict[str, Hostile] = {
    "malformed": _body(_malformed),
    "no status": _body(lambda echo, fmt: _render({"token": NEW_TOKEN, "msg": echo}, fmt)),
    "nothing at all": _body(lambda echo, fmt: _render({"unknown": echo}, fmt)),
    "success without its field": _body(
        lambda echo, fmt: _render({"status": "success", "msg": echo}, fmt)
    ),
    "mistyped": _body(
        lambda echo, fmt: _render({"status": "success", "id": echo, "token": "x"}, fmt)
    ),
    "html as 200": _body(_html),
    "dtd": _body(
        lambda echo, fmt: (f"<!DOCTYPE response><response><msg>{echo}</msg></response>", "text/xml")
    ),
    "wrong root": _body(lambda echo, fmt: (f"<html><p>{echo}</p></html>", "text/xml")),
    "http 500": _body(_html, 500),
    "http 404": _body(_html, 404),
    "redirect": _redirect,
    "connect": _connect_error,
    "timeout": _raise(TimeoutError()),
}
ALWAYS_RAISES = {"malformed", "html as 200", "dtd", "wrong root", "http 500", "http 404",
                 "redirect", "connect", "timeout"}


def _cases() -> Iterator[tuple[str, str]]:
    for name, spec in wire.METHODS.items():
        for code in sorted({*spec.errors, *COMMON}):
            yield name, f"api {code}"
        for path in HOSTILE:
            yield name, path


def _hostile(path: str) -> Hostile:
    return _api_error(int(path[4:])) if path.startswith("api ") else HOSTILE[path]


def _sent(url: Any, kwargs: dict[str, Any]) -> dict[str, str]:
    data = kwargs.get("data")
    pairs = parse_qsl(data.decode()) if isinstance(data, bytes) else list(url.query.items())
    return dict(pairs)


def _server(target: str, path: str, fmt: str) -> Callable[..., CallbackResult]:
    spec = wire.METHODS[target]
    hostile = _hostile(path)

    def callback(url: Any, **kwargs: Any) -> CallbackResult:
        sent = _sent(url, kwargs)
        is_target = sent["method"] == spec.name and (
            ("confirm" in sent) == (target == "confirm_subscription")
        )
        if is_target:
            return hostile(sent, _echo(sent, spec.secret_answer), fmt)
        honest = {
            "users.getChallenge": {"status": "success", "salt": SALT, "challenge": CHALLENGE},
            "users.login": {"status": "success", "token": TOKEN},
        }.get(sent["method"], {"status": "success"})
        body, ctype = _render(honest, fmt)
        return CallbackResult(body=body, content_type=ctype, response_class=_Compat)

    return callback


def _texts(exc: BaseException) -> list[str]:
    out: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:  # the chain a traceback shows (``from None`` hides the rest)
        out += [str(seen), repr(seen), repr(vars(seen))]
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return out


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(("target", "path"), list(_cases()))
async def test_no_secret_escapes(
    target: str, path: str, fmt: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    raised: BaseException | None = None
    with aioresponses() as mocked:
        mocked.get(ANY_CALL, callback=_server(target, path, fmt), repeat=True)
        mocked.post(ANY_CALL, callback=_server(target, path, fmt), repeat=True)
        client = Client(
            BASE, phone=PHONE, password=PASSWORD, wire_format=fmt, throttle=None, retry=FAST,  # type: ignore[arg-type]
            timeout=1.0,
        )
        try:
            await CALLS[target](client)
        except GupshupError as exc:
            raised = exc
        finally:
            client.session._token = None  # no logout against the hostile server
            await client.aclose()
    if target != "logout" and (path.startswith("api ") or path in ALWAYS_RAISES):
        # (a failed logout is only logged: the token expires by itself)
        assert raised is not None, "the hostile answer was accepted"
    texts = [*(_texts(raised) if raised else []), caplog.text]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, (secret, text)


HONEST = {
    "status": "success",
    "salt": SALT,
    "challenge": CHALLENGE,
    "token": TOKEN,
    "id": "5",
    "msg": "ok",
    "group": {"groupName": "jumpy"},
}


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("target", sorted(CALLS))
async def test_no_secret_ever_in_a_url(target: str, fmt: str) -> None:
    def honest(url: Any, **kwargs: Any) -> CallbackResult:
        body, ctype = _render(HONEST, fmt)
        return CallbackResult(body=body, content_type=ctype, response_class=_Compat)

    with aioresponses() as mocked:
        mocked.get(ANY_CALL, callback=honest, repeat=True)
        mocked.post(ANY_CALL, callback=honest, repeat=True)
        async with Client(
            BASE, phone=PHONE, password=PASSWORD, wire_format=fmt, throttle=None  # type: ignore[arg-type]
        ) as client:
            await CALLS[target](client)
        sent = list(mocked.requests)
    assert sent
    for verb, url in sent:
        assert not {"token", "rand", "confirm"} & {k.lower() for k in url.query}, (verb, url)
        for secret in SECRETS:
            assert secret not in str(url)
