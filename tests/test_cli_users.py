"""shell/cli/users.py: `gridbot users add|list|disable` — a role and scope checked before
the password is read, the password from stdin only when asked, and exit statuses."""

from __future__ import annotations

from pathlib import Path

from tests.cli_env import sqlite_env
from tests.gridbot_cli import gridbot
from tests.templates import DatabaseTemplates

PASSWORD = "s3cret-enough"


def test_accounts_are_added_listed_and_disabled(tmp_path: Path,
                                                db_templates: DatabaseTemplates) -> None:
    env = sqlite_env(tmp_path, db_templates)
    for args, why in ((["--role", "janitor"], "role 'janitor'"),
                      (["--role", "department"], "needs --scope department:NAME"),
                      (["--role", "grid_leader", "--scope", "street:000"], "no street")):
        # Refused before the password is asked for: nothing on stdin is read.
        refused = gridbot("users", "add", "li", *args, "--password-stdin", env=env,
                          input=PASSWORD + "\n")
        assert refused.returncode == 2 and why in refused.stderr, refused.stderr
    short = gridbot("users", "add", "li", "--role", "operator", "--password-stdin",
                    env=env, input="short\n")
    assert short.returncode == 2 and "password must be at least" in short.stderr
    added = gridbot("users", "add", "li", "--role", "grid_leader", "--scope",
                    "street:440604001", "--display-name", "李网格长", "--password-stdin",
                    env=env, input=PASSWORD + "\r\n")
    assert added.returncode == 0, added.stderr
    assert "user li (grid_leader, street:440604001) created" in added.stdout
    again = gridbot("users", "add", "li", "--role", "operator", "--password-stdin", env=env,
                    input=PASSWORD + "\n")
    assert again.returncode == 2 and "already exists" in again.stderr
    listed = gridbot("users", "list", env=env)
    assert "李网格长" in listed.stdout and PASSWORD not in listed.stdout + listed.stderr
    assert "$argon2" not in listed.stdout
    assert gridbot("users", "disable", "nobody", env=env).returncode == 1
    disabled = gridbot("users", "disable", "li", env=env)
    assert disabled.returncode == 0 and "user li disabled" in disabled.stdout
