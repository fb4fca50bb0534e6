"""The emulator's hostile HTTP modes (redirects, 4xx pages, UTF-16/32, an entity bomb) and its
refusal of bad input (non-UTF-8 parameters, non-JSON, ill-typed or non-finite control
requests)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Any

import aiohttp
import pytest

from agupshup.emulator import EmulatorServer, FaultSpec
from agupshup.emulator.throttle import Window as EmuWindow

from .helpers import Api, xml_to_tree

INFO = {"method": "groups.getInfo", "v": "1.0", "group": "jumpy", "format": "xml"}


async def raw_get(
    session: aiohttp.ClientSession, server: EmulatorServer, params: dict[str, str], **kw: Any
) -> tuple[int, aiohttp.typedefs.LooseHeaders, bytes]:
    async with session.get(server.url, params=params, **kw) as response:
        return response.status, dict(response.headers), await response.read()


async def test_redirect_points_at_itself_by_default_so_a_follower_loops(
    api: Api, session: aiohttp.ClientSession
) -> None:
    api.emulator.faults.add(FaultSpec("redirect"))
    status, headers, _ = await raw_get(session, api.server, INFO, allow_redirects=False)
    assert status == 307
    assert headers["Location"].startswith("/GupshupAPI/rest?")
    with pytest.raises(aiohttp.TooManyRedirects):
        await raw_get(session, api.server, INFO, max_redirects=5)
    # every hop of the loop was a new call, counted (and paid) like any other
    assert api.emulator.calls["groups.getinfo"] == 1 + 5


async def test_redirect_to_another_host(api: Api, session: aiohttp.ClientSession) -> None:
    api.emulator.faults.add(FaultSpec("redirect", status=301, location="http://elsewhere.test/x"))
    status, headers, _ = await raw_get(session, api.server, INFO, allow_redirects=False)
    assert (status, headers["Location"]) == (301, "http://elsewhere.test/x")


@pytest.mark.parametrize(("status", "title"), [(404, b"404 Not Found"), (403, b"403 Forbidden")])
async def test_4xx_pages(
    api: Api, session: aiohttp.ClientSession, status: int, title: bytes
) -> None:
    api.emulator.faults.add(FaultSpec("http4xx", status=status))
    got, headers, body = await raw_get(session, api.server, INFO)
    assert got == status
    assert headers["Content-Type"].startswith("text/html")
    assert title in body


@pytest.mark.parametrize(
    ("encoding", "bom", "head"),
    [
        ("utf-16-le", True, b"\xff\xfe<\x00"),
        ("utf-16-be", True, b"\xfe\xff\x00<"),
        ("utf-16-le", False, b"<\x00?\x00"),
        ("utf-32-le", True, b"\xff\xfe\x00\x00<\x00\x00\x00"),
        ("utf-32-be", True, b"\x00\x00\xfe\xff\x00\x00\x00<"),
    ],
)
async def test_encoding_re_encodes_xml_answers(
    api: Api, encoding: str, bom: bool, head: bytes
) -> None:
    plain = await api.call("groups.getInfo", "xml", group="jumpy")
    api.emulator.faults.add(FaultSpec("encoding", encoding=encoding, bom=bom))
    wide = await api.call("groups.getInfo", "xml", group="jumpy")
    assert wide.body.startswith(head)
    label = encoding.upper()[:6]
    assert wide.content_type == f"text/xml; charset={label}"
    text = wide.body.decode(encoding).lstrip("\ufeff")
    assert text.startswith(f'<?xml version="1.0" encoding="{label}"?>')
    assert xml_to_tree(ET.fromstring(text)) == plain.tree


async def test_encoding_leaves_json_alone(api: Api) -> None:
    plain = await api.call("groups.getInfo", "json", group="jumpy")
    api.emulator.faults.add(FaultSpec("encoding", encoding="utf-16-le"))
    again = await api.call("groups.getInfo", "json", group="jumpy")
    assert again.body == plain.body


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-be", "utf-32-le"])
async def test_laughs_is_an_entity_bomb(api: Api, encoding: str) -> None:
    api.emulator.faults.add(FaultSpec("laughs", encoding=encoding))
    resp = await api.call("groups.getInfo", "xml", group="jumpy")
    assert resp.status == 200
    text = resp.body.decode(encoding).lstrip("\ufeff")
    assert "<!DOCTYPE response [" in text
    assert "&lol9;" in text
    assert len(resp.body) < 4096


async def test_invalid_utf8_in_a_form_body_is_a_400(
    api: Api, session: aiohttp.ClientSession
) -> None:
    body = b"method=groups.getInfo&v=1.0&group=jum\xffpy"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with session.post(api.server.url, data=body, headers=headers) as response:
        assert response.status == 400
        assert "UTF-8" in await response.text()
    assert (await api.call("groups.getInfo", "xml", group="jumpy")).status == 200


async def test_invalid_utf8_in_a_query_string_is_a_400(
    api: Api, session: aiohttp.ClientSession
) -> None:
    url = api.server.url + "?method=groups.getInfo&v=1.0&group=jum%FFpy"
    async with session.get(aiohttp.client.URL(url, encoded=True)) as response:
        assert response.status == 400


@pytest.mark.parametrize("path", ["/_emulator/faults", "/_emulator/throttle"])
async def test_control_endpoints_refuse_non_json(
    api: Api, session: aiohttp.ClientSession, path: str
) -> None:
    for data, ctype in [
        (b'{"kind": "http502"}', "text/plain"),
        (b"kind=http502", "application/x-www-form-urlencoded"),
        (b"{not json", "application/json"),
        (b'{"kind": "\xff"}', "application/json"),
    ]:
        url = api.server.base_url + path
        async with session.post(url, data=data, headers={"Content-Type": ctype}) as response:
            assert response.status == 400, (data, ctype)
    assert api.emulator.faults.specs == []


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "http502", "count": "3"},
        {"kind": "http502", "probability": "0.5"},
        {"kind": "http502", "probability": True},
        {"kind": "http502", "skip": 1.5},
        {"kind": "http502", "delay": "1"},
        {"kind": "http502", "methods": 5},
        {"kind": "http502", "methods": [5]},
        {"kind": "http502", "count": -1},
        {"kind": 7},
        {"kind": "encoding", "bom": "yes"},
        {"kind": "encoding", "encoding": "ebcdic"},
        {"kind": "redirect", "status": 200},
        {"kind": "http4xx", "status": 500},
        {"kind": "redirect", "location": ["x"]},
        {"kind": "http502", "surprise": 1},
        [1, 2],
        "http502",
    ],
)
async def test_fault_specs_are_type_checked(
    api: Api, session: aiohttp.ClientSession, spec: Any
) -> None:
    async with session.post(api.server.base_url + "/_emulator/faults", json=spec) as response:
        assert response.status == 400, await response.text()
    assert api.emulator.faults.specs == []
    assert (await api.call("groups.getInfo", "xml", group="jumpy")).status == 200


@pytest.mark.parametrize(
    "config",
    [
        {"mode": 5},
        {"mode": "fixed", "windows": {"period": "minute"}},
        {"windows": [{"period": "minute", "length": 60, "warn": 25, "limit": "30"}]},
        {"windows": [{"period": "minute", "length": "60", "warn": 25, "limit": 30}]},
        {"windows": [{"period": "minute", "length": 60, "warn": True, "limit": 30}]},
        {"windows": [{"period": "minute", "length": 60, "warn": 25}]},
        {"windows": [5]},
        [],
    ],
)
async def test_throttle_config_is_type_checked(
    api: Api, session: aiohttp.ClientSession, config: Any
) -> None:
    before = api.emulator.throttle.config
    url = api.server.base_url + "/_emulator/throttle"
    async with session.put(url, json=config) as response:
        assert response.status == 400, await response.text()
    assert api.emulator.throttle.config == before


_NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999"]


@pytest.mark.parametrize("number", _NON_FINITE)
@pytest.mark.parametrize("field", ["length", "limit", "warn"])
async def test_throttle_config_refuses_non_finite_numbers(
    api: Api, session: aiohttp.ClientSession, number: str, field: str
) -> None:
    # Python's json takes NaN and Infinity (and 1e999 as inf): a window of length NaN used
    # to be taken with 200, and every API call after it was HTTP 500.
    numbers = {"length": "60", "warn": "25", "limit": "30", field: number}
    fields = ", ".join(f'"{name}": {value}' for name, value in numbers.items())
    body = '{"mode": "sliding", "windows": [{"period": "minute", ' + fields + "}]}"
    before = api.emulator.throttle.config
    url = api.server.base_url + "/_emulator/throttle"
    headers = {"Content-Type": "application/json"}
    async with session.put(url, data=body, headers=headers) as response:
        assert response.status == 400, await response.text()
    assert api.emulator.throttle.config == before
    assert (await api.call("groups.getInfo", "xml", group="jumpy")).status == 200


@pytest.mark.parametrize("number", _NON_FINITE)
@pytest.mark.parametrize("field", ["delay", "probability"])
async def test_fault_specs_refuse_non_finite_numbers(
    api: Api, session: aiohttp.ClientSession, number: str, field: str
) -> None:
    body = '{"kind": "slow", "' + field + '": ' + number + "}"
    url = api.server.base_url + "/_emulator/faults"
    headers = {"Content-Type": "application/json"}
    async with session.post(url, data=body, headers=headers) as response:
        assert response.status == 400, await response.text()
    assert api.emulator.faults.specs == []


@pytest.mark.parametrize("length", [math.nan, math.inf])
def test_emulator_windows_refuse_non_finite_lengths(length: float) -> None:
    with pytest.raises(ValueError, match="window"):
        EmuWindow("minute", 30, length, 25)


@pytest.mark.parametrize("field", ["delay", "probability"])
@pytest.mark.parametrize("number", [math.nan, math.inf])
def test_fault_specs_refuse_non_finite_values(field: str, number: float) -> None:
    with pytest.raises(ValueError, match=field):
        FaultSpec(kind="slow", **{field: number})
