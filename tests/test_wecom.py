"""WeCom for grid workers: group-robot cards and the app callback with worker commands, and
the whole case lifecycle across the official account and WeCom — real wechatpy crypto and
clients, the local fake WeChat/WeCom API. No network."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

import xmltodict
from wechatpy.crypto import _get_signature
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

from adapters import wecom
from bot.cases import CaseDraft, ReporterRef
from bot.config import WecomConfig
from bot.media_store import LocalStore
from bot.services import Services
from bot.texts import t
from bot.workflow import Status
from shell.app import create_app
from tests.conftest import FakeClock
from tests.fixtures.wechat.fake_api import JPEG, FakeWeChat, fixture
from tests.test_wechat import PIN, case_number, next_id
from tests.test_wechat import connect as connect_wechat

CORP_ID = "ww5f3c2a1b0e9d8c7b"
TOKEN = "gridbot-wecom-token"
AES_KEY = base64.b64encode(b"gridbot-wecom-aes-key-32-bytes!!").decode().rstrip("=")
GRID = "440604001030103"  # 同济社区第3网格
OTHER_GRID = "440604001010101"  # 东华社区第1网格
ROBOT = "robot-key-tongji-3"


class WeComServer:
    """Plays WeCom's side of the app callback: encrypts and signs, reads replies back."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)

    async def post(self, xml: str, msg_signature: str | None = None) -> Any:
        ts, nonce = str(int(time.time())), str(next_id())
        envelope = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, ts))["xml"]
        body = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
                f"<AgentID><![CDATA[1000002]]></AgentID>"
                f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>")
        query = {"msg_signature": msg_signature or envelope["MsgSignature"],
                 "timestamp": ts, "nonce": nonce}
        return await self.client.post("/wecom", query_string=query, data=body.encode())

    async def reply(self, response: Any) -> str:
        assert response.status_code == 200, response.status_code
        body = await response.get_data(as_text=True)
        if body == wecom.SUCCESS:
            return ""
        outer = xmltodict.parse(body)["xml"]
        xml = self.crypto.decrypt_message(body, outer["MsgSignature"], outer["TimeStamp"],
                                          outer["Nonce"])
        return xmltodict.parse(xml)["xml"]["Content"]

    async def say(self, user: str, text: str, msgid: int | None = None) -> str:
        xml = fixture("wecom_text", userid=user, time=int(time.time()), content=text,
                      msgid=msgid or next_id())
        return await self.reply(await self.post(xml))

    async def photo(self, user: str, media: str) -> str:
        xml = fixture("wecom_image", userid=user, time=int(time.time()), media=media,
                      msgid=next_id())
        return await self.reply(await self.post(xml))


async def connect(services: Services, fake: FakeWeChat, tmp_path: Path) -> WeComServer:
    services.config.wecom = WecomConfig(
        corp_id=CORP_ID, agent_id="1000002", secret="wecom-secret", token=TOKEN,
        encoding_aes_key=AES_KEY, api_base_url=fake.base_url,
        webhook_base_url=fake.base_url + "cgi-bin/webhook/send")
    await wecom.start(services)
    channel = wecom.channel_for(services)
    assert channel is not None
    channel.media_dir = tmp_path / "media"
    return WeComServer(create_app(services.config, services, background=False).test_client())


async def bind_robot(s: Services, grid: str = GRID, key: str = ROBOT) -> None:
    code = await s.teams.new_bind_code(grid)
    assert await s.teams.bind(code, "wecom", key, s.cases.clock()) == grid


async def add_worker(s: Services, user: str, grid: str = GRID) -> None:
    await s.teams.add_worker(user, "grid_worker", f"grid:{grid}", "wecom", user,
                             s.cases.clock())


async def file_case(s: Services, reporter: str = "o-citizen") -> str:
    code = next(i.code for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    filing = await s.cases.file(CaseDraft(text="楼下堆满了垃圾，联系我 13800138000",
                                          item_code=code, grid_code=GRID, lat=23.0215,
                                          lon=113.1214), ReporterRef("wechat", reporter))
    return filing.case.number


def robot_messages(fake: FakeWeChat) -> list[str]:
    return [c.body["markdown"]["content"] for c in fake.sent("/cgi-bin/webhook/send")
            if c.query["key"] == ROBOT and c.body["msgtype"] == "markdown"]


def robot_images(fake: FakeWeChat) -> list[dict[str, str]]:
    return [c.body["image"] for c in fake.sent("/cgi-bin/webhook/send")
            if c.query["key"] == ROBOT and c.body["msgtype"] == "image"]


async def test_handshake_and_bad_signatures(services: Services, fake_api: FakeWeChat,
                                            tmp_path: Path) -> None:
    server = await connect(services, fake_api, tmp_path)
    key = base64.b64decode(AES_KEY + "=")
    echostr = PrpCrypto(key).encrypt("echo-9931", CORP_ID).decode()
    ts, nonce = str(int(time.time())), "77"
    query = {"msg_signature": _get_signature(TOKEN, ts, nonce, echostr), "timestamp": ts,
             "nonce": nonce, "echostr": echostr}
    r = await server.client.get("/wecom", query_string=query)
    assert r.status_code == 200 and await r.get_data(as_text=True) == "echo-9931"
    r = await server.client.get("/wecom", query_string={**query, "msg_signature": "0" * 40})
    assert r.status_code == 403
    await add_worker(services, "lijing")
    number = await file_case(services)
    xml = fixture("wecom_text", userid="lijing", time=int(time.time()),
                  content=f"接单 {number}", msgid=next_id())
    assert (await server.post(xml, msg_signature="0" * 40)).status_code == 403
    assert (await services.cases.get(number)).status == Status.DISPATCHED
    r = await server.client.post("/wecom", data=fixture("billion_laughs").encode())
    assert r.status_code == 400


async def test_the_grid_group_gets_the_card_without_the_reporter(
    services: Services, fake_api: FakeWeChat, tmp_path: Path
) -> None:
    await connect(services, fake_api, tmp_path)
    await bind_robot(services)
    number = await file_case(services)
    await services.outbox.run_once()
    [card] = robot_messages(fake_api)
    assert card.startswith(f"**【案件】{number}") and "同济社区第3网格" in card
    assert "接单" in card and "o-citizen" not in card
    await services.cases.transition(number, Status.HANDLING, "test")
    await services.outbox.run_once()
    assert len(robot_messages(fake_api)) == 1  # the group hears of assignments only


async def test_worker_commands_and_refusals(services: Services, fake_api: FakeWeChat,
                                            tmp_path: Path) -> None:
    server = await connect(services, fake_api, tmp_path)
    number = await file_case(services)
    await add_worker(services, "wangfang")
    await add_worker(services, "stranger", OTHER_GRID)
    assert await server.say("nobody", f"接单 {number}") == t("wecom.unknown_worker")
    assert await server.say("wangfang", "接单") == t("team.usage")
    # A worker from another grid tries to close the case: refused, nothing changes.
    refused = await server.say("stranger", f"办结 {number} 已处理")
    assert refused == t("action.not_yours", number=number)
    # ... in the very words a number that does not exist gets: guessing tells nothing.
    missing = "20991231-9999"
    assert (await server.say("stranger", f"办结 {missing} 已处理")).replace(missing, number) \
        == refused
    assert (await services.cases.get(number)).status == Status.DISPATCHED
    retry = next_id()
    done = await server.say("wangfang", f"接单 {number}", msgid=retry)
    assert done == t("team.done", command="接单", number=number,
                     status=t("status.handling"))
    assert await server.say("wangfang", f"接单 {number}", msgid=retry) == done  # a retry
    assert "处置中" in await server.say("wangfang", f"到场 {number}")
    assert await server.say("wangfang", f"退回 {number}") == t("action.reason_needed")
    handed = await server.say("wangfang", f"上报 {number} 需要街道协调")
    assert number in handed
    case = await services.cases.get(number)
    assert case.status == Status.DISPATCHED and case.current_level == "street"


async def test_full_lifecycle_on_wechat(services: Services, fake_api: FakeWeChat,
                                        tmp_path: Path) -> None:
    """A citizen reports with text + location + photo in AES mode; the grid's WeCom group
    gets the card; a worker accepts and resolves it with a photo; the citizen hears of each
    change — all through wechatpy and the local fake API."""
    citizen, worker = "o-lifecycle-citizen", "zhangwei"
    oa, channel = await connect_wechat(services, fake_api, tmp_path, aes=True)
    work = await connect(services, fake_api, tmp_path)
    await bind_robot(services)
    await add_worker(services, worker)

    assert await oa.send("image", citizen, media="MEDIA_manhole") == t("photo_first")
    answer = await oa.say(citizen, "小区门口的井盖不见了，晚上很危险")
    if "回复序号" in answer:
        answer = await oa.say(citizen, "1")
    if "请确认" not in answer:
        answer = await oa.send("location", citizen, lat=PIN[0], lon=PIN[1])
    assert "请确认" in answer, answer
    number = case_number(await oa.say(citizen, "确认"))
    case = await services.cases.get(number)
    assert case.grid_code == GRID and [m.ref for m in case.media] == ["wechat:MEDIA_manhole"]

    await services.outbox.run_once()
    [card] = robot_messages(fake_api)
    assert number in card and citizen not in card

    assert "接单成功" in await work.say(worker, f"接单 {number}")
    await services.outbox.run_once()
    assert fake_api.texts_to(citizen) == [
        t("citizen.status_changed", number=number, status=t("status.handling"))]
    assert await work.photo(worker, "WECOM_after") == t("wecom.photo_kept")
    resolved = await work.say(worker, f"办结 {number} 井盖已更换")
    assert resolved == t("team.done", command="办结", number=number,
                         status=t("status.handled"))
    await services.outbox.run_once()
    assert fake_api.texts_to(citizen) == [
        t("citizen.status_changed", number=number, status=t("status.handling")),
        t("citizen.handled_with", number=number, note="井盖已更换"),  # the handler's result
    ]
    case = await services.cases.get(number)
    assert case.status == Status.HANDLED
    assert [m.ref for m in case.media] == ["wechat:MEDIA_manhole", "wecom:WECOM_after"]
    await channel.drain()
    await wecom.channel_for(services).drain()
    assert (channel.media_dir / "wechat").is_dir()
    assert wecom.media_path(tmp_path / "media", "WECOM_after").read_bytes() == JPEG
    assert len(robot_messages(fake_api)) == 1


def test_robot_markdown_cannot_be_injected_by_the_citizen() -> None:
    from bot.outbox import Notice

    text = "【案件】1｜已派遣\n描述：[点我](http://evil) **急** <b>"
    notice = Notice(1, "k", "wecom", ROBOT, text,
                    {"kind": "card", "case": "20261122-0001", "status": "dispatched"})
    content = wecom.markdown_card(notice)
    assert content.startswith("**【案件】1｜已派遣**")
    assert "](" not in content and "**急**" not in content and "<b>" not in content
    assert "接单 20261122-0001" in content


async def test_a_street_robot_bound_from_the_cli_gets_its_escalations(
    clocked: Services, clock: FakeClock, fake_api: FakeWeChat, tmp_path: Path
) -> None:
    """`gridbot wecom bind street:CODE KEY` binds a street's robot without a grid-file edit
    or a restart: a case escalated to the street is announced there."""
    from bot.timers import TimerRunner
    from tests.gridbot_cli import gridbot

    s = clocked
    await connect(s, fake_api, tmp_path)
    db_env = {**os.environ, "GRIDBOT_DATABASE_URL": s.config.database_url,
              "GRIDBOT_REDIS_URL": s.config.redis.url,
              "GRIDBOT_NLP_MODEL_DIR": str(s.config.nlp.model_dir)}
    done = gridbot("wecom", "bind", "street:440604001", "street-robot", env=db_env)
    assert done.returncode == 0 and "street:440604001" in done.stdout, done.stderr
    refused = gridbot("wecom", "bind", "street:nope", "street-robot", env=db_env)
    assert refused.returncode == 1 and "no street" in refused.stderr
    number = await file_case(s)
    case = await s.cases.get(number)
    clock.now = case.handling_due  # the grid's deadline passes
    while await TimerRunner(s.cases).run_once():
        pass
    assert (await s.cases.get(number)).current_level == "street"
    clock.now = (await s.cases.get(number)).response_due  # … and the street's response limit
    while await TimerRunner(s.cases).run_once():
        pass
    await s.outbox.run_once()
    street = [c.body["markdown"]["content"] for c in fake_api.sent("/cgi-bin/webhook/send")
              if c.query["key"] == "street-robot"]
    assert street and any(number in m for m in street)
async def test_the_card_brings_the_map_link_and_the_photos(
    services: Services, fake_api: FakeWeChat, tmp_path: Path
) -> None:
    """A mini-program JPEG goes as it is, a WebP as a JPEG, a Telegram file id (no bytes
    here) and a photo not stored are skipped; the markdown card links to the map."""
    import hashlib
    import io

    from PIL import Image

    await connect(services, fake_api, tmp_path)
    await bind_robot(services)
    channel = wecom.channel_for(services)
    assert channel is not None
    store = LocalStore(channel.media_dir)
    jpg, webp = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (40, 30), "blue").save(jpg, "JPEG")
    Image.new("RGB", (40, 30), "green").save(webp, "WEBP")
    await store.put("mp/" + "1" * 32 + ".jpg", jpg.getvalue())
    await store.put("mp/" + "2" * 32 + ".webp", webp.getvalue())
    code = next(i.code for i in services.catalogue.items if i.level == "grid" and not i.urgent)
    filing = await services.cases.file(
        CaseDraft(text="人行道井盖破损", item_code=code, grid_code=GRID, lat=23.0215,
                  lon=113.1214, address="祖庙路18号",
                  media=["AgACtelegram", "var/media/mp/" + "1" * 32 + ".jpg",
                         "var/media/mp/" + "3" * 32 + ".jpg",
                         "var/media/mp/" + "2" * 32 + ".webp"]),
        ReporterRef("wechat_mp", "o-mp-user"))
    await services.outbox.run_once()
    [card] = robot_messages(fake_api)
    assert filing.case.number in card and "祖庙路18号" in card
    assert "(https://uri.amap.com/marker?position=113.121400,23.021500&coordinate=wgs84" in card
    first, second = robot_images(fake_api)
    assert base64.b64decode(first["base64"]) == jpg.getvalue()
    assert first["md5"] == hashlib.md5(jpg.getvalue()).hexdigest()
    converted = base64.b64decode(second["base64"])
    assert converted.startswith(b"\xff\xd8\xff") and second["md5"] == hashlib.md5(
        converted).hexdigest()
    assert "o-mp-user" not in json.dumps([c.body for c in fake_api.sent(
        "/cgi-bin/webhook/send")])
