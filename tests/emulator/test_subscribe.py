"""Two-phase subscription with the SMS outbox, and the invite SMSes."""

from __future__ import annotations

import pytest

from agupshup.emulator.seed import ALICE_PASSWORD, ALICE_PHONE, DEMO_PASSWORD, DEMO_PHONE

from .helpers import Api, FakeTime


@pytest.mark.parametrize("fmt", ["xml", "json"])
async def test_phase_one_sms_phase_two(api: Api, fmt: str) -> None:
    phase1 = await api.call("groups.subscribeGroupToken", fmt, phone=ALICE_PHONE, group="jumpy")
    token = phase1.tree["token"]
    sms = await api.admin("GET", "/_emulator/sms", params={"phone": ALICE_PHONE})
    assert len(sms) == 1
    assert sms[0]["kind"] == "subscribe"
    assert sms[0]["phone"] == ALICE_PHONE
    assert sms[0]["group"] == "jumpy"
    assert sms[0]["code"] in sms[0]["text"]
    phase2 = await api.call(
        "groups.subscribeGroupToken",
        fmt,
        phone=ALICE_PHONE,
        group="jumpy",
        token=token,
        confirm=sms[0]["code"],
    )
    assert phase2.tree == {
        "status": "success",
        "msg": f"The phone {ALICE_PHONE} has been subscribed to group jumpy.",
    }
    alice = await api.login(ALICE_PHONE, ALICE_PASSWORD)
    joined = await api.call("users.getJoinedGroups", fmt, token=alice)
    assert [g["groupName"] for g in joined.tree["groups"]] == ["jumpy"]
    # the ticket is used up, and the phone is now a member
    assert (
        await api.call(
            "groups.subscribeGroupToken",
            fmt,
            phone=ALICE_PHONE,
            group="jumpy",
            token=token,
            confirm=sms[0]["code"],
        )
    ).code == 6
    assert (
        await api.call("groups.subscribeGroupToken", fmt, phone=ALICE_PHONE, group="jumpy")
    ).code == 8


async def test_the_token_belongs_to_its_phone_and_group(api: Api) -> None:
    phase1 = await api.call("groups.subscribeGroupToken", phone="9812345678", group="jumpy")
    token = phase1.tree["token"]
    code = api.emulator.outbox.last_code("9812345678")
    for phone, group in [("9812345679", "jumpy"), ("9812345678", "cricket")]:
        resp = await api.call(
            "groups.subscribeGroupToken", phone=phone, group=group, token=token, confirm=code
        )
        assert resp.code == 6
    resp = await api.call(
        "groups.subscribeGroupToken", phone="919812345678", group="JUMPY", token=token, confirm=code
    )
    assert resp.tree["status"] == "success"


async def test_six_wrong_codes_kill_the_ticket(api: Api) -> None:
    token = (await api.call("groups.subscribeGroupToken", phone="9812345678", group="jumpy")).tree[
        "token"
    ]
    code = api.emulator.outbox.last_code("9812345678")
    wrong = {"phone": "9812345678", "group": "jumpy", "token": token, "confirm": "----"}
    codes = [(await api.call("groups.subscribeGroupToken", **wrong)).code for _ in range(6)]
    assert codes == [7, 7, 7, 7, 7, 9]
    right = dict(wrong, confirm=code)
    assert (await api.call("groups.subscribeGroupToken", **right)).code == 9


async def test_confirming_frees_an_unconfirmed_slot(api: Api) -> None:
    tokens = []
    for _ in range(5):
        resp = await api.call("groups.subscribeGroupToken", phone="9812345678", group="jumpy")
        tokens.append(resp.tree["token"])
    assert (
        await api.call("groups.subscribeGroupToken", phone="9812345678", group="cricket")
    ).code == 5
    code = api.emulator.outbox.last_code("9812345678")
    done = await api.call(
        "groups.subscribeGroupToken",
        phone="9812345678",
        group="jumpy",
        token=tokens[-1],
        confirm=code,
    )
    assert done.tree["status"] == "success"
    again = await api.call("groups.subscribeGroupToken", phone="9812345678", group="cricket")
    assert again.tree["status"] == "success"


@pytest.mark.gupshup(subscription_ttl=600.0)
async def test_unconfirmed_tickets_expire(api: Api, clock: FakeTime) -> None:
    token = (await api.call("groups.subscribeGroupToken", phone="9812345678", group="jumpy")).tree[
        "token"
    ]
    code = api.emulator.outbox.last_code("9812345678")
    clock.advance(600)
    resp = await api.call(
        "groups.subscribeGroupToken", phone="9812345678", group="jumpy", token=token, confirm=code
    )
    assert resp.code == 6


async def test_invites_are_texted(api: Api) -> None:
    token = await api.login(DEMO_PHONE, DEMO_PASSWORD)
    await api.call("groups.inviteFriends", token=token, phoneNumbers="9812345678,9812345679")
    sms = await api.admin("GET", "/_emulator/sms")
    assert [(s["phone"], s["kind"], s["code"]) for s in sms] == [
        ("919812345678", "invite", None),
        ("919812345679", "invite", None),
    ]
    assert "demo" in sms[0]["text"]
    assert api.emulator.stored["invite"] == 2
    assert len(api.emulator.world.group("jumpy").invites) == 2
    assert await api.admin("DELETE", "/_emulator/sms") == []
    assert api.emulator.outbox == []


async def test_posting_throttle_slides(api: Api, clock: FakeTime) -> None:
    token = await api.login(DEMO_PHONE, DEMO_PASSWORD)
    for n in range(5):
        resp = await api.call("groups.postMessage", token=token, groupName="jumpy", text=f"p{n}")
        assert resp.tree["status"] == "success"
        clock.advance(10)
    assert (
        await api.call("groups.postMessage", token=token, groupName="jumpy", text="late")
    ).code == 127
    clock.advance(10)  # the first post is now a minute old
    resp = await api.call("groups.postMessage", token=token, groupName="jumpy", text="late")
    assert resp.tree["status"] == "success"
    assert api.emulator.posts == 6
    assert api.emulator.stats()["posts"] == 6


async def test_duplicates_are_per_user_and_group(api: Api) -> None:
    token = await api.login(DEMO_PHONE, DEMO_PASSWORD)
    first = await api.call("groups.postMessage", token=token, groupName="demo-bot", text="same")
    assert first.tree["status"] == "success"
    assert (
        await api.call("groups.postMessage", token=token, groupName="demo-bot", text="same")
    ).code == 128
    other = await api.call("groups.postMessage", token=token, groupName="jumpy", text="same")
    assert other.tree["status"] == "success"
    assert int(other.tree["id"]) > int(first.tree["id"])
