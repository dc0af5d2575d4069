"""shell/cli/telegram.py: `gridbot telegram set-webhook|poll|bind-code` — what each needs
before it calls Telegram, and a group bind code made where the server reads it."""

from __future__ import annotations

from pathlib import Path

from tests.cli_env import sqlite_env
from tests.gridbot_cli import gridbot
from tests.templates import DatabaseTemplates


def test_the_webhook_needs_a_token_a_secret_and_https(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBOT_TELEGRAM_")}
    url = "https://bot.example.org/telegram"
    no_token = gridbot("telegram", "set-webhook", url, env=env)
    assert no_token.returncode == 2 and "telegram.token is empty" in no_token.stderr
    assert gridbot("telegram", "poll", env=env).returncode == 2
    env["GRIDBOT_TELEGRAM_TOKEN"] = "123:abc"
    no_secret = gridbot("telegram", "set-webhook", url, env=env)
    assert no_secret.returncode == 2 and "secret_token is empty" in no_secret.stderr
    env["GRIDBOT_TELEGRAM_SECRET_TOKEN"] = "s3cret"
    plain = gridbot("telegram", "set-webhook", "http://bot.example.org/telegram", env=env)
    assert plain.returncode == 2 and "https://" in plain.stderr


def test_a_bind_code_names_a_known_target(tmp_path: Path,
                                          db_templates: DatabaseTemplates) -> None:
    env = sqlite_env(tmp_path, db_templates)
    unknown = gridbot("telegram", "bind-code", "street:000", env=env)
    assert unknown.returncode == 1 and "no street with code 000" in unknown.stderr
    done = gridbot("telegram", "bind-code", "street:440604001", env=env)
    assert done.returncode == 0, done.stderr
    code = done.stdout.strip()
    assert done.stdout == code + "\n" and len(code) == 8  # alone: CODE=$(gridbot …)
    assert f"/bind {code}" in done.stderr and "24 h" in done.stderr
    import sqlite3

    rows = sqlite3.connect(tmp_path / "gridbot.db").execute(
        "SELECT code, scope FROM bind_codes").fetchall()
    assert rows == [(code, "street:440604001")]
