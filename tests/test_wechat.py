"""The official-account channel: wechatpy's real crypto and client against a local fake
WeChat API (tests/fixtures/wechat/fake_api.py). No network."""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import time
from pathlib import Path
from typing import Any

import pytest
import xmltodict
from typer.testing import CliRunner
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import WeChatClientException
from wechatpy.utils import WeChatSigner

from adapters import inbound, wechat
from adapters.wechat_api import official_api
from bot.cases import CaseDraft, ReporterRef
from bot.config import PROJECT_ROOT, WechatConfig
from bot.coords import wgs84_to_gcj02
from bot.kv import PREFIX
from bot.services import Services
from bot.texts import t
from bot.workflow import Status
from shell.app import create_app
from tests.conftest import FakeClock
from tests.fixtures.wechat.fake_api import JPEG, FakeWeChat, fixture

TOKEN = "gridbot-wechat-token"
APP_ID = "wx5f3c2a1b0e9d8c7b"
AES_KEY = base64.b64encode(b"gridbot-test-aes-key-32-bytes!!!").decode().rstrip("=")
TEMPLATE = "TPL-case-status"
# 同济社区第3网格 in WGS-84, as WeChat would send it (GCJ-02).
PIN = wgs84_to_gcj02(23.0215, 113.1214)
_ids = itertools.count(int(time.time()) * 1000)


def next_id() -> int:
    return next(_ids)


class WeChatServer:
    """Plays WeChat's side of the webhook: signs (and in safe mode encrypts) messages the way
    WeChat does and reads the passive replies back."""

    def __init__(self, client: Any, aes: bool, token: str = TOKEN) -> None:
        self.client = client
        self.token = token
        self.crypto = WeChatCrypto(token, AES_KEY, APP_ID) if aes else None

    def sign(self, timestamp: str, nonce: str) -> str:
        signer = WeChatSigner()
        signer.add_data(self.token, timestamp, nonce)
        return signer.signature

    async def post(self, xml: str, *, signature: str | None = None,
                   msg_signature: str | None = None, timestamp: str | None = None) -> Any:
        timestamp = timestamp or str(int(time.time()))
        nonce = str(next_id())
        query = {"signature": self.sign(timestamp, nonce) if signature is None else signature,
                 "timestamp": timestamp, "nonce": nonce, "openid": "ignored"}
        body = xml
        if self.crypto is not None:
            envelope = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, timestamp))["xml"]
            body = ("<xml><ToUserName><![CDATA[gh_3a9f1c2b7d01]]></ToUserName>"
                    f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>")
            query.update(encrypt_type="aes", msg_signature=envelope["MsgSignature"]
                         if msg_signature is None else msg_signature)
        return await self.client.post("/wechat", query_string=query, data=body.encode())

    async def reply(self, response: Any) -> str:
        """The passive reply's text ('' for 'success')."""
        assert response.status_code == 200, response.status_code
        body = await response.get_data(as_text=True)
        if body == wechat.SUCCESS:
            return ""
        if self.crypto is not None:
            outer = xmltodict.parse(body)["xml"]
            body = self.crypto.decrypt_message(body, outer["MsgSignature"], outer["TimeStamp"],
                                               outer["Nonce"])
        return xmltodict.parse(body)["xml"]["Content"]

    async def say(self, openid: str, text: str, msgid: int | None = None) -> str:
        xml = fixture("text", openid=openid, time=int(time.time()), content=text,
                      msgid=msgid or next_id())
        return await self.reply(await self.post(xml))

    async def send(self, name: str, openid: str, **values: Any) -> str:
        # Events carry no MsgId: their CreateTime tells them apart (as second-apart clicks).
        xml = fixture(name, openid=openid, time=values.pop("time", next_id()),
                      msgid=values.pop("msgid", next_id()), **values)
        return await self.reply(await self.post(xml))


async def connect(services: Services, fake: FakeWeChat, tmp_path: Path, aes: bool = False,
                  **settings: Any) -> tuple[WeChatServer, wechat.WechatChannel]:
    settings = {"token": TOKEN, "app_id": APP_ID, "app_secret": "app-secret",
                "encoding_aes_key": AES_KEY if aes else "", "api_base_url": fake.base_url,
                "status_template_id": TEMPLATE, **settings}
    services.config.wechat = WechatConfig(**settings)
    await wechat.start(services)
    channel = wechat.channel_for(services)
    assert channel is not None
    channel.media_dir = tmp_path / "media"
    client = create_app(services.config, services, background=False).test_client()
    return WeChatServer(client, aes), channel


MANHOLE = "我家小区门口的井盖不见了，晚上很危险"


async def report(server: WeChatServer, openid: str, text: str = MANHOLE,
                 confirm_id: int | None = None) -> str:
    """Describe, (pick the first category), send the pin, confirm: the filing reply."""
    answer = await server.say(openid, text)
    if "回复序号" in answer:
        answer = await server.say(openid, "1")
    if "请确认" not in answer:
        answer = await server.send("location", openid, lat=PIN[0], lon=PIN[1])
    assert "请确认" in answer, answer
    return await server.say(openid, "确认", confirm_id)


def case_number(text: str) -> str:
    found = re.search(r"案件编号：(\S+)", text)
    assert found, text
    return found.group(1)


# -- the webhook -------------------------------------------------------------------------------

async def test_handshake_checks_the_signature(services: Services, fake_api: FakeWeChat,
                                              tmp_path: Path) -> None:
    server, _ = await connect(services, fake_api, tmp_path)
    ts, nonce = str(int(time.time())), "12345"
    query = {"signature": server.sign(ts, nonce), "timestamp": ts, "nonce": nonce,
             "echostr": "echo-4471"}
    r = await server.client.get("/wechat", query_string=query)
    assert r.status_code == 200 and await r.get_data(as_text=True) == "echo-4471"
    r = await server.client.get("/wechat", query_string={**query, "signature": "0" * 40})
    assert r.status_code == 403
    r = await server.client.get("/wechat", query_string={"echostr": "x"})
    assert r.status_code == 403


async def test_channel_without_token_is_off(services: Services) -> None:
    services.config.wechat = WechatConfig()
    await wechat.start(services)
    client = create_app(services.config, services, background=False).test_client()
    assert (await client.post("/wechat", data=b"<xml/>")).status_code == 404
    assert "wechat" not in services.outbox.senders


@pytest.mark.parametrize("aes", [False, True], ids=["plaintext", "aes"])
async def test_report_round_trip(services: Services, fake_api: FakeWeChat, tmp_path: Path,
                                 aes: bool) -> None:
    server, _ = await connect(services, fake_api, tmp_path, aes=aes)
    filed = await report(server, "o-round-trip")
    number = case_number(filed)
    case = await services.cases.get(number, ReporterRef("wechat", "o-round-trip"))
    assert case is not None and case.status == Status.DISPATCHED
    assert case.grid_code == "440604001030103"  # the GCJ-02 pin was converted
    # WeChat's label for the pin and the gazetteer's nearest place are the address.
    near = services.locator.nearest(case.lat, case.lon)
    assert case.address == (f"广东省佛山市禅城区（{near}附近）" if near else "广东省佛山市禅城区")
    listed = await server.say("o-round-trip", "我的案件")
    assert number in listed
    # The reply goes back to the user, from the account.
    r = await server.post(fixture("text", openid="o-round-trip", time=int(time.time()),
                                  content="帮助", msgid=next_id()))
    body = await r.get_data(as_text=True)
    if aes:
        assert "<Encrypt>" in body and "帮助" not in body and "o-round-trip" not in body
        outer = xmltodict.parse(body)["xml"]
        body = server.crypto.decrypt_message(body, outer["MsgSignature"], outer["TimeStamp"],
                                             outer["Nonce"])
    reply = xmltodict.parse(body)["xml"]
    assert reply["ToUserName"] == "o-round-trip" and reply["FromUserName"] == "gh_3a9f1c2b7d01"
    assert reply["MsgType"] == "text" and reply["Content"] == t("help")


async def test_buttons_become_lines_the_user_can_type() -> None:
    from bot.messages import Button, Reply

    text = wechat.render_text([
        Reply("请选择：\n1. 市容环境 › 暴露垃圾\n0. 都不是", [Button("市容环境 › 暴露垃圾", "1")]),
        Reply("回复「确认」提交。", [Button("确认", "确认"), Button("稍后", "later")]),
    ])
    assert text.count("暴露垃圾") == 1  # already a numbered line
    assert text.count("「确认」") == 1 and "回复「later」：稍后" in text


@pytest.mark.parametrize("aes", [False, True], ids=["plaintext", "aes"])
async def test_bad_signatures_get_403_and_touch_nothing(services: Services,
                                                        fake_api: FakeWeChat, tmp_path: Path,
                                                        aes: bool) -> None:
    server, _ = await connect(services, fake_api, tmp_path, aes=aes)
    xml = fixture("text", openid="o-forger", time=int(time.time()), content="确认",
                  msgid=4242)
    attempts = [{"signature": "0" * 40}, {"signature": ""},
                {"timestamp": str(int(time.time()) - 3600)}]  # a replay of an old request
    if aes:
        attempts.append({"msg_signature": "f" * 40})
    for tampered in attempts:
        r = await server.post(xml, **tampered)
        assert r.status_code == 403, tampered
    r = await server.client.post("/wechat", data=xml.encode())  # no query at all
    assert r.status_code == 403
    assert await services.dialogs.load("wechat", "o-forger") == {}
    assert not [k async for k in services.redis.scan_iter(f"{PREFIX}*4242*")]
    assert await services.redis.get(f"{PREFIX}wxlast:o-forger") is None
    assert await services.cases.list() == []


async def test_plaintext_body_refused_in_safe_mode(services: Services, fake_api: FakeWeChat,
                                                   tmp_path: Path) -> None:
    server, _ = await connect(services, fake_api, tmp_path, aes=True)
    ts, nonce = str(int(time.time())), "1"
    r = await server.client.post("/wechat", data=fixture("text", openid="o", content="x").encode(),
                                 query_string={"signature": server.sign(ts, nonce),
                                               "timestamp": ts, "nonce": nonce})
    assert r.status_code == 400


async def test_retries_get_one_case_and_the_same_answer(services: Services,
                                                        fake_api: FakeWeChat,
                                                        tmp_path: Path) -> None:
    server, _ = await connect(services, fake_api, tmp_path, aes=True)
    answer = await server.say("o-retry", "季华五路18号门口路灯不亮，晚上很黑")
    if "回复序号" in answer:
        answer = await server.say("o-retry", "1")
    assert "请确认" in answer
    confirm = fixture("text", openid="o-retry", time=int(time.time()), content="确认",
                      msgid=next_id())
    first = await server.reply(await server.post(confirm))
    retries = [await server.reply(await server.post(confirm)) for _ in range(2)]
    assert "案件编号" in first and retries == [first, first]
    assert len(await services.cases.list()) == 1
    # WeChat's retries can also overlap the first attempt.
    again = fixture("text", openid="o-retry", time=int(time.time()), content="我的案件",
                    msgid=next_id())
    answers = await asyncio.gather(*(server.post(again) for _ in range(3)))
    texts = {await server.reply(r) for r in answers}
    assert len(texts) == 1 and case_number(first) in texts.pop()


async def test_slow_dialog_answers_success_and_pushes_the_reply(
    services: Services, fake_api: FakeWeChat, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, channel = await connect(services, fake_api, tmp_path, aes=True)
    channel.reply_budget_s = 0.3  # WeChat's ~4 s, shrunk so the test is quick
    real = inbound.handle

    async def slow(msg: Any, s: Services) -> Any:
        await asyncio.sleep(0.8)
        return await real(msg, s)

    monkeypatch.setattr(inbound, "handle", slow)
    xml = fixture("text", openid="o-slow", time=int(time.time()), content="帮助",
                  msgid=next_id())
    started = time.monotonic()
    assert await server.reply(await server.post(xml)) == ""  # 'success': no passive reply
    assert time.monotonic() - started < 0.7
    assert await server.reply(await server.post(xml)) == ""  # a retry meanwhile: same
    assert fake_api.texts_to("o-slow") == []
    await channel.drain()
    assert fake_api.texts_to("o-slow") == [t("help")]  # once, by customer-service message


# -- message types -----------------------------------------------------------------------------

async def test_every_message_type(services: Services, fake_api: FakeWeChat,
                                  tmp_path: Path) -> None:
    server, channel = await connect(services, fake_api, tmp_path)
    user = "o-types"
    assert await server.send("event_subscribe", user) == f"{t('wechat.welcome')}\n\n{t('help')}"
    assert t("wechat.welcome") in await server.send("event_subscribe_scan", user)
    assert await server.send("event_click", user, key="REPORT") == t("wechat.how_to_report")
    assert await server.send("event_click", user, key="HELP") == t("help")
    assert await server.send("event_click", user, key="MY_CASES") == t("cases.none")
    assert await server.send("event_location", user, lat=23.02, lon=113.12) == ""
    # A "video" whose bytes are a JPEG (what the fake serves for this id): refused.
    assert await server.send("video", user, media="v1") == t("media.video_not_video")
    assert await server.send("voice", "o-voice", media="m1", content="你好") == t("greeting")
    assert await server.send("voice_unrecognised", user, media="m2") == \
        t("wechat.voice_needs_text")
    assert await server.send("image", user, media="MEDIA_photo-1") == t("photo_first")
    assert await server.send("location", user, lat=PIN[0], lon=PIN[1]) == t("location_first")
    assert await server.send("event_unsubscribe", user) == ""
    await channel.drain()
    stored = wechat.media_path(channel.media_dir, "MEDIA_photo-1")
    assert stored.read_bytes() == JPEG  # fetched through the media API
    # Bytes that are no photo are not kept (the console would otherwise serve them).
    assert await server.send("image", "o-not-image", media="NOTIMG_1") == t("photo_first")
    await channel.drain()
    assert not wechat.media_path(channel.media_dir, "NOTIMG_1").exists()
    assert await services.dialogs.load("wechat", user) != {}


async def test_malformed_xml_and_entity_expansion_get_400_fast(
    services: Services, fake_api: FakeWeChat, tmp_path: Path
) -> None:
    for aes in (False, True):
        server, _ = await connect(services, fake_api, tmp_path, aes=aes)
        bomb = fixture("billion_laughs", openid="o-bomb", time=int(time.time()),
                       msgid=next_id())
        for body in (bomb, "<xml><MsgType>text</MsgType><Content>unclosed", "not xml at all",
                     "<xml><Content>no type</Content></xml>"):
            started = time.monotonic()
            r = await server.post(body)
            assert r.status_code == 400, (aes, body[:30])
            assert time.monotonic() - started < 1
    assert await services.cases.list() == []
    assert await services.dialogs.load("wechat", "o-bomb") == {}


# -- pushes ------------------------------------------------------------------------------------

async def _file_for(s: Services, openid: str) -> str:
    code = next(i.code for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    filing = await s.cases.file(CaseDraft(text="楼下堆满了垃圾", item_code=code,
                                          grid_code="440604001030103", lat=23.0215,
                                          lon=113.1214), ReporterRef("wechat", openid))
    return filing.case.number


async def test_updates_by_customer_service_within_48_hours_then_by_template(
    clocked: Services, clock: FakeClock, fake_api: FakeWeChat, tmp_path: Path
) -> None:
    s = clocked
    server, _ = await connect(s, fake_api, tmp_path)
    await server.say("o-48h", "你好")  # opens the user's 48-hour window
    number = await _file_for(s, "o-48h")
    await s.cases.transition(number, Status.HANDLING, "test")
    assert await s.outbox.run_once() == 1
    assert fake_api.texts_to("o-48h") == [
        t("citizen.status_changed", number=number, status=t("status.handling"))]
    clock.advance(hours=49)
    await s.cases.transition(number, Status.HANDLED, "test")
    assert await s.outbox.run_once() == 1
    [sent] = fake_api.sent("/cgi-bin/message/template/send")
    assert sent.body["touser"] == "o-48h" and sent.body["template_id"] == TEMPLATE
    assert sent.body["data"]["keyword1"]["value"] == number
    assert sent.body["data"]["keyword2"]["value"] == t("status.handled")
    assert len(fake_api.texts_to("o-48h")) == 1


async def test_the_48_hour_window_survives_a_restart_of_the_store(
    clocked: Services, clock: FakeClock, fake_api: FakeWeChat, tmp_path: Path
) -> None:
    """The window is kept in the database too: with Redis emptied (the embedded store of a
    restarted server), a status push still goes as a customer-service message, and no
    template is needed."""
    s = clocked
    server, channel = await connect(s, fake_api, tmp_path, status_template_id="")
    await server.say("o-restart", "你好")
    await channel.work.drain()  # the database note is written off the reply's path
    number = await _file_for(s, "o-restart")
    await s.redis.flushdb()
    await s.cases.transition(number, Status.HANDLING, "test")
    assert await s.outbox.run_once() == 1
    assert fake_api.texts_to("o-restart") == [
        t("citizen.status_changed", number=number, status=t("status.handling"))]
    assert not fake_api.sent("/cgi-bin/message/template/send")
    clock.advance(hours=49)  # the window closed: with no template the push is refused
    await s.cases.transition(number, Status.HANDLED, "test")
    assert await s.outbox.run_once() == 0


async def test_expired_token_is_refreshed_and_the_call_retried_once(
    services: Services, fake_api: FakeWeChat, tmp_path: Path
) -> None:
    _, channel = await connect(services, fake_api, tmp_path)
    await channel.send_text("o-token", "一")
    assert fake_api.tokens_issued == 1
    fake_api.expire_tokens()
    await channel.send_text("o-token", "二")
    assert fake_api.tokens_issued == 2
    assert fake_api.texts_to("o-token") == ["一", "二"]
    assert [c.body["text"]["content"] for c in fake_api.rejected] == ["二"]  # 40001 once

    fake_api.valid_tokens = _Never()  # a token that never works: one refresh, then give up
    with pytest.raises(WeChatClientException) as failed:
        await channel.send_text("o-token", "三")
    assert failed.value.errcode == 40001 and fake_api.tokens_issued == 3


class _Never(set):
    def add(self, _item: object) -> None:
        pass


async def test_access_token_is_fetched_once_for_all_processes(
    services: Services, fake_api: FakeWeChat
) -> None:
    # Two clients on one Redis: two server processes as far as the token is concerned.
    apis = [official_api(APP_ID, "app-secret", fake_api.base_url, services.redis)
            for _ in range(2)]
    await asyncio.gather(*(api.call(lambda c, i=i: c.message.send_text("o-share", str(i)))
                           for i, api in enumerate(apis * 3)))
    assert fake_api.tokens_issued == 1
    assert len(fake_api.texts_to("o-share")) == 6


async def test_a_process_keeps_its_token_until_wechat_refuses_it(
    services: Services, fake_api: FakeWeChat
) -> None:
    """Sends reuse the token read from Redis (no Redis read per send); when another process
    has replaced it and WeChat refuses the old one, the new one is read, not fetched again."""
    first, second = (official_api(APP_ID, "app-secret", fake_api.base_url, services.redis)
                     for _ in range(2))
    await first.call(lambda c: c.message.send_text("o-copy", "一"))
    await second.call(lambda c: c.message.send_text("o-copy", "二"))
    old = await asyncio.to_thread(lambda: second.client.access_token)
    new = await asyncio.to_thread(first.client.ensure_token, old)  # the first replaces it
    assert new != old and fake_api.tokens_issued == 2
    await second.call(lambda c: c.message.send_text("o-copy", "三"))  # its copy still works
    assert fake_api.sent("/cgi-bin/message/custom/send")[-1].query["access_token"] == old
    fake_api.valid_tokens.discard(old)  # WeChat's 5 minutes of grace are over
    await second.call(lambda c: c.message.send_text("o-copy", "四"))  # refused: reads the new
    assert fake_api.sent("/cgi-bin/message/custom/send")[-1].query["access_token"] == new
    assert fake_api.tokens_issued == 2
    assert fake_api.texts_to("o-copy") == ["一", "二", "三", "四"]


async def test_push_to_a_user_who_left_gives_up(services: Services, fake_api: FakeWeChat,
                                                tmp_path: Path) -> None:
    await connect(services, fake_api, tmp_path, status_template_id="")
    number = await _file_for(services, "o-gone")
    await services.cases.transition(number, Status.HANDLING, "test")
    assert await services.outbox.run_once() == 0  # no window, no template: never deliverable
    from sqlalchemy import select

    from bot.models import OutboxMessage
    async with services.db.session() as session:
        row = (await session.execute(select(OutboxMessage).where(
            OutboxMessage.channel == "wechat"))).scalar_one()
    assert row.status == "failed" and "status_template_id" in row.last_error


def test_gridbot_wechat_menu(fake_api: FakeWeChat, tmp_path: Path) -> None:
    from shell.cli import app

    env = {"GRIDBOT_WECHAT_TOKEN": TOKEN, "GRIDBOT_WECHAT_APP_ID": APP_ID,
           "GRIDBOT_WECHAT_APP_SECRET": "s", "GRIDBOT_WECHAT_API_BASE_URL": fake_api.base_url,
           "GRIDBOT_REDIS_URL": "", "GRIDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db"}
    result = CliRunner().invoke(app, ["wechat", "menu", "--config",
                                      str(PROJECT_ROOT / "config.toml")], env=env)
    assert result.exit_code == 0, result.output
    [created] = fake_api.sent("/cgi-bin/menu/create")
    assert [(b["name"], b["key"]) for b in created.body["button"]] == [
        ("我要上报", "REPORT"), ("我的案件", "MY_CASES"), ("使用说明", "HELP")]


# -- short videos ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["video", "shortvideo"])
async def test_a_video_is_kept_as_case_media(services: Services, fake_api: FakeWeChat,
                                            tmp_path: Path, kind: str) -> None:
    """A video or short video is downloaded through the media API while the person waits,
    checked and stored once under the channel's media folder; the case refers to it."""
    from sqlalchemy import select

    from bot.media_store import is_video_ref, stored_key
    from bot.models import CaseMedia
    from tests.fixtures.video import MP4

    server, channel = await connect(services, fake_api, tmp_path)
    user = f"o-{kind}"
    assert await server.send(kind, user, media=f"VIDEO_{kind}") == t("video_first")
    assert [c.query["media_id"] for c in fake_api.sent("/cgi-bin/media/get")] == \
        [f"VIDEO_{kind}"]
    number = case_number(await report(server, user))
    case = await services.cases.get(number)
    async with services.db.session() as session:
        [media] = (await session.execute(select(CaseMedia).where(
            CaseMedia.case_id == case.id))).scalars().all()
    assert is_video_ref(media.ref) and media.ref.endswith(".mp4") and media.kind == "video"
    key = stored_key(media.ref)
    assert key and (channel.media_dir / key).read_bytes() == MP4


async def test_a_video_behind_a_download_link_is_followed(services: Services,
                                                         fake_api: FakeWeChat,
                                                         tmp_path: Path) -> None:
    """For video media WeChat's media API answers with a link ({"video_url": …}): it is
    followed, and the same bytes are the same stored file."""
    from tests.fixtures.video import MP4

    server, channel = await connect(services, fake_api, tmp_path)
    assert await server.send("video", "o-link", media="VIDEOURL_1") == t("video_first")
    assert [c.path for c in fake_api.calls][-1] == "/video-file/VIDEOURL_1"
    assert [p.read_bytes() for p in (channel.media_dir / "video").iterdir()] == [MP4]

