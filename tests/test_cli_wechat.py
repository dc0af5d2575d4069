"""shell/cli/wechat.py: `gridbot wechat menu`, `gridbot qrcode` and `gridbot wechat
worker-code` — wechatpy's real client against the local fake of WeChat's API, and the
refusals that need no call at all."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli_env import sqlite_env
from tests.fixtures.wechat.fake_api import PNG, FakeWeChat
from tests.gridbot_cli import gridbot
from tests.templates import DatabaseTemplates


@pytest.fixture
def env(tmp_path: Path, db_templates: DatabaseTemplates, fake_api: FakeWeChat) -> dict[str, str]:
    return sqlite_env(tmp_path, db_templates, GRIDBOT_WECHAT_API_BASE_URL=fake_api.base_url)


def test_the_menu_is_created_with_the_accounts_credentials(env: dict[str, str],
                                                           fake_api: FakeWeChat) -> None:
    missing = gridbot("wechat", "menu", env=env)
    assert missing.returncode == 2 and "wechat.app_id" in missing.stderr
    assert fake_api.calls == []  # refused before any call
    done = gridbot("wechat", "menu", env={**env, "GRIDBOT_WECHAT_APP_ID": "wx-test",
                                          "GRIDBOT_WECHAT_APP_SECRET": "secret"})
    assert done.returncode == 0 and done.stdout.strip() == "menu created", done.stderr
    [created] = fake_api.sent("/cgi-bin/menu/create")
    body = created.body if isinstance(created.body, dict) else json.loads(created.body)
    assert [b["name"] for b in body["button"]] == ["我要上报", "我的案件", "使用说明"]


def test_a_community_qrcode_is_written(env: dict[str, str], fake_api: FakeWeChat,
                                       tmp_path: Path) -> None:
    out = tmp_path / "code.png"
    no_mp = gridbot("qrcode", "--community", "4406040010301", "--out", str(out), env=env)
    assert no_mp.returncode == 2 and "mp_app_id" in no_mp.stderr and not out.exists()
    mp = {**env, "GRIDBOT_WECHAT_MP_APP_ID": "wx-mp", "GRIDBOT_WECHAT_MP_APP_SECRET": "s"}
    too_long = gridbot("qrcode", "--community", "4" * 33, "--out", str(out), env=mp)
    assert too_long.returncode == 2 and "32 characters" in too_long.stderr
    done = gridbot("qrcode", "--community", "4406040010301", "--out", str(out), env=mp)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == PNG and f"({len(PNG)} bytes)" in done.stdout
    [call] = fake_api.sent("/wxa/getwxacodeunlimit")
    body = call.body if isinstance(call.body, dict) else json.loads(call.body)
    assert body["scene"] == "4406040010301"


def test_a_worker_code_for_an_active_worker_only(env: dict[str, str]) -> None:
    added = gridbot("workers", "add", "周坚怡", "--role", "grid_worker", "--scope",
                    "grid:440604001030103", "--channel", "wechat", "--id", "o-worker", env=env)
    found = re.search(r"worker (\d+):", added.stdout)
    assert found is not None, added.stderr
    worker_id = int(found.group(1))
    unknown = gridbot("wechat", "worker-code", str(worker_id + 100), env=env)
    assert unknown.returncode == 2
    assert f"no active worker with id {worker_id + 100}" in unknown.stderr
    done = gridbot("wechat", "worker-code", str(worker_id), env=env)
    assert done.returncode == 0, done.stderr
    code = done.stdout.strip()
    assert len(code) == 8 and code.isalnum() and code.upper() == code
