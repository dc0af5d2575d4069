"""shell/cli/wecom.py: `gridbot wecom bind TARGET KEY` — a robot key checked before the
database is touched, the binding written where the server reads it."""

from __future__ import annotations

from pathlib import Path

from tests.cli_env import sqlite_env
from tests.gridbot_cli import gridbot
from tests.templates import DatabaseTemplates


def test_a_robot_is_bound_to_a_grid_and_bad_keys_are_refused(
        tmp_path: Path, db_templates: DatabaseTemplates) -> None:
    env = sqlite_env(tmp_path, db_templates)
    for key in ("  ", "k" * 201):
        refused = gridbot("wecom", "bind", "440604001030103", key, env=env)
        assert refused.returncode == 2 and "key=" in refused.stderr
    unknown = gridbot("wecom", "bind", "department:火星局", "robot-1", env=env)
    assert unknown.returncode == 1 and "火星局" in unknown.stderr
    done = gridbot("wecom", "bind", "440604001030103", " robot-1 ", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "bound wecom robot to 440604001030103"
    import sqlite3

    rows = sqlite3.connect(tmp_path / "gridbot.db").execute(
        "SELECT channel, chat_id, grid_code FROM group_bindings").fetchall()
    assert rows == [("wecom", "robot-1", "440604001030103")]  # the key stored trimmed
