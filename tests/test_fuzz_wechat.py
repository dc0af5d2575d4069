"""Hostile input on the XML webhooks: the official account (plain and AES safe mode, real
wechatpy crypto) and WeCom, plus the mini-program's JSON API. Entity expansion, external
entities, encodings, huge and random documents, missing fields: each gets 400/403/413 or a
clear reply, fast, and nothing is filed.

Hypothesis drives a synchronous check from a worker thread; each example's request runs on
the test's own event loop (where the services live) through run_coroutine_threadsafe.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import xmltodict
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import wechat_mp
from bot.config import WechatConfig
from bot.services import Services
from tests.fixtures.wechat.fake_api import FakeWeChat, fixture
from tests.test_wechat import AES_KEY, APP_ID, WeChatServer, next_id
from tests.test_wechat import connect as connect_wechat
from tests.test_wecom import CORP_ID as WECOM_CORP_ID
from tests.test_wecom import WeComServer
from tests.test_wecom import connect as connect_wecom

EXAMPLES = 40
REFUSED = {400, 403}

BOMBS = {
    "billion laughs": fixture("billion_laughs", openid="o-bomb", time=1, msgid=1),
    "external entity": '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM '
                       '"file:///etc/passwd">]><xml><MsgType>text</MsgType>'
                       "<FromUserName>o-bomb</FromUserName><Content>&e;</Content></xml>",
    "parameter entity": '<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]>'
                        "<xml><MsgType>text</MsgType></xml>",
    "lower-case doctype": '<!doctype xml [<!entity a "aaaaaaaaaa">]><xml><Content>&a;'
                          "</Content></xml>",
    "quadratic blowup": '<!DOCTYPE x [<!ENTITY a "' + "a" * 50_000 + '">]><xml><Content>'
                        + "&a;" * 15 + "</Content></xml>",
    # UTF-16 hides '<!DOCTYPE' from a byte scan for it; WeChat only ever sends UTF-8.
    "utf-16 bomb": fixture("billion_laughs", openid="o-bomb", time=1, msgid=1),
}
FIELDS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId",
          "Location_X", "Location_Y", "Scale", "Label", "PicUrl", "MediaId", "Format",
          "Recognition", "Event", "EventKey", "Ticket"]
MSG_TYPES = ["text", "image", "voice", "video", "shortvideo", "location", "link", "event",
             "file", "", "TEXT", "<", "x" * 300]
# Values that are awkward for a parser or a dialog: CDATA terminators, markup, huge numbers.
AWKWARD = st.one_of(st.text(max_size=60), st.sampled_from(
    ["]]>", "<![CDATA[", "&amp;", "&#0;", "&#x1F600;", "-1", "1e309", "NaN", "9" * 40,
     "\u202e\u200b", "<script>alert(1)</script>", "' OR 1=1 --"]))


def _cdata(value: str) -> str:
    return f"<![CDATA[{value}]]>"


@st.composite
def wechat_documents(draw: st.DrawFn) -> bytes:
    """Message-shaped XML with fields missing, repeated, of the wrong type or broken, in
    UTF-8, GBK or random bytes."""
    fields = draw(st.lists(st.sampled_from(FIELDS), max_size=8))
    parts = [f"<MsgType>{_cdata(draw(st.sampled_from(MSG_TYPES)))}</MsgType>"]
    for name in fields:
        value = draw(AWKWARD)
        parts.append(f"<{name}>{_cdata(value) if draw(st.booleans()) else value}</{name}>")
    xml = "<xml>" + "".join(draw(st.permutations(parts))) + "</xml>"
    encoding = draw(st.sampled_from(["utf-8", "gbk", "cut", "random"]))
    if encoding == "random":
        return draw(st.binary(max_size=400))
    data = xml.encode("gbk", "replace") if encoding == "gbk" else xml.encode()
    return data[: draw(st.integers(0, len(data)))] if encoding == "cut" else data


def run_examples(strategy: st.SearchStrategy[Any],
                 check: Callable[[Any], Awaitable[None]]) -> Awaitable[None]:
    loop = asyncio.get_running_loop()

    @given(strategy)
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def each(value: Any) -> None:
        asyncio.run_coroutine_threadsafe(check(value), loop).result(timeout=30)

    return asyncio.to_thread(each)


async def _post_raw(server: WeChatServer, body: bytes, timestamp: str | None = None) -> Any:
    """Sign like WeChat; in safe mode encrypt the body as given (bytes and all)."""
    timestamp = timestamp or str(int(time.time()))
    nonce = str(next_id())
    query = {"signature": server.sign(timestamp, nonce), "timestamp": timestamp,
             "nonce": nonce}
    if server.crypto is not None:
        encrypt = encrypt_bytes(body, AES_KEY, APP_ID)
        query.update(encrypt_type="aes", msg_signature=sha1_signature(
            server.token, timestamp, nonce, encrypt))
        body = (f"<xml><ToUserName><![CDATA[gh_3a9f1c2b7d01]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>").encode()
    return await server.client.post("/wechat", query_string=query, data=body)


def encrypt_bytes(body: bytes, aes_key: str, app_id: str) -> str:
    """WeChat's safe-mode envelope around arbitrary bytes (wechatpy's own encryptor takes
    only text that encodes as UTF-8): random(16) + length + body + appid, PKCS#7 to 32,
    AES-256-CBC with the key's first 16 bytes as IV."""
    key = base64.b64decode(aes_key + "=")
    plain = os.urandom(16) + struct.pack(">I", len(body)) + body + app_id.encode()
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def sha1_signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


@pytest.mark.parametrize("aes", [False, True], ids=["plain", "aes"])
async def test_entity_attacks_are_refused_fast(services: Services, fake_api: FakeWeChat,
                                               tmp_path: Path, aes: bool) -> None:
    server, _ = await connect_wechat(services, fake_api, tmp_path, aes=aes)
    for name, doc in BOMBS.items():
        body = doc.encode("utf-16") if name == "utf-16 bomb" else doc.encode()
        started = time.perf_counter()
        r = await _post_raw(server, body)
        elapsed = time.perf_counter() - started
        assert r.status_code == 400, (name, r.status_code)
        # A bound, not a benchmark: an expanded document would take seconds and gigabytes.
        assert elapsed < 0.5, (name, elapsed)
    assert await services.cases.list() == []
    assert await services.dialogs.load("wechat", "o-bomb") == {}


@pytest.mark.parametrize("aes", [False, True], ids=["plain", "aes"])
async def test_random_documents_get_400_or_a_clear_reply(services: Services,
                                                         fake_api: FakeWeChat,
                                                         tmp_path: Path, aes: bool) -> None:
    server, channel = await connect_wechat(services, fake_api, tmp_path, aes=aes)
    statuses: list[int] = []

    async def check(body: bytes) -> None:
        started = time.perf_counter()
        r = await _post_raw(server, body)
        statuses.append(r.status_code)
        assert r.status_code in {200, *REFUSED}, r.status_code
        if r.status_code == 200:
            answer = await server.reply(r)  # decrypts and parses: a well-formed reply
            assert "Traceback" not in answer
        assert time.perf_counter() - started < 5

    await run_examples(wechat_documents(), check)
    await channel.drain()
    assert 400 in statuses  # the generator reached the refusals, not only happy paths
    assert await services.cases.list() == []


async def test_huge_and_stale_requests(services: Services, fake_api: FakeWeChat,
                                       tmp_path: Path) -> None:
    server, _ = await connect_wechat(services, fake_api, tmp_path)
    limit = services.config.server.max_body_bytes
    huge = fixture("text", openid="o-big", time=int(time.time()), msgid=next_id(),
                   content="井" * limit).encode()
    started = time.perf_counter()
    assert (await _post_raw(server, huge)).status_code == 413
    assert time.perf_counter() - started < 1
    # Replays: a correctly signed request from six minutes ago (or ahead) is refused.
    text = fixture("text", openid="o-old", time=1, msgid=next_id(), content="路灯不亮")
    for skew in (-360, 360):
        stale = str(int(time.time()) + skew)
        assert (await _post_raw(server, text.encode(), timestamp=stale)).status_code == 403
    assert (await _post_raw(server, text.encode(), timestamp="abc")).status_code == 403
    assert await services.dialogs.load("wechat", "o-old") == {}
    assert await services.cases.list() == []


async def test_wecom_hostile_documents(services: Services, fake_api: FakeWeChat,
                                       tmp_path: Path) -> None:
    server: WeComServer = await connect_wecom(services, fake_api, tmp_path)
    for name, doc in BOMBS.items():
        if name == "utf-16 bomb":
            continue
        started = time.perf_counter()
        inner = await server.post(doc)  # encrypted: the DTD is found after decrypting
        outer = await server.client.post("/wecom", data=doc.encode())
        assert (inner.status_code, outer.status_code) == (400, 400), name
        assert time.perf_counter() - started < 0.5, name

    # Replays: correctly signed and encrypted, but six minutes old (or ahead) → 403.
    for skew, status in ((-360, 403), (360, 403), (0, 200)):
        stamp = str(int(time.time()) + skew)
        nonce = str(next_id())
        xml = fixture("wecom_text", userid="lijing", time=int(stamp), content="你好",
                      msgid=next_id())
        envelope = xmltodict.parse(server.crypto.encrypt_message(xml, nonce, stamp))["xml"]
        body = (f"<xml><ToUserName><![CDATA[{WECOM_CORP_ID}]]></ToUserName>"
                f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>")
        r = await server.client.post("/wecom", data=body.encode(), query_string={
            "msg_signature": envelope["MsgSignature"], "timestamp": stamp, "nonce": nonce})
        assert r.status_code == status, skew

    async def check(body: bytes) -> None:
        r = await server.post(body.decode("utf-8", "replace"))
        assert r.status_code in {200, *REFUSED}, r.status_code
        if r.status_code == 200:
            await server.reply(r)

    await run_examples(wechat_documents(), check)
    assert await services.cases.list() == []


async def test_mini_program_json_api(services: Services, fake_api: FakeWeChat) -> None:
    services.config.wechat = WechatConfig(mp_app_id="wxmp0123456789abcd",
                                          mp_app_secret="mp-secret",
                                          session_secret="s" * 32,
                                          api_base_url=fake_api.base_url)
    await wechat_mp.start(services)
    mp = wechat_mp.channel_for(services)
    assert mp is not None
    from shell.app import create_app

    client = create_app(services.config, services, background=False).test_client()
    auth = {"Authorization": f"Bearer {mp.token_for('o-mp-fuzz')}"}
    paths = ["/api/mp/login", "/api/mp/reports", "/api/mp/reports/reply",
             "/api/mp/cases/20261122-0001/rating", "/api/mp/subscriptions"]
    bodies = st.one_of(
        st.binary(max_size=300),
        st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | AWKWARD,
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.sampled_from(
                         ["text", "location", "lat", "lon", "code", "score", "note",
                          "template_id", "accepted", "confirm", "address"]), inner,
                         max_size=5), max_leaves=12).map(lambda v: _json_bytes(v)))

    async def check(value: tuple[str, bytes]) -> None:
        path, body = value
        r = await client.post(path, data=body, headers={**auth,
                                                        "Content-Type": "application/json"})
        assert r.status_code < 500, (path, body[:80], r.status_code)
        if r.status_code >= 400:
            assert (await r.get_json())["error"]

    await run_examples(st.tuples(st.sampled_from(paths), bodies), check)
    assert await services.cases.list() == []


def _json_bytes(value: Any) -> bytes:
    import json

    return json.dumps(value, ensure_ascii=False, allow_nan=True).encode()
