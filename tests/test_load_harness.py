"""The load benchmark's machinery end to end at a tiny size: a private PostgreSQL cluster and
redis-server, `gridbot serve` against them, the fake WeChat and Telegram APIs, and six
citizens (two per channel) holding real conversations. The counts must match exactly."""

from __future__ import annotations

import asyncio
import glob
import shutil
from pathlib import Path

import pytest

from benchmarks.load import Options, run


def test_six_citizens_three_channels_counts_match(model_dir: Path) -> None:
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") or not shutil.which("redis-server"):
        pytest.fail("PostgreSQL server binaries and redis-server are needed (as in CI)")
    options = Options(citizens=6, concurrency=6, max_seconds=60, workers=1, drain_seconds=30,
                      team_workers=1, extra_env={"GRIDBOT_NLP_MODEL_DIR": str(model_dir)})
    figures = asyncio.run(run(options))
    assert figures["outcomes"] == {"filed": 6}, figures
    assert figures["cases_in_db"] == 6
    assert figures["duplicates"] == 0 and figures["lost"] == 0
    assert figures["accepts_pressed"] == 6
    # Per case: the card at dispatch and at 接单 (telegram group); the status update to the
    # reporter (wechat and telegram citizens at the fakes, http citizens by polling). A card
    # row still queued when a newer card of its case went out is rightly never shown.
    assert figures["outbox_rows"] == 18
    assert figures["outbox_delivered"] == 18 and figures["outbox_pending"] == 0
    assert figures["fake_deliveries"] + figures["cards_superseded"] == 6 * 2 + 4
    assert figures["cards_superseded"] <= 6
    assert figures["missing_at_fake"] == 0 and figures["duplicate_deliveries"] == 0
    assert figures["errors"] == 0, figures["error_kinds"]
    assert figures["counts_match"] is True


def test_stack_floor_answers_each_channels_cheapest_turn(model_dir: Path) -> None:
    """benchmarks/stack_floor.py's gridbot rows at a tiny size: every request answered 200
    on all three channels (the WeChat one encrypted, the Telegram one with its reply in
    the webhook's answer)."""
    import argparse

    from benchmarks import stack_floor

    args = argparse.Namespace(requests=20, concurrency=4)
    # One server process: several are tests/test_http_api.py's (serve --workers 2).
    rows = asyncio.run(stack_floor.gridbot_rows(
        args, extra_env={"GRIDBOT_NLP_MODEL_DIR": str(model_dir)}, workers=1))
    assert [r["row"] for r in rows] == ["gridbot chat API, 帮助",
                                        "gridbot WeChat AES webhook, 帮助",
                                        "gridbot Telegram webhook, 帮助"]
    assert all(r["statuses"] == {200: 20} for r in rows), rows
    assert all(r["server_cpu_ms_per_request"] > 0 for r in rows), rows


# -- the fakes' fault modes, as the real SDKs see them ----------------------------------------

async def test_fake_wechat_faults_reach_wechatpy_as_wechat_would_send_them() -> None:
    from wechatpy.exceptions import WeChatClientException

    from adapters.wechat_api import official_api
    from benchmarks.fakes import FakeWeChatApi
    from bot import kv

    fake = await FakeWeChatApi().start()
    redis = kv.connect("")  # the embedded store: the token cache needs no server here
    try:
        api = official_api("wxfake", "secret", fake.base_url, redis)

        async def send(text: str) -> None:
            await api.call(lambda c: c.message.send_text("oUSER", text))

        await send("一")
        fake.set_mode("40001")  # the token in use dies: the SDK refreshes once and sends
        await send("二")
        assert fake.refused["40001"] == 1 and fake.tokens_issued == 2
        for mode, errcode in (("45009", 45009), ("5xx", None)):
            fake.set_mode(mode)
            with pytest.raises(WeChatClientException) as raised:
                await send(mode)
            if errcode is not None:
                assert raised.value.errcode == errcode
        fake.set_mode("ok")
        assert [(d.recipient, d.text) for d in fake.deliveries] == [("oUSER", "一"),
                                                                     ("oUSER", "二")]
        assert not fake.duplicates()
    finally:
        await redis.aclose()
        await fake.stop()


async def test_fake_telegram_faults_reach_python_telegram_bot() -> None:
    from telegram import Bot
    from telegram.error import NetworkError, RetryAfter, TimedOut

    from adapters.telegram_http import AiohttpRequest
    from benchmarks.fakes import FakeTelegramApi

    fake = await FakeTelegramApi(hold_s=0.6).start()
    bot = Bot("1:fake", base_url=fake.base_url, request=AiohttpRequest(read_timeout_s=0.2))
    try:
        await bot.initialize()
        fake.set_mode("429")
        with pytest.raises(RetryAfter) as flood:
            await bot.send_message(5, "限流")
        assert f"Retry in {fake.retry_after_s}" in str(flood.value)  # PTB read retry_after
        fake.set_mode("5xx")
        with pytest.raises(NetworkError):
            await bot.send_message(5, "坏网关")
        fake.set_mode("timeout")  # the answer comes too late, but the message got there
        with pytest.raises(TimedOut):
            await bot.send_message(5, "超时")
        await asyncio.sleep(0.6)
        fake.set_mode("ok")
        await bot.send_message(5, "超时")  # the sender's retry: a duplicate at the fake
        assert [(d.text, d.late) for d in fake.deliveries] == [("超时", True), ("超时", False)]
        assert fake.duplicates() == {("5", "超时"): 1}
    finally:
        await bot.shutdown()
        await fake.stop()
