"""shell/cli/apikeys.py: `gridbot apikeys …` — the key printed once and alone, scopes
checked before anything is written, scopes changed, unknown names answered with exit 1.
(Revoking and the default scope: tests/test_apikeys.py.)"""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_env import sqlite_env
from tests.gridbot_cli import gridbot
from tests.templates import DatabaseTemplates


def test_keys_are_added_scoped_listed_and_revoked(tmp_path: Path,
                                                  db_templates: DatabaseTemplates) -> None:
    env = sqlite_env(tmp_path, db_templates)
    bad = gridbot("apikeys", "add", "web", "--scope", "everything", env=env)
    assert bad.returncode == 2 and "everything" in bad.stderr and bad.stdout == ""
    added = gridbot("apikeys", "add", "web", "--scope", "chat", "--scope", "suggest", env=env)
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert added.stdout == key + "\n" and len(key) >= 32  # KEY=$(gridbot apikeys add …)
    assert "chat, suggest" in added.stderr and key not in added.stderr

    assert gridbot("apikeys", "set-scopes", "web", env=env).returncode == 2  # none given
    assert gridbot("apikeys", "set-scopes", "nobody", "--scope", "chat",
                   env=env).returncode == 1
    changed = gridbot("apikeys", "set-scopes", "web", "--scope", "admin", env=env)
    assert changed.returncode == 0 and "admin" in changed.stdout

    assert gridbot("apikeys", "revoke", "nobody", env=env).returncode == 1
    listed = gridbot("apikeys", "list", "--json", env=env)
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["web"]["scopes"] == ["admin"] and rows["web"]["active"] is True
    assert rows["web"]["last_used_at"] is None and set(rows["web"]) == {
        "name", "prefix", "active", "scopes", "created_at", "last_used_at"}
    assert key not in listed.stdout and key.startswith(rows["web"]["prefix"])
