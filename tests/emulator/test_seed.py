"""The fixed seed other tests depend on."""

from __future__ import annotations

from agupshup.emulator import seed
from agupshup.emulator.seed import build_world, load_seed


def test_seed_constants_match_the_seed_file() -> None:
    world, salt = build_world(load_seed())
    demo = world.users[seed.DEMO_PHONE]
    assert (demo.password, demo.name, demo.activated, demo.disabled) == (
        seed.DEMO_PASSWORD,
        "demo",
        True,
        False,
    )
    alice = world.users[seed.ALICE_PHONE]
    assert (alice.password, alice.name) == (seed.ALICE_PASSWORD, "alice")
    assert world.users[seed.NEWBIE_PHONE].activated is False
    assert world.users[seed.BANNED_PHONE].disabled is True
    assert salt == seed.DEFAULT_SALT
    assert seed.DEMO_PHONE == "9999900000"
    assert seed.DEMO_PASSWORD == "gupshup-demo"
    assert seed.ALICE_PHONE == "9888800001"
    assert seed.ALICE_PASSWORD == "alice-pass"


def test_groups_and_flags() -> None:
    world, _ = build_world(load_seed())
    flags = {name: (g.owner, g.private, g.disabled, g.adult) for name, g in world.groups.items()}
    assert flags == {
        "jumpy": (seed.DEMO_PHONE, False, False, False),
        "demo-bot": (seed.DEMO_PHONE, False, False, False),
        "cricket": (seed.ALICE_PHONE, False, False, False),
        "secret": (seed.ALICE_PHONE, True, False, False),
        "closed": (seed.ALICE_PHONE, False, True, False),
        "spicy": (seed.ALICE_PHONE, False, False, True),
    }
    assert [g.name for g in world.joined(seed.DEMO_PHONE)] == ["cricket"]
    assert seed.BLOCKED_PHONE in world.groups["cricket"].blocked
    assert all(m.adult for m in world.groups["spicy"].messages)
    replies = world.groups["jumpy"].replies
    assert len(replies) == 4
    assert sum(r.hidden for r in replies) == 1


def test_ids_grow_with_time() -> None:
    world, _ = build_world(load_seed())
    stamps = [(m.timestamp, m.id) for m in world.timeline]
    assert stamps == sorted(stamps)
    assert [m.id for m in world.timeline] == list(range(100001, 100001 + 180))
    assert world.groups["jumpy"].messages[0].text == "jumpy message 1"


def test_insert_message_adds_to_the_head_without_a_call() -> None:
    from agupshup.emulator import Emulator

    emulator = Emulator()
    new_id = emulator.insert_message("jumpy", "inserted by a test")
    answer = emulator.request(
        {"method": "groups.getMessage", "v": "1.0", "format": "json", "group": "jumpy"}, "1.2.3.4"
    )
    assert str(new_id) in answer.body.decode()
    assert "inserted by a test" in answer.body.decode()
    assert emulator.calls["groups.getmessage"] == 1  # the insert itself was not a call
