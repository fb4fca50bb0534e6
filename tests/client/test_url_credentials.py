"""S3: a base URL with credentials (``http://user:pass@host``) never shows its password.

Not in an exception's text, ``.url``, ``args`` or pickle, not in ``repr(client)`` or the
transport's, not in a log line — on every error path that names the URL (connection refused,
5xx, 4xx pages, redirects, garbage bodies, a post resent after a lost answer).
"""

from __future__ import annotations

import logging
import pickle
import socket
from typing import Any

import pytest

from agupshup import Client, GupshupError
from agupshup.emulator import EmulatorServer, FaultSpec
from agupshup.emulator.seed import DEMO_PASSWORD, DEMO_PHONE
from agupshup.errors import redact_url
from agupshup.retry import RetryPolicy

SECRET = "hunter2-url-pw"
ONCE = RetryPolicy(attempts=1, base=0.001, cap=0.001, total=1.0, resolve_attempts=2)


def with_credentials(url: str) -> str:
    return url.replace("http://", f"http://me:{SECRET}@")


def shown(exc: BaseException) -> str:
    """Everything an exception shows or carries, its causes included."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        parts += [str(seen), repr(seen), repr(vars(seen)), repr(seen.args)]
        parts.append(pickle.dumps(seen).decode("latin-1"))
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_clean(text: str) -> None:
    assert SECRET not in text
    assert "me:" not in text


async def test_a_refused_connection_names_the_host_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "agupshup")
    url = with_credentials(f"http://127.0.0.1:{closed_port()}")
    async with Client(url, throttle=None, retry=ONCE) as client:
        assert_clean(repr(client))
        assert_clean(repr(client._transport))
        assert_clean(client.base_url)
        with pytest.raises(GupshupError) as caught:
            await client.get_info("jumpy")
    assert_clean(shown(caught.value))
    assert "127.0.0.1" in str(caught.value.url)  # type: ignore[attr-defined]
    assert_clean(caplog.text)


@pytest.mark.parametrize(
    "fault",
    [FaultSpec("http502"), FaultSpec("http4xx", status=403), FaultSpec("redirect"),
     FaultSpec("garbage"), FaultSpec("truncated")],
    ids=lambda f: f.kind,
)
async def test_every_error_naming_the_url_hides_its_password(
    gupshup_server: EmulatorServer, fault: FaultSpec, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "agupshup")
    gupshup_server.emulator.faults.add(fault)
    async with Client(with_credentials(gupshup_server.base_url), throttle=None,
                      retry=ONCE) as client:
        with pytest.raises(GupshupError) as caught:
            await client.get_info("jumpy")
    assert_clean(shown(caught.value))
    assert_clean(caplog.text)


async def test_a_resent_post_logs_no_password(
    gupshup_server: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "agupshup")
    gupshup_server.emulator.faults.add(
        FaultSpec("http502", methods=("groups.postMessage",), when="after", count=1))
    async with Client(with_credentials(gupshup_server.base_url), phone=DEMO_PHONE,
                      password=DEMO_PASSWORD, throttle=None) as client:
        await client.post_message("demo-bot", "a post whose first answer is lost")
    assert "resending" in caplog.text
    assert_clean(caplog.text)


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("http://me:pw@host:8080/x?y=1", "http://host:8080/x?y=1"),
        ("HTTPS://me@host", "HTTPS://host"),
        ("http://me:p@ss@host/a@b", "http://host/a@b"),  # an unencoded @ in the password
        ("me:pw@host:8080", "host:8080"),  # no scheme: still stripped
        ("https://host", "https://host"),
        ("HTTP 502 from http://me:pw@host/x: 'page'", "HTTP 502 from http://host/x: 'page'"),
        ("to http://a:b@one and https://c:d@two/", "to http://one and https://two/"),
    ],
)
def test_the_one_redactor(url: str, clean: str) -> None:
    assert redact_url(url) == clean


def test_errors_redact_whatever_url_they_are_given() -> None:
    from agupshup import errors as E

    made: list[Any] = [
        E.ConnectError("reset", url="http://me:pw@h/x"),
        E.HTTPStatusError(502, url="http://me:pw@h/x", excerpt="x"),
        E.DecodeError("bad", url="http://me:pw@h/x"),
        E.RedirectRefused(302, "h", url="http://me:pw@h/x"),
        E.HTTPClientError(404, url="http://me:pw@h/x", excerpt="x"),
    ]
    for exc in made:
        text = shown(exc)
        assert "pw" not in text, type(exc).__name__
        assert "me:" not in text, type(exc).__name__
        assert pickle.loads(pickle.dumps(exc)).url == "http://h/x"
