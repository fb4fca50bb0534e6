"""Fuzz both decoders: ``wire.decode`` with the JSON content type, the XML one, and none.

Per decoder, Hypothesis feeds ``--examples`` bodies (default 10 000) from the seed-driven
generators and ``--rich`` more (default 1 000) from the rich, shrinkable strategies, all from
``tests/wire/wire_fuzz.py``: mutated valid envelopes, reshaped ones, truncations, random JSON
trees, random XML element trees, random bytes and pathological nesting. Only a result model or
a typed ``agupshup.errors`` exception (``DecodeError``, an ``APIError``) may come out; anything
else fails the run (exit status 1) with the falsifying body.

    python benchmarks/fuzz_decoders.py [--examples N] [--rich N] [--seed N] [--quick]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "wire"))

import wire_cases as C
import wire_fuzz as F

DECODERS = {"json": (C.JSON_CT, "json"), "xml": (C.XML_CT, "xml"), "none": (None, "any")}
KEYS = st.sampled_from(sorted(C.METHOD_NAMES))


def _run(
    n: int, strategy: st.SearchStrategy[Any], body_of: Callable[[Any], bytes],
    content_type: str | None, tally: F.Tally, run_seed: int,
) -> None:
    @seed(run_seed)
    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.shrink],  # shrinking only ever runs on a failure
        suppress_health_check=list(HealthCheck),
    )
    @given(key=KEYS, drawn=strategy)
    def run(key: str, drawn: Any) -> None:
        tally.add(F.check(key, body_of(drawn), content_type))

    run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000,
                        help="seed-driven bodies per decoder")
    parser.add_argument("--rich", type=int, default=1_000,
                        help="bodies per decoder from the rich strategies")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 500 + 100")
    args = parser.parse_args(argv)
    if args.quick:
        args.examples, args.rich = 500, 100
    run_seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"fuzz_decoders: seed {run_seed}; {args.examples} seed-driven + {args.rich} rich "
          "bodies per decoder")
    started = time.perf_counter()
    failed = False
    for name, (content_type, kind) in DECODERS.items():
        tally = F.Tally()
        t0 = time.perf_counter()
        try:
            _run(args.examples, F.fast_bodies(kind), lambda d: d[1], content_type, tally,
                 run_seed)
            _run(args.rich, F.bodies(kind), lambda d: d, content_type, tally, run_seed)
        except Exception as exc:
            failed = True
            print(f"  decoder {name}: FAILED after {tally.bodies} bodies")
            found = exc.exceptions if isinstance(exc, ExceptionGroup) else (exc,)
            for one in found:
                print(f"    {type(one).__name__}: {str(one)[:200]}")
                for note in getattr(one, "__notes__", ()):  # Hypothesis's falsifying example
                    print(f"      {note[:300]}")
            continue
        elapsed = time.perf_counter() - t0
        counts = ", ".join(f"{k} {v}" for k, v in tally.outcomes.most_common())
        print(f"  decoder {name:<4} (content type {content_type!r}): {tally.bodies} bodies "
              f"in {elapsed:.1f}s")
        print(f"    outcomes: {counts}")
    total = time.perf_counter() - started
    print(f"fuzz_decoders: {'FAILED' if failed else 'ok'}; {total:.1f}s in all")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
