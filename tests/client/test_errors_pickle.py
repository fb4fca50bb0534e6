"""Every exception of the tree survives pickling (process pools, multiprocessing queues)."""

from __future__ import annotations

import inspect
import pickle
from typing import Any

import pytest

from agupshup import errors as E

SAMPLES: dict[str, Any] = {
    "method": "groups.postMessage", "param": "text", "reason": "too long", "window": "minute",
    "free_at": 12.5, "waited": 1.5, "deadline": 9.0, "group": "jumpy", "text": "hi",
    "retry_at": 30.0, "cause": "3 login failures", "message": "reset", "url": "http://x/GupShup",
    "maybe_sent": False, "status": 503, "excerpt": "<html>", "location_host": "evil.example",
    "code": 127, "msg": "poster limit", "errors": (), "throttle": (),
    "reasons": {"jumpy": "private"},
}


def _tree() -> list[type[E.GupshupError]]:
    found = [getattr(E, name) for name in E.__all__]
    return [c for c in found if isinstance(c, type) and issubclass(c, E.GupshupError)]


def _build(cls: type[E.GupshupError]) -> E.GupshupError:
    try:
        params = inspect.signature(cls).parameters.values()
    except ValueError:  # no __init__ of its own: Exception's
        return cls("it failed")
    args = [SAMPLES[p.name] for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    kw = {p.name: SAMPLES[p.name] for p in params if p.kind == p.KEYWORD_ONLY}
    return cls(*args, **kw)


@pytest.mark.parametrize("cls", _tree(), ids=lambda c: c.__name__)
def test_every_error_pickles_whole(cls: type[E.GupshupError]) -> None:
    exc = _build(cls)
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is cls
    assert str(again) == str(exc)
    assert vars(again) == vars(exc)
