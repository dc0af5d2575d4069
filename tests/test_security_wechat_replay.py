"""WeChat replays, on both storage set-ups, with wechatpy's real signing and crypto: in
plaintext mode the signature covers only timestamp and nonce, so one signed query must not
carry any other message (each (timestamp, nonce) is remembered while the timestamp is
fresh); WeChat's own retry of the same message still gets its answer; stale timestamps are
refused; safe (AES) mode and the GET handshake keep working; and `gridbot doctor` warns
that plaintext mode is unsafe."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import xmltodict

from adapters import inbound
from bot.config import Config, WechatConfig
from bot.kv import PREFIX
from bot.services import Services
from bot.texts import t
from shell.ops.doctor import check_channels
from tests.fixtures.wechat.fake_api import FakeWeChat, fixture
from tests.gridbot_cli import gridbot
from tests.test_doctor import GOOD_AES, _write_config
from tests.test_wechat import APP_ID, WeChatServer, connect, next_id


@pytest.fixture
def turns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every user whose message reached the dialog (adapters.inbound.handle)."""
    seen: list[str] = []
    real = inbound.handle

    async def counting(msg: Any, services: Services) -> Any:
        seen.append(msg.user)
        return await real(msg, services)

    monkeypatch.setattr(inbound, "handle", counting)
    return seen


def _signed_query(server: WeChatServer, timestamp: str, nonce: str) -> dict[str, str]:
    return {"signature": server.sign(timestamp, nonce), "timestamp": timestamp,
            "nonce": nonce, "openid": "ignored"}


async def _nothing_for(services: Services, openid: str, msgid: int) -> None:
    """No trace of a refused message: no dialog, no 48-hour window, no dedupe mark."""
    assert await services.dialogs.load("wechat", openid) == {}
    assert await services.redis.get(f"{PREFIX}wxlast:{openid}") is None
    assert not [k async for k in services.redis.scan_iter(f"{PREFIX}*{msgid}*")]


async def test_a_plaintext_signature_cannot_carry_other_messages(
        services: Services, fake_api: FakeWeChat, tmp_path: Path, turns: list[str]) -> None:
    server, _ = await connect(services, fake_api, tmp_path)
    ts, nonce = str(int(time.time())), str(next_id())
    query = _signed_query(server, ts, nonce)
    victim = fixture("text", openid="o-victim", time=int(ts), content="帮助", msgid=next_id())
    first = await server.client.post("/wechat", query_string=query, data=victim.encode())
    assert await server.reply(first) == t("help")
    assert turns == ["o-victim"]

    # The captured query string with three other people's messages: each refused, none run.
    for openid in ("o-other-1", "o-other-2", "o-other-3"):
        msgid = next_id()
        forged = fixture("text", openid=openid, time=int(ts), content="我的案件", msgid=msgid)
        r = await server.client.post("/wechat", query_string=query, data=forged.encode())
        assert r.status_code == 403
        assert "案件" not in await r.get_data(as_text=True)
        await _nothing_for(services, openid, msgid)
    assert turns == ["o-victim"]

    # WeChat's own retry (the same query and the same message) gets the first answer again,
    # without running the dialog a second time.
    again = await server.client.post("/wechat", query_string=query, data=victim.encode())
    assert await server.reply(again) == t("help")
    assert turns == ["o-victim"]


async def test_stale_or_future_timestamps_are_refused(
        services: Services, fake_api: FakeWeChat, tmp_path: Path, turns: list[str]) -> None:
    server, _ = await connect(services, fake_api, tmp_path)
    for skew in (-400, 400, -3600, 86400):
        ts = str(int(time.time()) + skew)
        msgid = next_id()
        xml = fixture("text", openid="o-late", time=int(ts), content="帮助", msgid=msgid)
        r = await server.client.post("/wechat", query_string=_signed_query(server, ts,
                                                                           str(next_id())),
                                     data=xml.encode())
        assert r.status_code == 403, skew
        await _nothing_for(services, "o-late", msgid)
    assert turns == []


async def test_safe_mode_keeps_working_and_binds_the_nonce_too(
        services: Services, fake_api: FakeWeChat, tmp_path: Path, turns: list[str]) -> None:
    server, _ = await connect(services, fake_api, tmp_path, aes=True)
    assert await server.say("o-safe", "帮助") == t("help")  # the ordinary flow
    assert server.crypto is not None
    ts, nonce = str(int(time.time())), str(next_id())

    def envelope(xml: str) -> tuple[dict[str, str], bytes]:
        sealed = xmltodict.parse(server.crypto.encrypt_message(xml, nonce, ts))["xml"]
        body = ("<xml><ToUserName><![CDATA[gh_3a9f1c2b7d01]]></ToUserName>"
                f"<Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>")
        return ({**_signed_query(server, ts, nonce), "encrypt_type": "aes",
                 "msg_signature": sealed["MsgSignature"]}, body.encode())

    message = fixture("text", openid="o-safe-2", time=int(ts), content="帮助", msgid=next_id())
    query, body = envelope(message)
    assert await server.reply(await server.client.post("/wechat", query_string=query,
                                                       data=body)) == t("help")
    # WeChat's retry of that delivery: answered again (and not run again).
    assert await server.reply(await server.client.post("/wechat", query_string=query,
                                                       data=body)) == t("help")
    # Another message under the same timestamp and nonce is never WeChat's.
    msgid = next_id()
    other = fixture("text", openid="o-safe-3", time=int(ts), content="帮助", msgid=msgid)
    query, body = envelope(other)
    r = await server.client.post("/wechat", query_string=query, data=body)
    assert r.status_code == 403
    await _nothing_for(services, "o-safe-3", msgid)
    assert turns == ["o-safe", "o-safe-2"]


async def test_the_handshake_still_verifies(services: Services, fake_api: FakeWeChat,
                                            tmp_path: Path) -> None:
    server, _ = await connect(services, fake_api, tmp_path)
    ts, nonce = str(int(time.time())), str(next_id())
    query = {**_signed_query(server, ts, nonce), "echostr": "echo-2718"}
    for _ in range(2):  # WeChat may check the URL more than once
        r = await server.client.get("/wechat", query_string=query)
        assert r.status_code == 200 and await r.get_data(as_text=True) == "echo-2718"
    r = await server.client.get("/wechat", query_string={**query, "signature": "0" * 40})
    assert r.status_code == 403


# -- gridbot doctor ----------------------------------------------------------------------------

def test_doctor_warns_about_plaintext_mode() -> None:
    plaintext = Config(wechat=WechatConfig(token="tok3n", app_id=APP_ID, app_secret="0" * 32))
    checks = {c.name: c for c in check_channels(plaintext)}
    assert checks["wechat"].status == "ok"  # the credentials themselves are fine
    mode = checks["wechat_mode"]
    assert mode.status == "warn"
    assert "plaintext mode" in mode.en and "unsafe" in mode.en and "safe mode" in mode.en
    assert "明文模式" in mode.zh and "安全模式" in mode.zh and "不安全" in mode.zh
    safe = Config(wechat=WechatConfig(token="tok3n", app_id=APP_ID, app_secret="0" * 32,
                                      encoding_aes_key=GOOD_AES))
    assert "wechat_mode" not in {c.name for c in check_channels(safe)}


def test_doctor_cli_prints_the_plaintext_warning(tmp_path: Path, model_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBOT_")}
    env.update(GRIDBOT_WECHAT_TOKEN="tok3n", GRIDBOT_WECHAT_APP_ID=APP_ID,
               GRIDBOT_WECHAT_APP_SECRET="0" * 32)
    result = gridbot("doctor", "--config", str(_write_config(tmp_path, model_dir)),
                     env=env)  # in-process
    assert result.returncode == 0, result.stdout + result.stderr  # a warning, not a failure
    line = next(line for line in result.stdout.splitlines() if "wechat_mode" in line)
    assert line.startswith("!") and "明文模式" in line
    assert "plaintext mode, which is unsafe" in " ".join(result.stdout.split())
