"""Fuzzing ``wire.decode`` (CI size): only result models or typed agupshup errors come out.

Per decoder (JSON content type, XML content type, none), a few hundred bodies from the rich
Hypothesis strategies and a few hundred from their seed-driven twins (``wire_fuzz.py``). The
long run, ≥ 10 000 bodies per decoder, is ``python benchmarks/fuzz_decoders.py``.
"""

from __future__ import annotations

import pytest
import wire_cases as C
import wire_fuzz as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

RICH_EXAMPLES = 200
FAST_EXAMPLES = 300


def _settings(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )


KEYS = st.sampled_from(sorted(C.METHOD_NAMES))
DECODERS = {"json": (C.JSON_CT, "json"), "xml": (C.XML_CT, "xml"), "sniffed": (None, "any")}


@pytest.mark.parametrize("decoder", sorted(DECODERS))
def test_fuzz_rich(decoder: str) -> None:
    content_type, kind = DECODERS[decoder]
    tally = F.Tally()

    @_settings(RICH_EXAMPLES)
    @given(key=KEYS, body=F.bodies(kind))
    def run(key: str, body: bytes) -> None:
        tally.add(F.check(key, body, content_type))

    run()
    assert tally.bodies >= RICH_EXAMPLES
    assert tally.outcomes["DecodeError"] > 0  # the generators reach both sides
    assert tally.bodies > tally.outcomes["DecodeError"]


@pytest.mark.parametrize("decoder", sorted(DECODERS))
def test_fuzz_fast(decoder: str) -> None:
    content_type, kind = DECODERS[decoder]
    tally = F.Tally()

    @_settings(FAST_EXAMPLES)
    @given(key=KEYS, generated=F.fast_bodies(kind))
    def run(key: str, generated: tuple[str, bytes]) -> None:
        tally.add(F.check(key, generated[1], content_type))

    run()
    assert tally.bodies >= FAST_EXAMPLES
    assert tally.outcomes["DecodeError"] > 0
    assert tally.bodies > tally.outcomes["DecodeError"]


def test_every_seed_decodes() -> None:
    # The seeds the mutators start from are themselves valid responses.
    for key, fmt, body in C.all_bodies():
        ct = C.JSON_CT if fmt == "json" else C.XML_CT
        assert F.check(key, body, ct) != "DecodeError", (key, fmt, body)


def test_oracle_lets_nothing_untyped_through(monkeypatch: pytest.MonkeyPatch) -> None:
    # The oracle itself: an untyped exception from the decoder is not swallowed.
    def broken(*args: object) -> object:
        raise KeyError("response")

    monkeypatch.setattr(F.wire, "decode", broken)
    with pytest.raises(KeyError):
        F.check("get_info", b"{}", C.JSON_CT)
