"""The CLI's throttle ledger is keyed by the server's host: one IP's budget, whatever the URL's
spelling, and nothing of its credentials, path or query in the file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from .conftest import Cli


def used(run: Cli, env: dict[str, str | None]) -> int:
    out = run("quota", "--json", env=env)
    assert out.exit_code == 0, out.output
    minute = json.loads(out.stdout.splitlines()[0])
    assert minute["period"] == "minute"
    return int(minute["used"])


def test_every_spelling_of_one_server_shares_one_budget(run: Cli, tmp_path: Path) -> None:
    ledger = tmp_path / "throttle.sqlite3"
    plain = run.base_url.rstrip("/")
    host = plain.partition("://")[2]
    spellings = [plain, plain + "/",
                 f"http://me:hunter2@{host}/x?token=s3cret"]
    for url in spellings[:2]:  # two calls through two spellings
        env = {"GUPSHUP_LEDGER": str(ledger), "GUPSHUP_BASE_URL": url}
        assert run("info", "jumpy", env=env).exit_code == 0
    for url in spellings:  # each spelling sees both
        assert used(run, {"GUPSHUP_LEDGER": str(ledger), "GUPSHUP_BASE_URL": url}) == 2
    with sqlite3.connect(ledger) as db:
        dump = "\n".join(db.iterdump())
    for secret in ("hunter2", "s3cret", "token", "/x", "me:"):
        assert secret not in dump
    assert host in dump
