"""`gridbot doctor` on a good deployment and on broken ones: each fault named in plain words,
non-zero exit on any failure, --json for machines."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import pytest

from bot.config import PROJECT_ROOT, Config
from bot.services import build_services
from shell.ops.doctor import check_channels, run_checks
from tests.conftest import POSTGRES_URL, REDIS_URL, make_config
from tests.gridbot_cli import gridbot

GOOD_AES = base64.b64encode(b"k" * 32).decode().rstrip("=")


def _write_config(tmp_path: Path, model_dir: Path, database: str = "",
                  redis: str = "") -> Path:
    """The shipped config.toml with absolute data paths and a copied model."""
    models = tmp_path / "models"
    if not models.exists():
        shutil.copytree(model_dir, models)
    text = (PROJECT_ROOT / "config.toml").read_text(encoding="utf-8")
    text = (text.replace('model_dir = "var/models"', f'model_dir = "{models}"')
            .replace('file = "data/', f'file = "{PROJECT_ROOT}/data/')
            .replace('gazetteer = "data/', f'gazetteer = "{PROJECT_ROOT}/data/'))
    if database:
        text = text.replace('[database]\nurl = ""', f'[database]\nurl = "{database}"')
    if redis:
        text = text.replace('[redis]\nurl = ""', f'[redis]\nurl = "{redis}"')
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _by_name(checks: list) -> dict[str, object]:
    return {c.name: c for c in checks}


async def test_a_good_deployment_passes(tmp_path: Path, model_dir: Path) -> None:
    config = _write_config(tmp_path, model_dir)
    s = await build_services(make_config(tmp_path, model_dir,
                                         f"sqlite+aiosqlite:///{tmp_path}/var/gridbot.db"))
    await s.close()
    checks = _by_name(await run_checks(config))
    # (The calendar check depends on today's date and the library's release: its own test.)
    assert all(c.status == "ok" for n, c in checks.items() if n != "calendar"), checks
    assert checks["calendar"].status in ("ok", "warn")
    assert "159" in checks["grids"].en and "head" in checks["database"].en
    assert not (tmp_path / "var" / "media").exists() or not any(
        (tmp_path / "var" / "media").iterdir())  # the probe file is gone


async def test_postgres_and_redis_reachable(tmp_path: Path, model_dir: Path) -> None:
    try:
        s = await build_services(make_config(tmp_path, model_dir, POSTGRES_URL, REDIS_URL))
    except Exception as exc:
        pytest.skip(f"PostgreSQL/Redis not reachable: {exc}")
    await s.close()
    checks = _by_name(await run_checks(_write_config(tmp_path, model_dir, database=POSTGRES_URL,
                                                     redis=REDIS_URL)))
    assert checks["database"].status == "ok" and checks["redis"].status == "ok"


async def test_broken_deployment_is_explained(tmp_path: Path, model_dir: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    config = _write_config(
        tmp_path, model_dir,
        database="postgresql+asyncpg://gridbot:hunter2@127.0.0.1:1/nowhere",
        redis="redis://127.0.0.1:1/0")
    for key, value in {"TELEGRAM_TOKEN": "not-a-token", "WECOM_CORP_ID": "ww123",
                       "WECOM_AGENT_ID": "x", "WECOM_SECRET": "s", "WECOM_TOKEN": "t0ken",
                       "WECOM_ENCODING_AES_KEY": GOOD_AES[:40]}.items():
        monkeypatch.setenv(f"GRIDBOT_{key}", value)
    shutil.rmtree(tmp_path / "models")
    (tmp_path / "models").mkdir()
    checks = _by_name(await run_checks(config))
    failed = {name for name, c in checks.items() if c.status == "fail"}
    assert {"database", "redis", "telegram", "wecom", "model"} <= failed
    assert "hunter2" not in json.dumps([c.__dict__ for c in checks.values()])  # no password
    assert "gridbot train" in checks["model"].en and "gridbot train" in checks["model"].zh
    assert "secret_token" in checks["telegram"].en and "Secret" in checks["wecom"].zh
    assert "43" in checks["wecom"].en


async def test_older_schema_and_unsafe_exposure(tmp_path: Path, model_dir: Path) -> None:
    from bot.storage import upgrade

    await upgrade(f"sqlite+aiosqlite:///{tmp_path}/var/gridbot.db", "0005")
    config = _write_config(tmp_path, model_dir)
    text = config.read_text(encoding="utf-8").replace('host = "127.0.0.1"', 'host = "0.0.0.0"')
    config.write_text(text, encoding="utf-8")
    checks = _by_name(await run_checks(config))
    assert checks["database"].status == "warn" and "0005" in checks["database"].en
    assert checks["exposure"].status == "fail" and "api.keys" in checks["exposure"].en


def test_channel_formats() -> None:
    from bot.config import Config, TelegramConfig, WechatConfig

    good = Config(telegram=TelegramConfig(token="123456789:" + "A" * 35, secret_token="s-1_x"),
                  wechat=WechatConfig(token="tok3n", app_id="wx5f3c2a1b0e9d8c7b",
                                      app_secret="0" * 32, encoding_aes_key=GOOD_AES,
                                      mp_app_id="wx0123456789abcdef", mp_app_secret="f" * 32,
                                      session_secret="x" * 32))
    assert [c.status for c in check_channels(good)] == ["ok", "ok", "ok"]
    bad = Config(wechat=WechatConfig(token="t", app_id="wx5F3C", app_secret="nope",
                                     encoding_aes_key="a" * 42 + "!"))
    (check,) = check_channels(bad)
    assert check.status == "fail"
    for fragment in ("token", "AppID", "AppSecret", "EncodingAESKey"):
        assert fragment in check.en


def test_cli_exit_codes_and_json(tmp_path: Path, model_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBOT_")}
    config = _write_config(tmp_path, model_dir)
    ok = gridbot("doctor", "--config", str(config), env=env)  # in-process
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "✓" in ok.stdout and "一切正常" in ok.stdout
    bad = gridbot("doctor", "--json", "--config", str(config),
                  env={**env, "GRIDBOT_TELEGRAM_TOKEN": "x"})
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False
    assert any(c["name"] == "telegram" and c["status"] == "fail" for c in report["checks"])
    unreadable = tmp_path / "bad.toml"
    unreadable.write_text("[server]\nport = 'eighty'\n", encoding="utf-8")
    bad = gridbot("doctor", "--config", str(unreadable), env=env)
    assert bad.returncode == 1 and "✗ config" in bad.stdout and "server.port" in bad.stdout


def test_the_calendar_check_warns_before_a_year_the_library_does_not_know() -> None:
    from datetime import date

    from bot.worktime import national_years
    from shell.ops.doctor import check_calendar

    config = Config()
    last = national_years()[1]
    assert check_calendar(config, today=date(last - 1, 6, 1)).status == "ok"
    warned = check_calendar(config, today=date(last, 12, 3))
    assert warned.status == "warn" and str(last + 1) in warned.en and str(last + 1) in warned.zh
    config.calendar.national = False
    assert check_calendar(config, today=date(last, 12, 3)).status == "ok"
