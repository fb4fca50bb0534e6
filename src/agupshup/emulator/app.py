"""The emulator as an aiohttp application.

Rules this module enforces:

* ``/GupshupAPI/rest`` answers GET (query string) and POST (form body; query parameters too,
  the query winning) with the API; every API result is HTTP 200 (faults aside).
* ``/_emulator/…`` is the emulator's own control surface: never counted, never throttled.
  ``GET /_emulator/sms[?phone=]``, ``DELETE /_emulator/sms``; ``GET /_emulator/stats``,
  ``DELETE /_emulator/stats`` (zero the counters); ``GET|POST|PUT|DELETE /_emulator/faults``
  (list, add, replace, clear); ``GET|PUT|DELETE /_emulator/throttle`` (show, reconfigure, reset).
* A form body or query string that is not valid UTF-8 is HTTP 400 (protocol.md's parameters are
  text), never a 500.
* The control endpoints take JSON only (``Content-Type: application/json``, a parsable body of
  the right shape and types, finite numbers only: no NaN, Infinity or 1e999); anything else is
  HTTP 400 saying what was wrong, and changes nothing.
* No access log: query strings carry passwords' hashes and tokens.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from agupshup.emulator.core import Emulator
from agupshup.emulator.faults import FaultSpec
from agupshup.emulator.sabotage import deliver
from agupshup.emulator.throttle import ThrottleConfig, Window

__all__ = ["API_PATH", "EMULATOR_KEY", "make_app"]

API_PATH = "/GupshupAPI/rest"
EMULATOR_KEY = web.AppKey("emulator", Emulator)


def make_app(emulator: Emulator) -> web.Application:
    app = web.Application()
    app[EMULATOR_KEY] = emulator
    app.router.add_route("GET", API_PATH, _api)
    app.router.add_route("POST", API_PATH, _api)
    app.router.add_get("/_emulator/sms", _sms)
    app.router.add_delete("/_emulator/sms", _sms_clear)
    app.router.add_get("/_emulator/stats", _stats)
    app.router.add_delete("/_emulator/stats", _stats_reset)
    for verb in ("GET", "POST", "PUT", "DELETE"):
        app.router.add_route(verb, "/_emulator/faults", _faults)
        app.router.add_route(verb, "/_emulator/throttle", _throttle)
    return app


async def _api(request: web.Request) -> web.StreamResponse:
    emulator = request.app[EMULATOR_KEY]
    try:
        pairs: list[tuple[str, str]] = list(request.query.items())
        if request.method == "POST":
            form = await request.post()
            pairs.extend((k, v) for k, v in form.items() if isinstance(v, str))
    except UnicodeDecodeError as exc:
        raise web.HTTPBadRequest(text="parameters must be UTF-8") from exc
    _refuse_replaced(request, pairs)
    call = emulator.receive(pairs, request.remote or "unknown")
    return await deliver(request, emulator, call)


def _refuse_replaced(request: web.Request, pairs: list[tuple[str, str]]) -> None:
    # yarl decodes a query string's invalid UTF-8 to U+FFFD instead of raising: only then is
    # the raw query decoded again, strictly.
    if not any("\ufffd" in key or "\ufffd" in value for key, value in pairs):
        return
    try:
        parse_qsl(request.rel_url.raw_query_string, errors="strict")
    except UnicodeDecodeError as exc:
        raise web.HTTPBadRequest(text="parameters must be UTF-8") from exc


async def _sms(request: web.Request) -> web.Response:
    outbox = request.app[EMULATOR_KEY].outbox
    phone = request.query.get("phone")
    records = outbox.for_phone(phone) if phone else list(outbox)
    return web.json_response([r.to_dict() for r in records])


async def _sms_clear(request: web.Request) -> web.Response:
    request.app[EMULATOR_KEY].outbox.clear()
    return web.json_response([])


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[EMULATOR_KEY].stats())


async def _stats_reset(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR_KEY]
    emulator.reset_counts()
    return web.json_response(emulator.stats())


async def _faults(request: web.Request) -> web.Response:
    plan = request.app[EMULATOR_KEY].faults
    if request.method == "DELETE":
        plan.clear()
    elif request.method in ("POST", "PUT"):
        specs = _fault_specs(await _json(request))
        if request.method == "PUT":
            plan.clear()
        plan.add(*specs)
    return web.json_response([spec.to_dict() for spec in plan.specs])


def _fault_specs(data: Any) -> list[FaultSpec]:
    items = data if isinstance(data, list) else [data]
    try:
        return [FaultSpec.from_dict(item) for item in items]
    except (TypeError, ValueError, AttributeError) as exc:
        raise web.HTTPBadRequest(text=f"bad fault spec: {exc}") from exc


async def _throttle(request: web.Request) -> web.Response:
    throttle = request.app[EMULATOR_KEY].throttle
    if request.method == "DELETE":
        throttle.reset()
    elif request.method in ("POST", "PUT"):
        throttle.configure(_throttle_config(await _json(request)))
    config = throttle.config
    return web.json_response(
        {
            "mode": config.mode,
            "windows": [
                {"period": w.name, "length": w.length, "warn": w.warn, "limit": w.limit}
                for w in config.windows
            ],
            "refusals": dict(throttle.refusals),
        }
    )


#: A throttle window's fields and their JSON types (a bool is not a number here).
_WINDOW_TYPES: dict[str, tuple[type, ...]] = {
    "period": (str,),
    "length": (int, float),
    "warn": (int,),
    "limit": (int,),
}


def _throttle_config(data: Any) -> ThrottleConfig:
    try:
        if not isinstance(data, dict) or not isinstance(data.get("mode", ""), str):
            raise TypeError("expected an object with a string 'mode'")
        windows = data.get("windows")
        if windows is None:
            return ThrottleConfig(mode=data.get("mode", "sliding"))
        if not isinstance(windows, list):
            raise TypeError("'windows' is a list")
        return ThrottleConfig(
            mode=data.get("mode", "sliding"),
            windows=tuple(_window(w) for w in windows),
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise web.HTTPBadRequest(text=f"bad throttle config: {exc}") from exc


def _window(data: Any) -> Window:
    if not isinstance(data, dict) or set(data) != set(_WINDOW_TYPES):
        raise TypeError(f"a window has exactly the fields {sorted(_WINDOW_TYPES)}")
    for name, types in _WINDOW_TYPES.items():
        if not isinstance(data[name], types) or isinstance(data[name], bool):
            raise TypeError(f"window field {name!r} has the wrong type: {data[name]!r}")
    # The control API keeps the wire's word for a window's name (a tag's ``period``).
    return Window(data["period"], data["limit"], data["length"], data["warn"])


async def _json(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise web.HTTPBadRequest(text="expected Content-Type: application/json")
    try:
        return await request.json(loads=_strict_loads)
    except (ValueError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(text=f"expected a JSON body: {exc}") from exc


def _strict_loads(text: str) -> Any:
    """JSON as RFC 8259 has it: Python's ``json`` takes NaN and Infinity (and reads 1e999 as
    infinity); one such number in a throttle window made every later API call a 500."""
    return json.loads(text, parse_constant=_no_constant, parse_float=_finite)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value
