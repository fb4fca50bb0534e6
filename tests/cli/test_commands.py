"""Every ``agupshup`` command against the emulator, in-process through click's CliRunner."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from agupshup import Client
from agupshup.emulator import EmulatorConfig, EmulatorThread
from agupshup.emulator.seed import ALICE_PASSWORD, ALICE_PHONE, DEMO_PASSWORD, DEMO_PHONE

from .conftest import Cli, LazyInput

SUBSCRIBER = "9876543210"


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def assert_clean_error(result: object, code: int, *needles: str) -> None:
    """One ``error:`` line on stderr, no traceback, the expected exit code."""
    assert result.exit_code == code, result.output  # type: ignore[attr-defined]
    err = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    errors = [x for x in lines(err) if "error" in x.lower()]
    assert len(errors) == 1
    assert errors[0].startswith("error: ")
    assert lines(err)[-1] == errors[0]
    for needle in needles:
        assert needle in errors[0]


# -- help and usage ---------------------------------------------------------------------------


def test_help_lists_every_command(run: Cli) -> None:
    result = run("--help")
    assert result.exit_code == 0
    for name in ("demo", "emulator", "widget", "info", "stream", "tail", "replies", "groups",
                 "quota", "post", "reply", "invite", "subscribe", "export"):
        assert f"  {name} " in result.output


def test_usage_errors_exit_2(run: Cli) -> None:
    assert run("info").exit_code == 2
    assert run("nosuchcommand").exit_code == 2
    assert run("--wire-format", "yaml", "info", "jumpy").exit_code == 2
    assert run("stream", "jumpy", "--limit", "0").exit_code == 2


# -- reading ----------------------------------------------------------------------------------


def test_info(run: Cli) -> None:
    result = run("info", "jumpy")
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == "jumpy (public)"
    assert "posts:   120" in result.output
    as_json = json.loads(run("info", "cricket", "--json").stdout)
    assert as_json["groupName"] == "cricket"
    assert as_json["numPosts"] == 40


def test_info_in_xml_on_the_wire(run: Cli) -> None:
    result = run("--wire-format", "xml", "-v", "--json", "info", "jumpy")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["owner"] == "demo"
    assert "(xml on the wire)" in result.stderr


def test_the_old_format_option_is_hidden_and_warns(run: Cli) -> None:
    result = run("--format", "xml", "-v", "info", "jumpy")
    assert result.exit_code == 0
    assert "warning: --format is deprecated; use --wire-format" in result.stderr
    assert "(xml on the wire)" in result.stderr
    assert "--format" not in run("info", "--help").output.replace("--wire-format", "")


def test_api_errors_are_one_line_and_exit_1(run: Cli) -> None:
    assert_clean_error(run("info", "secret"), 1, "error 112", "private group")
    assert_clean_error(run("info", "no-such-group"), 1, "error 2")


def test_unreachable_server_is_one_line(run: Cli) -> None:
    result = run("info", "jumpy", env={"GUPSHUP_BASE_URL": "http://127.0.0.1:9"})
    assert_clean_error(result, 1)


def test_stream_pages_newest_first(run: Cli) -> None:
    result = run("stream", "jumpy", "--limit", "20")
    assert result.exit_code == 0
    out = lines(result.stdout)
    assert len(out) == 20
    assert out[0].endswith("jumpy message 120")
    assert out[-1].endswith("jumpy message 101")
    records = [json.loads(x) for x in lines(run("--json", "stream", "demo-bot").stdout)]
    assert [r["text"] for r in records][:2] == ["demo-bot says hello #10", "demo-bot says hello #9"]
    assert len(records) == 10


def test_tail_prints_oldest_first(run: Cli) -> None:
    result = run("tail", "jumpy", "-n", "3")
    assert result.exit_code == 0
    assert [x.rsplit(" ", 1)[-1] for x in lines(result.stdout)] == ["118", "119", "120"]


#: Calls that read messages: the CLI has seen a group's head once one of them was answered.
READS = ("groups.getstream", "groups.getmessage", "users.getjoinedgroupsstream",
         "gupshup.getpublicstream")


def post_once_read(
    emulator: EmulatorThread, phone: str, password: str, group: str, text: str,
    reads: int = 1,
) -> threading.Thread:
    """Post ``text`` as soon as the command under test has made ``reads`` reads: after its
    first look at the head, whatever the machine's speed (a post at a fixed delay raced it)."""

    def read() -> int:
        calls = emulator.emulator.calls
        return sum(calls[m] for m in READS)

    async def post() -> None:
        async with Client(emulator.base_url, phone=phone, password=password,
                          throttle=None) as c:
            before = read()
            for _ in range(6000):  # waits on the command's progress; the bound is a hang guard
                if read() - before >= reads:
                    break
                await asyncio.sleep(0.005)
            else:
                raise AssertionError("the command never read the group")
            await c.post_message(group, text)

    poster = threading.Thread(target=lambda: asyncio.run(post()))
    poster.start()
    return poster


def test_tail_follow_prints_new_messages(run: Cli, emulator: EmulatorThread) -> None:
    poster = post_once_read(emulator, DEMO_PHONE, DEMO_PASSWORD, "jumpy", "breaking news")
    try:
        result = run("tail", "jumpy", "-n", "1", "--follow", "--count", "1", "--seconds", "20",
                     "--interval", "0.5", "--time-scale", "20")
    finally:
        poster.join()
    assert result.exit_code == 0, result.output
    out = lines(result.stdout)
    assert out[0].endswith("jumpy message 120")
    assert out[1].endswith("breaking news")
    assert len(out) == 2


def test_replies(run: Cli) -> None:
    result = run("replies", "jumpy")
    assert result.exit_code == 0
    out = lines(result.stdout)
    assert len(out) == 3
    assert "@cricket -> @jumpy" in out[0]
    assert out[0].endswith("at the match")
    assert "hidden" not in result.stdout
    everything = run("replies", "jumpy", "--all")  # the demo user owns jumpy
    assert len(lines(everything.stdout)) == 4
    assert "(hidden)" in everything.stdout


def test_groups_mine_and_joined(run: Cli) -> None:
    mine = run("groups")
    assert mine.exit_code == 0
    assert [x.split()[0] for x in lines(mine.stdout)] == ["jumpy", "demo-bot"]
    assert run("groups", "--mine").stdout == mine.stdout
    joined = run("--json", "groups", "--joined")
    assert [json.loads(x)["groupName"] for x in lines(joined.stdout)] == ["cricket"]


def test_quota_counts_calls_across_runs(run: Cli, tmp_path: Path) -> None:
    env = {"GUPSHUP_LEDGER": str(tmp_path / "throttle.sqlite3")}
    assert run("info", "jumpy", env=env).exit_code == 0
    assert run("info", "cricket", env=env).exit_code == 0
    result = run("quota", env=env)
    assert result.exit_code == 0
    out = lines(result.stdout)
    assert out[0].split()[:2] == ["minute", "2/30"]
    assert [x.split()[0] for x in out] == ["minute", "hour", "day"]
    windows = [json.loads(x) for x in lines(run("quota", "--json", env=env).stdout)]
    assert [(w["period"], w["used"], w["limit"]) for w in windows] == [
        ("minute", 2, 30), ("hour", 2, 1000), ("day", 2, 10000)]
    fresh = [json.loads(x)
             for x in lines(run("quota", "--json", "--ledger", "memory", env=env).stdout)]
    assert fresh[0]["used"] == 0


def test_an_unusable_ledger_is_one_clean_error(run: Cli, tmp_path: Path) -> None:
    """A --ledger path that cannot be a file fails before any call, with one line."""
    result = run("info", "jumpy", "--ledger", str(tmp_path))  # a directory
    assert_clean_error(result, 2, "--ledger", str(tmp_path))


# -- writing ----------------------------------------------------------------------------------


def test_post(run: Cli, emulator: EmulatorThread) -> None:
    result = run("post", "jumpy", "hello from the cli")
    assert result.exit_code == 0
    assert result.stdout.startswith("posted #")
    assert result.stdout.strip().endswith("to jumpy")
    assert emulator.emulator.posts == 1
    newest = run("stream", "jumpy", "--limit", "1").stdout
    assert newest.strip().endswith("hello from the cli")


def test_post_refusals(run: Cli, emulator: EmulatorThread) -> None:
    assert_clean_error(run("post", "cricket", "not mine"), 1, "error 1")  # alice's group
    assert_clean_error(run("post", "jumpy", "x" * 161), 2, "161 characters")
    assert emulator.emulator.posts == 0


def test_password_prompt_is_hidden(run: Cli, emulator: EmulatorThread) -> None:
    result = run("post", "jumpy", "typed my password", input=DEMO_PASSWORD + "\n",
                 env={"GUPSHUP_PASSWORD": None})
    assert result.exit_code == 0, result.output
    assert DEMO_PASSWORD not in result.output
    assert emulator.emulator.posts == 1


def test_phone_and_password_prompts(run: Cli) -> None:
    result = run("groups", input=f"{ALICE_PHONE}\n{ALICE_PASSWORD}\n",
                 env={"GUPSHUP_PHONE": None, "GUPSHUP_PASSWORD": None})
    assert result.exit_code == 0, result.output
    assert ALICE_PASSWORD not in result.output
    assert {x.split()[0] for x in lines(result.stdout)} == {"cricket", "secret", "closed",
                                                            "spicy"}


def test_wrong_password_never_shows_the_password(run: Cli) -> None:
    secret = "hunter2-not-it"
    result = run("post", "jumpy", "hi", input=secret + "\n", env={"GUPSHUP_PASSWORD": None})
    assert_clean_error(result, 1, "error 121")
    assert secret not in result.output


def test_reply_and_partial_reply(run: Cli) -> None:
    result = run("reply", "@cricket well played", "--group", "jumpy")
    assert result.exit_code == 0
    assert result.stdout.startswith("replied #")
    assert "to @cricket from @jumpy" in result.stdout
    partial = run("reply", "@cricket @nosuch hello both", "--group", "demo-bot")
    assert partial.exit_code == 0
    assert "to @cricket from @demo-bot" in partial.stdout
    assert "not delivered (error 157)" in partial.stderr
    assert "nosuch" in partial.stderr
    assert_clean_error(run("reply", "no destination here"), 2, "text")


def test_invite(run: Cli) -> None:
    result = run("invite", "9876543210", "+91 98765 43211", "12345", "--group", "jumpy")
    assert result.exit_code == 0, result.output
    assert lines(result.stdout) == ["invited 919876543210", "invited 919876543211"]
    assert "not invited 12345" in result.stderr
    as_json = json.loads(run("--json", "invite", "9123456789").stdout)
    assert as_json["status"] == "success"
    assert as_json["invited"] == ["919123456789"]


def test_subscribe_prompts_for_the_texted_code(run: Cli, emulator: EmulatorThread) -> None:
    outbox = emulator.emulator.outbox
    answers = LazyInput(lambda: outbox.last_code(SUBSCRIBER) or "none")
    result = run("subscribe", SUBSCRIBER, "jumpy", input=answers)
    assert result.exit_code == 0, result.output
    assert answers.asked == 1
    assert "A confirmation code was texted to" in result.stderr
    assert "Code from the SMS" in result.stderr
    assert result.stdout.startswith(f"subscribed {SUBSCRIBER} to jumpy")
    assert run("subscribe", SUBSCRIBER, "jumpy").exit_code == 1  # already subscribed (8)


def test_subscribe_asks_again_after_a_wrong_code(run: Cli, emulator: EmulatorThread) -> None:
    outbox = emulator.emulator.outbox
    answers = LazyInput("ZZZZ", lambda: outbox.last_code(SUBSCRIBER) or "none")
    result = run("--json", "subscribe", SUBSCRIBER, "cricket", input=answers)
    assert result.exit_code == 0, result.output
    assert "wrong code" in result.stderr
    assert json.loads(result.stdout)["group"] == "cricket"


def test_subscribe_refused(run: Cli) -> None:
    assert_clean_error(run("subscribe", SUBSCRIBER, "secret"), 1)
    assert_clean_error(run("subscribe", "12345", "jumpy"), 2, "phone")


# -- export -----------------------------------------------------------------------------------


def test_export_writes_jsonl(run: Cli, tmp_path: Path) -> None:
    out = tmp_path / "jumpy.jsonl"
    result = run("export", "jumpy", "--out", str(out))
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(records) == 120
    assert len({r["id"] for r in records}) == 120
    assert records[0]["text"] == "jumpy message 120"
    assert "jumpy: exporting" in result.stderr
    assert "exported 120 messages of jumpy" in result.stderr
    assert not (tmp_path / "jumpy.jsonl.part").exists()


def test_export_of_a_private_group_fails_cleanly(run: Cli, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    assert_clean_error(run("export", "secret", "--out", str(out)), 1, "private group")
    assert not out.exists()


# -- following many groups ----------------------------------------------------------------------


def test_plan_describes_sources_and_costs(run: Cli) -> None:
    result = run("plan", "jumpy", "cricket")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("plan: ")
    assert "expected:" in out
    assert "calls/day" in out


def test_plan_json_is_one_line(run: Cli) -> None:
    result = run("--json", "plan", "jumpy", "cricket")
    assert result.exit_code == 0, result.output
    [line] = lines(result.stdout)
    plan = json.loads(line)
    assert plan["sources"]
    assert {g for s in plan["sources"] for g in [s["source"]]}
    assert 0 < plan["calls_per_day"] <= plan["budget_per_day"]


def test_plan_names_groups_it_cannot_read(run: Cli) -> None:
    result = run("plan", "jumpy", "nosuchgroup")
    assert result.exit_code == 1
    assert "nosuchgroup" in result.stderr
    assert "Traceback" not in result.output


def test_tail_several_groups_needs_follow(run: Cli) -> None:
    assert run("tail", "jumpy", "cricket").exit_code == 2


@pytest.mark.parametrize(
    "emulator_config", [EmulatorConfig(random_seed=None, time_scale=600)], ids=["x600"]
)
def test_tail_follow_several_groups_prints_new_messages(
    run: Cli, emulator: EmulatorThread
) -> None:
    """At ``--time-scale 600`` against a server as fast (a faster client than its server
    earns 113s, and the poster's login would be refused)."""
    # Both groups' heads read (they may come through one call): the post is new to the tail.
    poster = post_once_read(emulator, ALICE_PHONE, ALICE_PASSWORD, "cricket", "wicket!",
                            reads=2)
    try:
        result = run("tail", "jumpy", "cricket", "--follow", "--count", "1", "--seconds", "30",
                     "--time-scale", "600")
    finally:
        poster.join()
    assert result.exit_code == 0, result.output
    assert lines(result.stdout)[-1].endswith("wicket!")
