"""shell/cli/users.py: `gridbot users add` — a role and scope checked before the password is
asked for, a password read whole from stdin, and too short a one refused. (Adding, listing
and disabling accounts: tests/test_console.py.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.staff import check_login
from bot.storage import Database
from tests.cli_env import sqlite_env
from tests.gridbot_cli import gridbot
from tests.templates import DatabaseTemplates

PASSWORD = "s3cret-enough"


def test_a_bad_role_or_scope_is_refused_before_the_password_prompt(tmp_path: Path) -> None:
    for args, why in ((["--role", "janitor"], "role 'janitor'"),
                      (["--role", "department"], "needs --scope department:NAME"),
                      (["--role", "operator", "--scope", "grid:1"], "takes no scope")):
        refused = gridbot("users", "add", "li", *args, input=PASSWORD + "\n" * 2)
        assert refused.returncode == 2 and why in refused.stderr, refused.stderr
        assert "password" not in refused.stdout + refused.stderr  # never asked


def test_the_password_from_stdin_is_kept_without_its_line_end(
        tmp_path: Path, db_templates: DatabaseTemplates) -> None:
    env = sqlite_env(tmp_path, db_templates)
    short = gridbot("users", "add", "li", "--role", "operator", "--password-stdin",
                    env=env, input="short\n")
    assert short.returncode == 2 and "password must be at least" in short.stderr
    added = gridbot("users", "add", "li", "--role", "grid_leader", "--scope",
                    "street:440604001", "--password-stdin", env=env,
                    input=PASSWORD + "\r\nnext line\n")  # as a Windows pipe sends it
    assert added.returncode == 0, added.stderr
    assert "user li (grid_leader, street:440604001) created" in added.stdout

    async def logins() -> tuple[bool, bool]:
        db = Database(env["GRIDBOT_DATABASE_URL"])
        try:
            return (await check_login(db, "li", PASSWORD) is not None,
                    await check_login(db, "li", PASSWORD + "\r") is not None)
        finally:
            await db.close()

    assert asyncio.run(logins()) == (True, False)
