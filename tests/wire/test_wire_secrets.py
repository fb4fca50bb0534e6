"""Issue 13.6 in the codec: status-less successes accepted, secrets out of every quoted text."""

from __future__ import annotations

from urllib.parse import quote_plus

import pytest

from agupshup import errors as E
from agupshup import wire
from agupshup.models import Challenge
from agupshup.wire.redact import SECRET_PARAMS, excerpt, redact

JSON_CT = "application/json"
XML_CT = "text/xml"
TOKEN = "zt00e-639104101"


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (f'{{"response": {{"token": "{TOKEN}"}}}}'.encode(), JSON_CT),
        (f"<response><token>{TOKEN}</token></response>".encode(), XML_CT),
    ],
)
def test_a_success_without_status_carrying_a_token_is_accepted(body: bytes, ctype: str) -> None:
    assert wire.decode(wire.subscribe("9812345678", "jumpy"), body, ctype).result == TOKEN
    challenge = Challenge(salt="s", challenge="c")
    assert wire.decode(wire.login("9812345678", "pw", challenge), body, ctype).result == TOKEN


@pytest.mark.parametrize(
    "body", [b'{"response": {}}', (
        b'{"response": {"throttle": {"period": "minute", "count": "26", "warn": "25", '
        b'"limit": "30"}}}'
    ),
             b'{"response": {"surprise": "x"}}', b"<response/>"]
)
def test_a_body_with_nothing_a_success_carries_is_still_refused(body: bytes) -> None:
    with pytest.raises(E.DecodeError, match="neither a status"):
        wire.decode(wire.get_stream("jumpy"), body)


def test_every_request_carrying_a_secret_is_posted() -> None:
    challenge = Challenge(salt="s", challenge="c")
    requests = [
        wire.login("9812345678", "pw", challenge),
        wire.confirm_subscription("9812345678", "jumpy", TOKEN, "AB12"),
    ]
    for request in requests:
        assert SECRET_PARAMS & {k for k, _ in request.params}
        assert request.spec.http_method == "POST"
    for spec in wire.METHODS.values():
        if spec.auth != "none":
            assert spec.http_method == "POST", spec


def test_redact_catches_every_spelling() -> None:
    rand = "ab+c/d=="
    text = f"x {rand} {quote_plus(rand)} {rand.upper()} {TOKEN.upper()} y"
    assert redact(text, (rand, TOKEN)) == "x <redacted> <redacted> <redacted> <redacted> y"


def test_an_excerpt_is_redacted_before_it_is_cut() -> None:
    body = ("." * 110 + TOKEN).encode()  # the cut at 120 falls inside the token
    out = excerpt(body, (TOKEN,), 120)
    assert TOKEN[:10] not in out
    assert out.startswith("." * 110)


def test_the_error_message_keeps_no_secret_but_keeps_its_code() -> None:
    body = f'{{"response": {{"error": {{"code": "6", "msg": "token {TOKEN} is dead"}}}}}}'
    request = wire.post_message("jumpy", "hi")
    with pytest.raises(E.InvalidToken) as caught:
        wire.decode(request, body.encode(), JSON_CT, token=TOKEN)
    assert caught.value.code == 6
    assert caught.value.msg == "token <redacted> is dead"
    assert TOKEN not in repr(caught.value.errors)


def test_no_part_of_a_repeated_secret_reaches_the_excerpt() -> None:
    token = "0123456789abcdefghijklmnopqrstuv"  # 32 characters, each shrinks to REDACTED
    body = ("x" * 7 + token) * 10
    for size in range(1, 400):
        cut = excerpt(body.encode(), (token,), size)
        leaked = [token[i : i + 8] for i in range(len(token) - 7) if token[i : i + 8] in cut]
        assert not leaked, (size, cut)
