"""Generated text through the dialog, by the HTTP chat API (the real door): control and
zero-width characters, right-to-left marks, lone surrogates, SQL and script injection, 1 MB
messages. No crash, a clear answer, bounded cost, and nothing stored that a group or the
console would render as markup or as reordered text. Also the rate limits biting.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.guard import WINDOW_S, RateLimiter
from adapters.wecom import markdown_card
from bot.cases import report_key
from bot.kv import PREFIX
from bot.outbox import Notice
from bot.services import Services
from shell.app import create_app
from tests.conftest import make_config

LOOPBACK = {"client": ("127.0.0.1", 5000)}
EXAMPLES = 60
TURN_BOUND_S = 3.0  # a bound, not a benchmark: the classifier sees at most max_text_chars

CONTROL = [chr(c) for c in [*range(0, 32), 127, *range(0x80, 0xA0)]]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\u00ad",
             "\u061c", "\u180e", "\u2028", "\u2029"]
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068",
        "\u2069"]
INJECTION = ["'; DROP TABLE cases; --", "\" OR 1=1 --", "<script>alert(1)</script>",
             "<img src=x onerror=alert(1)>", "[点我](http://evil.example)", "**加粗**",
             "<font color=\"warning\">紧急</font>", "{{7*7}}", "${jndi:ldap://x/a}", "%s%n%x",
             "../../etc/passwd", "\\u0000", "取消", "确认", "查询 20261122-0001",
             "\ud800", "\udfff"]
PIECES = st.one_of(st.sampled_from(["井盖", "路灯不亮", "季华五路18号", "垃圾", "小区门口",
                                    "晚上很危险", "13800138000", "1", "确认", "取消"]),
                   st.sampled_from(CONTROL + INVISIBLE + BIDI + INJECTION),
                   st.text(max_size=12))
TEXTS = st.lists(PIECES, max_size=12).map("".join)


def run_examples(strategy: st.SearchStrategy[Any],
                 check: Callable[[Any], Awaitable[None]], examples: int = EXAMPLES
                 ) -> Awaitable[None]:
    """Hypothesis in a worker thread; each example runs on the test's event loop."""
    loop = asyncio.get_running_loop()

    @given(strategy)
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def each(value: Any) -> None:
        asyncio.run_coroutine_threadsafe(check(value), loop).result(timeout=60)

    return asyncio.to_thread(each)


async def test_generated_text_gets_a_clear_answer(services: Services) -> None:
    client = create_app(services.config, services, background=False).test_client()
    users = itertools.count()

    async def check(texts: list[str]) -> None:
        user = f"fuzz-{next(users)}"  # a conversation of a few turns per example
        for text in texts:
            body = json.dumps({"user": user, "text": text}, ensure_ascii=True)
            started = time.perf_counter()
            r = await client.post("/api/v1/messages", data=body.encode(), scope_base=LOOPBACK,
                                  headers={"Content-Type": "application/json"})
            elapsed = time.perf_counter() - started
            answer = await r.get_json()
            assert r.status_code in (200, 400), (text, r.status_code)
            if r.status_code == 400:
                assert answer["error"]
            else:
                assert answer["replies"] and all(x["text"].strip() for x in answer["replies"])
            assert elapsed < TURN_BOUND_S, (text[:50], elapsed)
        state = await services.dialogs.load("http", user)
        assert len(json.dumps(state, ensure_ascii=False)) < 20_000  # bounded state

    await run_examples(st.lists(TEXTS, min_size=1, max_size=4), check)


async def test_one_megabyte_messages_cost_no_more_than_the_limit(services: Services) -> None:
    client = create_app(services.config, services, background=False).test_client()
    limit = services.config.server.max_body_bytes
    room = limit - 200  # the JSON around the text
    for text in ("井盖丢了" * (room // 12), "a" * room, "\u200b" * (room // 3),
                 ("<script>" * (room // 8))):
        started = time.perf_counter()
        r = await client.post("/api/v1/messages", json={"user": "big", "text": text[:100_000]},
                              scope_base=LOOPBACK)
        assert r.status_code in (200, 400)
        r = await client.post("/api/v1/messages", data=json.dumps(
            {"user": "big", "text": text}).encode(), scope_base=LOOPBACK,
            headers={"Content-Type": "application/json"})
        assert r.status_code in (400, 413)  # over the field limit or the body limit
        assert time.perf_counter() - started < TURN_BOUND_S
    r = await client.post("/api/v1/messages", data=b'{"user": "big", "text": "' +
                          b"x" * (limit + 1) + b'"}', scope_base=LOOPBACK,
                          headers={"Content-Type": "application/json"})
    assert r.status_code == 413


async def test_hostile_report_is_stored_clean_and_rendered_inert(services: Services) -> None:
    """A report full of markup, bidi overrides and control characters, filed through the
    dialog: the stored text has none of the invisible characters, and the staff-group card
    (WeCom robot markdown) shows the markup as text."""
    client = create_app(services.config, services, background=False).test_client()
    hostile = ("季华五路18号\u202e路灯不亮\u202c了\u200b\x07<script>alert(1)</script>"
               "[点我](http://evil.example) **紧急** <font color=\"warning\">x</font>"
               "'; DROP TABLE cases; --")

    async def say(text: str) -> dict[str, Any]:
        r = await client.post("/api/v1/messages", json={"user": "hostile", "text": text},
                              scope_base=LOOPBACK)
        assert r.status_code == 200
        return await r.get_json()

    answer = await say(hostile)
    if "回复序号" in answer["replies"][0]["text"]:
        answer = await say("1")
    assert "请确认" in answer["replies"][0]["text"], answer
    case = (await say("确认"))["case"]
    assert case is not None
    stored = (await services.cases.get(case["number"])).text
    for char in ("\u202e", "\u202c", "\u200b", "\x07"):
        assert char not in stored
    assert "DROP TABLE" in stored  # kept as the citizen's words, harmlessly
    assert len(await services.cases.list()) == 1  # and the table is still there
    card = markdown_card(Notice(1, "card:1", "wecom", "robot", f"新案件 {case['number']}\n{stored}",
                                {"kind": "card", "case": case["number"]}))
    for markup in ("<script", "[点我]", "](http", "**紧急**", "<font color=\"warning\">x"):
        assert markup not in card, markup


# -- rate limits -----------------------------------------------------------------------------

async def _early_in_a_window() -> None:
    """The limits count per clock minute: start a counting test away from a minute's end,
    so its requests all fall in one window."""
    into = time.time() % WINDOW_S
    if into > WINDOW_S - 5:
        await asyncio.sleep(WINDOW_S - into + 0.1)


async def test_a_report_counts_its_user_and_checks_its_id_together(
        services: Services, tmp_path, model_dir) -> None:
    """POST /reports counts the user's hit; a filed report_id is 409 on a retry, and a report
    refused for the limit leaves its id free for the retry (the id is kept with the filing)."""
    config = make_config(tmp_path, model_dir, services.config.database_url,
                         services.config.redis.url, GRIDBOT_LIMITS_PER_USER_PER_MINUTE="2")
    services.config = config
    client = create_app(config, services, background=False).test_client()
    await _early_in_a_window()

    async def report(report_id: str) -> int:
        r = await client.post("/api/v1/reports", scope_base=LOOPBACK, json={
            "user": "form", "text": "小区门口路灯不亮，晚上很黑", "report_id": report_id,
            "location": {"lat": 23.0215, "lon": 113.1214}})
        return r.status_code

    assert [await report("r-1"), await report("r-1"), await report("r-2")] == [201, 409, 429]
    assert await services.cases.filed_by(report_key("http", "form", "r-2")) is None
    assert (await services.cases.filed_by(report_key("http", "form", "r-1"))) is not None


async def test_a_hit_counts_on_after_redis_lost_its_scripts(services: Services) -> None:
    """A hit is one script run by its digest: a restarted Redis, which has no scripts, is
    given it again, and the window's count and expiry go on as before."""
    limiter = RateLimiter(services.redis)
    await _early_in_a_window()
    first = await limiter.hit("user:test", "someone", 2)
    await services.redis.script_flush()
    second = await limiter.hit("user:test", "someone", 2)
    third = await limiter.hit("user:test", "someone", 2)
    assert [(v.allowed, v.count) for v in (first, second, third)] == [
        (True, 1), (True, 2), (False, 3)]
    keys = [k async for k in services.redis.scan_iter(match=f"{PREFIX}rl:user:test:*")]
    assert len(keys) == 1 and 0 < await services.redis.ttl(keys[0]) <= WINDOW_S + 1


async def test_rate_limits_bite_over_http(services: Services, tmp_path, model_dir) -> None:
    config = make_config(tmp_path, model_dir, services.config.database_url,
                         services.config.redis.url, GRIDBOT_API_KEYS="k" * 20,
                         GRIDBOT_LIMITS_PER_USER_PER_MINUTE="3",
                         GRIDBOT_LIMITS_PER_IP_PER_MINUTE="8")
    services.config = config
    client = create_app(config, services, background=False).test_client()
    await _early_in_a_window()
    remote = {"client": ("203.0.113.7", 5000)}
    key = {"X-API-Key": "k" * 20}
    codes = []
    for _ in range(4):
        r = await client.post("/api/v1/messages", json={"user": "flood", "text": "你好"},
                              headers=key, scope_base=remote)
        codes.append(r.status_code)
    assert codes == [200, 200, 200, 429]
    assert 1 <= int(r.headers["Retry-After"]) <= 60 and "user" in (await r.get_json())["error"]
    # Another user from the same address still gets through, until the address is spent.
    r = await client.post("/api/v1/messages", json={"user": "calm", "text": "你好"},
                          headers=key, scope_base=remote)
    assert r.status_code == 200
    for _ in range(4):
        r = await client.get("/api/v1/grids", headers=key, scope_base=remote)
    assert r.status_code == 429 and "address" in (await r.get_json())["error"]
    assert r.headers["Retry-After"]
    # Refusals carry the API's security headers too.
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    # Unauthenticated guessing is limited by address too, before the key check.
    r = await client.post("/api/v1/messages", json={"user": "x", "text": "你好"},
                          scope_base=remote)
    assert r.status_code == 429
    # Open311 (public GETs, keyed POSTs) counts against the same address allowance.
    r = await client.get("/open311/v2/services.json", scope_base=remote)
    assert r.status_code == 429 and r.headers["X-Content-Type-Options"] == "nosniff"
    # Loopback front ends are exempt from the address limit (the load benchmark).
    for _ in range(10):
        r = await client.get("/api/v1/grids", headers=key, scope_base=LOOPBACK)
    assert r.status_code == 200


async def test_rate_limit_in_chat_is_one_polite_message(services: Services) -> None:
    from adapters.guard import chat_turn_allowed

    services.config.limits.per_user_per_minute = 2
    await _early_in_a_window()
    verdicts = [await chat_turn_allowed(services, "wechat", "o-flood") for _ in range(5)]
    assert verdicts == [(True, False), (True, False), (False, True), (False, False),
                        (False, False)]
    assert (await chat_turn_allowed(services, "wechat", "o-other"))[0]


@pytest.mark.parametrize("channel", ["wechat"])
async def test_rate_limit_through_the_wechat_webhook(services: Services, tmp_path,
                                                     channel: str) -> None:
    from tests.fixtures.wechat.fake_api import FakeWeChat
    from tests.test_wechat import connect

    fake = FakeWeChat().start()
    try:
        server, _ = await connect(services, fake, tmp_path)
        services.config.limits.per_user_per_minute = 2
        await _early_in_a_window()
        answers = [await server.say("o-flood", "你好") for _ in range(4)]
        assert "稍等" not in answers[0] and "稍等" not in answers[1]
        assert "稍等一分钟" in answers[2] and answers[3] == ""  # then silence
    finally:
        fake.stop()
