"""Delivering faults over HTTP (what each :data:`~agupshup.emulator.faults.FaultKind` does).

Rules this module enforces:

* ``reset``: the socket is closed with SO_LINGER 0, so the client sees a connection reset and
  no bytes of an answer.
* ``http502``: HTTP 502 with an HTML page. ``content_type``: the body, as ``text/html``.
* ``truncated``: ``length`` declares the whole body's Content-Length, sends half and closes the
  connection; ``cut`` sends a complete HTTP answer whose body is the first half.
* ``slow``: ``before`` waits ``delay`` seconds before running the call; ``after`` runs it, sends
  the headers and half the body, waits ``delay`` seconds, then sends the rest.
* ``oversized``: the answer padded with trailing spaces to ``size`` bytes (still a valid body).
* ``garbage``: a NUL byte and seeded random bytes, as HTTP 200 with the call's content type.
* ``error129``: API error 129 in the call's format.
* ``redirect``: HTTP ``status`` with ``Location`` (by default the API path itself, with the
  query string the call came with: a loop for a client that follows redirects).
* ``http4xx``: HTTP ``status`` with a small HTML page, as a web server or proxy would send.
* ``encoding``: an XML answer re-encoded (JSON answers as they are); ``laughs``: an entity bomb
  as HTTP 200 ``text/xml``.
* A client that goes away mid-fault is not an error of the emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

from aiohttp import web

from agupshup.emulator.core import Answer, Call, Emulator
from agupshup.emulator.envelope import billion_laughs, reencode_xml
from agupshup.emulator.faults import FaultSpec

__all__ = ["deliver", "respond"]

_BAD_GATEWAY = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
    "</center><hr><center>nginx</center></body></html>\n"
)
_GARBAGE_BYTES = 512
_REASONS = {403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 410: "Gone"}


def respond(answer: Answer) -> web.Response:
    return web.Response(body=answer.body, headers={"Content-Type": answer.content_type})


async def deliver(request: web.Request, emulator: Emulator, call: Call) -> web.StreamResponse:
    """The HTTP answer to ``call``, damaged as its fault says."""
    fault = call.fault
    if fault is None:
        return respond(emulator.execute(call))
    if fault.kind == "slow":
        return await _slow(request, emulator, call, fault)
    # An ``encoding`` fault re-encodes the real answer: the call always runs.
    runs = fault.when == "after" or fault.kind == "encoding"
    answer = emulator.execute(call) if runs else emulator.internal_error(call)
    if fault.kind == "reset":
        return _reset(request)
    if fault.kind == "http502":
        return web.Response(status=502, text=_BAD_GATEWAY, content_type="text/html")
    if fault.kind == "truncated":
        return await _truncated(request, answer, fault)
    if fault.kind == "oversized":
        padding = b" " * max(0, fault.size - len(answer.body))
        return web.Response(
            body=answer.body + padding, headers={"Content-Type": answer.content_type}
        )
    if fault.kind == "garbage":
        noise = b"\x00" + emulator.faults.noise(_GARBAGE_BYTES - 1)
        return web.Response(body=noise, headers={"Content-Type": answer.content_type})
    if fault.kind == "content_type":
        return web.Response(body=answer.body, headers={"Content-Type": "text/html; charset=UTF-8"})
    if fault.kind in _HTTP:
        return _HTTP[fault.kind](request, answer, fault)
    return respond(emulator.internal_error(call))  # error129


def _redirect(request: web.Request, answer: Answer, fault: FaultSpec) -> web.Response:
    location = fault.location or str(request.rel_url)
    return web.Response(status=fault.status, headers={"Location": location})


def _http4xx(request: web.Request, answer: Answer, fault: FaultSpec) -> web.Response:
    title = f"{fault.status} {_REASONS.get(fault.status, 'Client Error')}"
    page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>\n"
    return web.Response(status=fault.status, text=page, content_type="text/html")


def _encoding(request: web.Request, answer: Answer, fault: FaultSpec) -> web.Response:
    if answer.fmt != "xml":
        return respond(answer)
    body, ctype = reencode_xml(answer.body, fault.encoding, fault.bom)
    return web.Response(body=body, headers={"Content-Type": ctype})


def _laughs(request: web.Request, answer: Answer, fault: FaultSpec) -> web.Response:
    body, ctype = billion_laughs(fault.encoding, fault.bom)
    return web.Response(body=body, headers={"Content-Type": ctype})


_HTTP = {"redirect": _redirect, "http4xx": _http4xx, "encoding": _encoding, "laughs": _laughs}


def _reset(request: web.Request) -> web.Response:
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response()  # never written: aiohttp finds the transport gone


async def _truncated(request: web.Request, answer: Answer, fault: FaultSpec) -> web.StreamResponse:
    half = answer.body[: len(answer.body) // 2]
    if fault.truncate == "cut":
        return web.Response(body=half, headers={"Content-Type": answer.content_type})
    response = _stream(answer)
    with contextlib.suppress(ConnectionError):
        await response.prepare(request)
        await response.write(half)
        if request.transport is not None:
            request.transport.close()
    return response


async def _slow(
    request: web.Request, emulator: Emulator, call: Call, fault: FaultSpec
) -> web.StreamResponse:
    if fault.when == "before":
        await asyncio.sleep(fault.delay)
        return respond(emulator.execute(call))
    answer = emulator.execute(call)
    half = len(answer.body) // 2
    response = _stream(answer)
    with contextlib.suppress(ConnectionError):
        await response.prepare(request)
        await response.write(answer.body[:half])
        await asyncio.sleep(fault.delay)
        await response.write(answer.body[half:])
    return response


def _stream(answer: Answer) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": answer.content_type})
    response.content_length = len(answer.body)
    return response
