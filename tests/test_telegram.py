"""Telegram: the real python-telegram-bot Application and Bot against a fake Bot API.

The network is the library's pluggable request class: FakeBotApi records every call
(method, parameters) and answers with real-shaped JSON. Updates come from recorded-shape
fixtures (tests/fixtures/telegram/) and go in through POST /telegram on Quart's test client.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import os
import re
import sqlite3
import string
import threading
import time
import tomllib
from collections.abc import AsyncIterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import pytest
from quart import Quart
from sqlalchemy import func, select
from telegram.request import BaseRequest, RequestData

from adapters import app_state, telegram
from adapters.telegram_outbound import card_key
from bot.cases import CaseDraft, ReporterRef
from bot.config import TelegramConfig
from bot.media_store import downloaded_key, is_video_ref, open_store, stored_key
from bot.messages import Button, Outcome, Reply
from bot.models import CaseMedia, OutboxMessage
from bot.services import Services
from bot.teams import TeamsError
from bot.texts import LOCALES, t
from bot.workflow import Status
from tests.conftest import FIXTURES, FakeClock
from tests.fixtures.video import MP4
from tests.gridbot_cli import gridbot

SECRET = "s3cret-Token_for-tests"
TOKEN = "7000000001:AAFakeTokenForTestsOnly"
BOT = {"id": 7000000001, "is_bot": True, "first_name": "网格通", "username": "gridbot_test_bot",
       "can_join_groups": True, "can_read_all_group_messages": False,
       "supports_inline_queries": False}
GRID = "440604001030103"  # 同济社区第3网格
OTHER_GRID = "440604001010101"  # 东华社区第1网格
DEMO_POINT = (23.0215, 113.1214)  # inside GRID
GROUP = -1001234567890
CITIZEN = 5550123
ENGLISH_CITIZEN = 5550777
WORKER, LEADER, OUTSIDER, SECOND, ADMIN = 6660001, 6660002, 6660003, 6660004, 6660005
NUMBER = re.compile(r"(\d{8}-\d{4})")
_update_ids = itertools.count(880000001)


class FakeBotApi(BaseRequest):
    """A Bot API that records calls and answers like Telegram does (no network)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.admins: set[int] = set()
        self.updates: list[dict[str, Any]] = []  # served by getUpdates
        self.blocked: set[int] = set()  # chats answering 403 (the user blocked the bot)
        self.flooded: set[int] = set()  # chats answering 429 (flood control)
        self.flood_once: dict[int, int] = {}  # chat → how many 429s (retry after 1 s) to give
        self.files: dict[str, bytes] = {}  # file_path name → the bytes getFile leads to
        self.refuse_photos = False  # answer sendPhoto/sendMediaGroup with a 400
        self._message_ids = itertools.count(100)

    @property
    def read_timeout(self) -> float:
        return 5.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        await asyncio.sleep(0)  # a real request lets other tasks run meanwhile
        if "/file/bot" in url:  # a file download (getFile's file_path)
            self.calls.append(("download", {"url": url}))
            return 200, self.files.get(url.rsplit("/", 1)[-1], b"")
        name = url.rsplit("/", 1)[-1]
        params = dict(request_data.parameters) if request_data else {}
        if request_data is not None and request_data.multipart_data:
            # An upload: keep the bytes, as Telegram would receive them.
            params["uploads"] = {k: v[1] for k, v in request_data.multipart_data.items()}
        self.calls.append((name, params))
        if int(params.get("chat_id", 0) or 0) in self.blocked:
            return 403, json.dumps({"ok": False, "error_code": 403,
                                    "description": "Forbidden: bot was blocked by the user"}
                                   ).encode()
        if int(params.get("chat_id", 0) or 0) in self.flooded:
            return 429, json.dumps({"ok": False, "error_code": 429,
                                    "description": "Too Many Requests: retry after 5",
                                    "parameters": {"retry_after": 5}}).encode()
        if self.flood_once.get(int(params.get("chat_id", 0) or 0)):
            self.flood_once[int(params["chat_id"])] -= 1
            return 429, json.dumps({"ok": False, "error_code": 429,
                                    "description": "Too Many Requests: retry after 1",
                                    "parameters": {"retry_after": 1}}).encode()
        result = self._result(name, params)
        if result is None:
            return 400, json.dumps({"ok": False, "error_code": 400,
                                    "description": "Bad Request: IMAGE_PROCESS_FAILED"}).encode()
        return 200, json.dumps({"ok": True, "result": result}).encode()

    def _result(self, name: str, params: dict[str, Any]) -> Any:
        if name in ("sendPhoto", "sendMediaGroup") and self.refuse_photos:
            return None  # a 400
        if name == "getMe":
            return BOT
        if name in ("sendMessage", "editMessageText", "editMessageReplyMarkup", "sendPhoto",
                    "editMessageCaption", "sendVenue", "sendLocation", "sendVideo"):
            return self._message(params)
        if name == "sendMediaGroup":
            media = params["media"]
            media = json.loads(media) if isinstance(media, str) else media
            return [self._message(params) for _ in media]
        if name == "getChatMember":
            user = {"id": int(params["user_id"]), "is_bot": False, "first_name": "成员"}
            if int(params["user_id"]) not in self.admins:
                return {"status": "member", "user": user}
            return {"status": "administrator", "user": user, "can_be_edited": False,
                    "is_anonymous": False, "can_manage_chat": True,
                    "can_delete_messages": True, "can_manage_video_chats": True,
                    "can_restrict_members": True, "can_promote_members": False,
                    "can_change_info": True, "can_invite_users": True,
                    "can_post_stories": False, "can_edit_stories": False,
                    "can_delete_stories": False}
        if name == "getFile":
            file_id = str(params["file_id"])
            return {"file_id": file_id, "file_unique_id": file_id[-8:],
                    "file_path": f"photos/{file_id}.jpg"}
        if name == "getUpdates":
            served, self.updates = self.updates, []
            return served
        return True  # answerCallbackQuery, setWebhook, deleteWebhook …

    def _message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        chat = ({"id": chat_id, "type": "private", "first_name": "伟"} if chat_id > 0 else
                {"id": chat_id, "type": "supergroup", "title": "同济社区第3网格工作群"})
        message_id = params.get("message_id") or next(self._message_ids)
        return {"message_id": int(message_id), "from": BOT, "chat": chat,
                "date": int(time.time()), "text": params.get("text", "")}

    # -- reading the record ---------------------------------------------------------------

    def named(self, name: str) -> list[dict[str, Any]]:
        return [p for n, p in self.calls if n == name]

    def texts_to(self, chat_id: int) -> list[str]:
        return [p.get("text") or p.get("caption", "") for n, p in self.calls
                if n in ("sendMessage", "editMessageText", "sendPhoto", "editMessageCaption",
                         "sendVideo")
                and int(p["chat_id"]) == chat_id and (p.get("text") or p.get("caption"))]

    def last_to(self, chat_id: int, method: str = "sendMessage") -> dict[str, Any]:
        return [p for p in self.named(method) if int(p["chat_id"]) == chat_id][-1]

    def answers(self) -> list[dict[str, Any]]:
        return self.named("answerCallbackQuery")


def callback_data(params: dict[str, Any]) -> list[str]:
    markup = params.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


# -- updates from the recorded fixtures ------------------------------------------------------

def _fixture(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / "telegram" / f"{name}.json").read_text(encoding="utf-8"))
    data["update_id"] = next(_update_ids)
    return data


def _as_user(message: dict[str, Any], user: int, language: str) -> None:
    message["from"]["id"] = user
    message["from"]["language_code"] = language
    if message["chat"]["type"] == "private":
        message["chat"]["id"] = user


def private_text(text: str, user: int = CITIZEN, language: str = "zh-hans") -> dict:
    update = _fixture("private_command" if text.startswith("/") else "private_text")
    _as_user(update["message"], user, language)
    update["message"]["text"] = text
    if text.startswith("/"):
        update["message"]["entities"][0]["length"] = len(text.split()[0])
    return update


def private_location(lat: float, lon: float, user: int = CITIZEN) -> dict:
    update = _fixture("private_location")
    _as_user(update["message"], user, "zh-hans")
    update["message"]["location"] = {"latitude": lat, "longitude": lon}
    return update


def private_photo(user: int = CITIZEN) -> dict:
    update = _fixture("private_photo")
    _as_user(update["message"], user, "zh-hans")
    return update


def private_video(file_id: str, size: int, user: int = CITIZEN, note: bool = False) -> dict:
    """A short video (or a round video note) from a citizen: the photo fixture's message
    with Telegram's video object in place of its sizes."""
    update = _fixture("private_photo")
    _as_user(update["message"], user, "zh-hans")
    del update["message"]["photo"]
    video = {"file_id": file_id, "file_unique_id": file_id[-8:], "duration": 6,
             "file_size": size, "length": 240} if note else {
        "file_id": file_id, "file_unique_id": file_id[-8:], "width": 720, "height": 1280,
        "duration": 6, "mime_type": "video/mp4", "file_size": size}
    update["message"]["video_note" if note else "video"] = video
    return update


def press(data: str, user: int, chat: int, message_id: int = 101,
          language: str = "zh-hans") -> dict:
    update = _fixture("callback_group" if chat < 0 else "callback_private")
    query = update["callback_query"]
    query["id"] = str(update["update_id"])
    query["from"]["id"] = user
    query["from"]["language_code"] = language
    query["message"]["chat"]["id"] = chat
    query["message"]["message_id"] = message_id
    query["data"] = data
    return update


def group_command(text: str, user: int = LEADER, chat: int = GROUP) -> dict:
    update = _fixture("group_command")
    update["message"]["from"]["id"] = user
    update["message"]["chat"]["id"] = chat
    update["message"]["text"] = text
    update["message"]["entities"][0]["length"] = len(text.split()[0])
    return update


def group_text(text: str, user: int = WORKER, chat: int = GROUP) -> dict:
    update = _fixture("group_text")
    update["message"]["from"]["id"] = user
    update["message"]["chat"]["id"] = chat
    update["message"]["text"] = text
    return update


def group_photo(user: int = WORKER, chat: int = GROUP) -> dict:
    update = _fixture("group_photo")
    update["message"]["from"]["id"] = user
    update["message"]["chat"]["id"] = chat
    return update


# -- the driver ------------------------------------------------------------------------------

class Telegram:
    """POSTs updates to /telegram and waits until the Application has worked them."""

    def __init__(self, services: Services, api: FakeBotApi, channel: telegram.TelegramChannel,
                 app: Quart) -> None:
        self.services = services
        self.api = api
        self.channel = channel
        self.client = app.test_client()

    async def post(self, update: dict, secret: str | None = SECRET) -> int:
        headers = {} if secret is None else {telegram.SECRET_HEADER: secret}
        response = await self.client.post("/telegram", json=update, headers=headers,
                                          scope_base={"client": ("127.0.0.1", 5000)})
        if response.status_code == 200:  # Telegram runs the Bot API call the answer carries
            call = dict(await response.get_json())
            if "method" in call:
                self.api.calls.append((call.pop("method"), call))
        return response.status_code

    async def send(self, *updates: dict) -> None:
        for update in updates:
            assert await self.post(update) == 200
        await self.channel.drain()

    async def say(self, update: dict, chat: int = CITIZEN) -> str:
        """Send one update; the texts the bot sent to `chat` because of it."""
        before = len(self.api.texts_to(chat))
        await self.send(update)
        return "\n".join(self.api.texts_to(chat)[before:])

    async def deliver(self) -> int:
        return await self.services.outbox.run_once()


def telegram_app(services: Services) -> Quart:
    """Only this channel's blueprint: the tests do not depend on other channels' modules."""
    app = Quart("telegram-tests")
    app_state.install(app, services.config, services)
    app.register_blueprint(telegram.blueprint)
    return app


async def _start(services: Services) -> Telegram:
    api = FakeBotApi()
    config = TelegramConfig(token=TOKEN, secret_token=SECRET,
                            base_url="https://bot-api.invalid/bot",
                            base_file_url="https://bot-api.invalid/file/bot")
    channel = await telegram.start(services, config=config, request=api,
                                   get_updates_request=api)
    assert channel is not None
    return Telegram(services, api, channel, telegram_app(services))


@pytest.fixture
async def tg(services: Services) -> AsyncIterator[Telegram]:
    driver = await _start(services)
    yield driver
    await telegram.stop(services)


@pytest.fixture
async def tg_clocked(clocked: Services) -> AsyncIterator[Telegram]:
    driver = await _start(clocked)
    yield driver
    await telegram.stop(clocked)


async def _workers(s: Services) -> None:
    now = s.cases.clock()
    await s.teams.add_worker("李静平", "grid_worker", f"grid:{GRID}", "telegram", str(WORKER), now)
    await s.teams.add_worker("冯永丽", "grid_leader", f"grid:{GRID}", "telegram", str(LEADER), now)
    await s.teams.add_worker("王外格", "grid_worker", f"grid:{OTHER_GRID}", "telegram",
                             str(OUTSIDER), now)
    await s.teams.add_worker("陈二号", "grid_worker", f"grid:{GRID}", "telegram", str(SECOND), now)


async def _bind(tg: Telegram) -> None:
    code = await tg.services.teams.new_bind_code(GRID)
    text = await tg.say(group_command(f"/bind@gridbot_test_bot {code}"), GROUP)
    assert "同济社区第3网格" in text


async def _case(tg: Telegram, reporter: int = CITIZEN) -> str:
    """A grid-level case in GRID, filed directly, its card delivered to the group."""
    s = tg.services
    code = next(i.code for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    filing = await s.cases.file(
        CaseDraft(text="楼下堆满了垃圾", item_code=code, grid_code=GRID,
                  lat=DEMO_POINT[0], lon=DEMO_POINT[1]),
        ReporterRef("telegram", str(reporter)))
    await tg.deliver()
    return filing.case.number


# -- the whole case --------------------------------------------------------------------------

async def test_full_case_on_telegram(tg: Telegram) -> None:
    s, api = tg.services, tg.api
    await _workers(s)
    await _bind(tg)

    # The citizen reports: text, (category), location, photo, confirm — all in private chat.
    text = await tg.say(private_text("我家小区门口的井盖不见了，晚上很危险"))
    if "回复序号" in text:
        offered = api.last_to(CITIZEN)
        assert callback_data(offered) == ["1", "2", "3", "换一个"]
        labels = [b["text"] for row in offered["reply_markup"]["inline_keyboard"] for b in row]
        pick = next(i for i, label in enumerate(labels, 1) if "井盖" in label)
        text = await tg.say(press(str(pick), CITIZEN, CITIZEN))
        assert api.named("editMessageReplyMarkup"), "the used keyboard is taken away"
    assert "位置" in text
    text = await tg.say(private_location(*DEMO_POINT))
    assert "请确认" in text and "同济社区第3网格" in text
    assert callback_data(api.last_to(CITIZEN)) == ["确认", "换一个", "取消"]
    assert "照片已收到" in await tg.say(private_photo())
    text = await tg.say(press("确认", CITIZEN, CITIZEN))
    number = NUMBER.search(text).group(1)
    case = await s.cases.get(number)
    assert case.status == Status.DISPATCHED and case.channel == "telegram"
    assert [m.ref for m in case.media] == ["AgACAgUAAxkBAAIBQ2citizen-large"]

    # The grid group gets the citizen's photo with the card as its caption and the buttons
    # for a dispatched case, then the place as a venue under it.
    assert await tg.deliver() == 1
    card = api.last_to(GROUP, "sendPhoto")
    assert card["photo"] == "AgACAgUAAxkBAAIBQ2citizen-large"
    assert number in card["caption"] and "已派遣" in card["caption"]
    assert "同济社区第3网格" in card["caption"]
    assert callback_data(card) == [f"act:{a}:{number}"
                                   for a in ("accept", "resolve", "give_back", "hand_up")]
    card_id = int((await s.redis.hgetall(card_key(GROUP, number)))["message"])
    venue = api.last_to(GROUP, "sendVenue")
    assert (venue["latitude"], venue["longitude"]) == pytest.approx(DEMO_POINT, abs=1e-4)
    assert number in venue["title"] and venue["reply_parameters"]["message_id"] == card_id

    # 接单 by a grid worker: the card is edited in place, the citizen hears of it.
    await tg.send(press(f"act:accept:{number}", WORKER, GROUP, card_id))
    assert api.answers()[-1].get("show_alert") in (None, False)
    assert (await s.cases.get(number)).status == Status.HANDLING
    assert await tg.deliver() == 2
    edit = api.last_to(GROUP, "editMessageCaption")  # the card is the photo's caption
    assert int(edit["message_id"]) == card_id and "处置中" in edit["caption"]
    assert callback_data(edit) == [f"act:{a}:{number}"
                                   for a in ("arrive", "resolve", "give_back", "hand_up")]
    assert "处置中" in api.last_to(CITIZEN)["text"]

    # 到场, then 办结: the bot asks for a note; a photo and the note complete it.
    await tg.send(press(f"act:arrive:{number}", WORKER, GROUP, card_id))
    await tg.send(press(f"act:resolve:{number}", WORKER, GROUP, card_id))
    prompt = api.last_to(GROUP)
    assert "办结说明" in prompt["text"] and prompt["reply_markup"]["force_reply"] is True
    assert "照片已收到" in await tg.say(group_photo(), GROUP)
    assert "已办结" in await tg.say(group_text("已更换新井盖，现场已设警示"), GROUP)
    case = await s.cases.get(number)
    assert case.status == Status.HANDLED
    assert "已更换新井盖" in case.events[-1].note
    async with s.db.session() as session:
        refs = (await session.execute(select(CaseMedia.ref).where(
            CaseMedia.case_id == case.id))).scalars().all()
    assert "AgACAgUAAxkBAAIBR2worker-large" in refs
    assert await tg.deliver() == 2
    edit = api.last_to(GROUP, "editMessageCaption")
    # Handled: the card now offers the leader's check (核查).
    assert "已处置" in edit["caption"] and callback_data(edit) == [
        f"act:verify:{number}", f"act:verify_fail:{number}"]
    assert "已处置" in api.last_to(CITIZEN)["text"]

    # A second worker of the grid verifies; the citizen rates on the 1–5 keyboard.
    leader = await s.teams.worker("telegram", str(LEADER))
    assert (await s.actions.verify(number, leader, fixed=True)).status == Status.CLOSED
    await tg.deliver()
    assert "已结案" in api.last_to(GROUP, "editMessageCaption")["caption"]
    rate = api.last_to(CITIZEN)
    assert "已办结" in rate["text"]
    assert callback_data(rate) == [f"评价 {number} {k}" for k in range(1, 6)]
    assert "感谢您的评价（5 分）" in await tg.say(press(f"评价 {number} 5", CITIZEN, CITIZEN))
    assert (await s.cases.get(number)).rating == 5
    assert number in await tg.say(private_text("/cases"))

    # One card message all along (the photo's caption), one venue, and never the
    # reporter's id in the group.
    assert len([p for p in api.named("sendPhoto")
                if int(p["chat_id"]) == GROUP and number in p.get("caption", "")]) == 1
    assert not [p for p in api.named("sendMessage")
                if int(p["chat_id"]) == GROUP and p["text"].startswith(f"【案件】{number}")]
    assert not api.named("editMessageText") or all(
        int(p["message_id"]) != card_id for p in api.named("editMessageText"))
    assert len(api.named("sendVenue")) == 1
    to_group = [p for _, p in api.calls if int(p.get("chat_id", 0) or 0) < 0]
    assert to_group and str(CITIZEN) not in json.dumps(to_group, ensure_ascii=False)
    async with s.db.session() as session:
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
    assert all(r.status == "delivered" for r in rows)


# -- webhook hygiene -------------------------------------------------------------------------

async def test_unreadable_bodies_are_a_400_not_a_500(tg: Telegram) -> None:
    headers = {telegram.SECRET_HEADER: SECRET, "Content-Type": "application/json"}
    for body in (b'{"update_id": 1, "x": "\xff\xfe"}', b"[" * 100_000):
        response = await tg.client.post("/telegram", data=body, headers=headers,
                                        scope_base={"client": ("127.0.0.1", 5000)})
        assert response.status_code == 400


async def test_secret_token_is_checked_before_anything(tg: Telegram) -> None:
    update = private_text("我家小区门口的井盖不见了，晚上很危险")
    assert await tg.post(update, secret=None) == 403
    assert await tg.post(update, secret="wrong") == 403
    await tg.channel.drain()
    assert [n for n, _ in tg.api.calls] == ["getMe"]
    assert await tg.services.dialogs.load("telegram", str(CITIZEN)) == {}
    # Nothing was consumed: the genuine delivery of the same update is still worked.
    assert await tg.say(update) != ""


async def test_update_id_dedupe(tg: Telegram) -> None:
    update = private_text("/start")
    await tg.send(update, copy.deepcopy(update))
    assert len(tg.api.texts_to(CITIZEN)) == 1


async def test_unknown_and_edited_updates_are_ignored(tg: Telegram) -> None:
    for name in ("unknown_update", "edited_message", "my_chat_member"):
        assert await tg.post(_fixture(name)) == 200
    assert await tg.post({"not": "an update"}) == 400
    await tg.channel.drain()
    assert [n for n, _ in tg.api.calls] == ["getMe"]


async def test_the_app_factory_serves_the_webhook(services: Services) -> None:
    from shell.app import create_app

    app = create_app(services.config, services, background=False)
    assert "/telegram" in {rule.rule for rule in app.url_map.iter_rules()}
    # Not started (no token in the shipped config): the route says so.
    response = await app.test_client().post("/telegram", json={"update_id": 1},
                                            scope_base={"client": ("127.0.0.1", 5000)})
    assert response.status_code == 404


# -- grid teams ------------------------------------------------------------------------------

async def test_two_workers_press_accept_at_once(tg: Telegram) -> None:
    s = tg.services
    await _workers(s)
    await _bind(tg)
    number = await _case(tg)
    await tg.send(press(f"act:accept:{number}", WORKER, GROUP),
                  press(f"act:accept:{number}", SECOND, GROUP))
    answers = tg.api.answers()
    assert len(answers) == 2
    alerts = [a for a in answers if a.get("show_alert")]
    assert len(alerts) == 1 and "处置中" in alerts[0]["text"]
    case = await s.cases.get(number)
    assert case.status == Status.HANDLING
    assert sum(e.to_status == Status.HANDLING for e in case.events) == 1


async def test_stale_button_on_a_closed_case(tg: Telegram) -> None:
    s = tg.services
    await _workers(s)
    await _bind(tg)
    number = await _case(tg)
    worker = await s.teams.worker("telegram", str(WORKER))
    leader = await s.teams.worker("telegram", str(LEADER))
    await s.actions.accept(number, worker)
    await s.actions.resolve(number, worker, "已清运")
    await s.actions.verify(number, leader, fixed=True)
    sent_before = len(tg.api.named("sendMessage"))
    for action in ("accept", "resolve", "hand_up"):
        await tg.send(press(f"act:{action}:{number}", WORKER, GROUP))
        answer = tg.api.answers()[-1]
        assert answer["show_alert"] is True
        assert number in answer["text"] and "已结案" in answer["text"]
    assert len(tg.api.named("sendMessage")) == sent_before  # no prompt for a closed case
    await tg.send(press("act:accept:20990101-0001", WORKER, GROUP))
    assert "没有找到您可以办理的案件" in tg.api.answers()[-1]["text"]
    await tg.send(press("act:explode:" + number, WORKER, GROUP))
    assert tg.api.answers()[-1]["text"] == "这个按钮已失效。"


async def test_someone_outside_the_grid_gets_an_alert(tg: Telegram) -> None:
    s = tg.services
    await _workers(s)
    await _bind(tg)
    number = await _case(tg)
    for user in (OUTSIDER, 6669999):  # another grid's worker; not registered at all
        for action in ("accept", "resolve", "give_back"):
            await tg.send(press(f"act:{action}:{number}", user, GROUP))
            answer = tg.api.answers()[-1]
            # The words a case that does not exist gets: guessing numbers tells nothing.
            assert answer["show_alert"] is True
            assert answer["text"] == t("action.not_found", number=number)
    assert (await s.cases.get(number)).status == Status.DISPATCHED
    assert not any("办结说明" in t or "原因" in t for t in tg.api.texts_to(GROUP))
    # Their group messages are not taken as notes either.
    await tg.send(group_text("随便说说", user=OUTSIDER))
    assert (await s.cases.get(number)).status == Status.DISPATCHED


async def test_resolve_before_accept_is_refused_at_the_button(tg: Telegram) -> None:
    """A street-level matter cannot be solved on the spot: no note is asked for in vain."""
    s = tg.services
    await _workers(s)
    await _bind(tg)
    code = next(i.code for i in s.catalogue.items if i.level == "street" and not i.urgent)
    filing = await s.cases.file(CaseDraft(text="人行道被占用摆卖", item_code=code, grid_code=GRID,
                                          lat=DEMO_POINT[0], lon=DEMO_POINT[1]),
                                ReporterRef("telegram", str(CITIZEN)))
    number = filing.case.number
    await tg.send(press(f"act:resolve:{number}", WORKER, GROUP))
    answer = tg.api.answers()[-1]
    assert answer["show_alert"] is True and "先接单" in answer["text"]
    assert await s.redis.get(telegram._pending_key(GROUP, WORKER)) is None


async def test_give_back_asks_for_a_reason_and_cancel_changes_nothing(tg: Telegram) -> None:
    s = tg.services
    await _workers(s)
    await _bind(tg)
    number = await _case(tg)
    await tg.send(press(f"act:give_back:{number}", WORKER, GROUP))
    assert "原因" in tg.api.last_to(GROUP)["text"]
    assert "已取消" in await tg.say(group_text("取消"), GROUP)
    assert (await s.cases.get(number)).status == Status.DISPATCHED
    await tg.send(press(f"act:give_back:{number}", WORKER, GROUP))
    assert "已退回" in await tg.say(group_text("不属于本网格，应由街道城管处理"), GROUP)
    case = await s.cases.get(number)
    assert case.status == Status.DISPATCHED and case.current_level == "street"
    # Later chatter is no longer taken as a reason.
    assert await tg.say(group_text("收到"), GROUP) == ""


async def test_the_leader_checks_in_the_group_and_a_failed_check_needs_a_reason(
        tg: Telegram) -> None:
    """核查 on Telegram: the card of a handled case offers 核查通过 / 核查不通过 to the grid
    leader; a failure asks for the reason and sends the case back; a worker typing a
    command in the group is carried out too."""
    s, api = tg.services, tg.api
    await _workers(s)
    await _bind(tg)
    number = await _case(tg)
    assert "接单成功" in await tg.say(group_text(f"接单 {number}"), GROUP)  # typed, not a button
    await s.actions.resolve(number, await s.teams.worker("telegram", str(WORKER)), "已清理")
    await tg.deliver()
    card = [c for c in api.calls if c[0] in ("sendMessage", "editMessageText")
            and c[1].get("chat_id") == GROUP and number in str(c[1].get("text", ""))][-1][1]
    datas = [b["callback_data"] for row in json.loads(card["reply_markup"])["inline_keyboard"]
             for b in row] if isinstance(card["reply_markup"], str) else [
        b["callback_data"] for row in card["reply_markup"]["inline_keyboard"] for b in row]
    assert datas == [f"act:verify:{number}", f"act:verify_fail:{number}"]
    # A grid worker is not a checker; the leader is.
    await tg.send(press(f"act:verify_fail:{number}", SECOND, GROUP))
    assert (await s.cases.get(number)).status == Status.HANDLED
    await tg.send(press(f"act:verify_fail:{number}", LEADER, GROUP))
    assert "原因" in api.last_to(GROUP)["text"]
    reply = await tg.say(group_text("垃圾还在楼道里", user=LEADER), GROUP)
    assert "核查不通过" in reply
    case = await s.cases.get(number)
    assert case.status == Status.DISPATCHED
    assert any("垃圾还在楼道里" in e.note for e in case.events)
    # Back to the team: a new card (not an edit of the old one) says why.
    sends = len([c for c in api.calls if c[0] == "sendMessage"])
    await tg.deliver()
    assert len([c for c in api.calls if c[0] == "sendMessage"]) > sends
    fresh = api.last_to(GROUP, "sendMessage")["text"]
    assert "【退回重办】" in fresh and "垃圾还在楼道里" in fresh and number in fresh
    await s.actions.accept(number, await s.teams.worker("telegram", str(WORKER)))
    await s.actions.resolve(number, await s.teams.worker("telegram", str(WORKER)), "清理完毕")
    assert "核查通过成功" in await tg.say(group_text(f"核查通过 {number}", user=LEADER), GROUP)
    assert (await s.cases.get(number)).status == Status.CLOSED


async def test_a_department_worker_acts_in_private_chat(tg: Telegram) -> None:
    """A department's worker has no group: typed commands in the private chat with the bot
    act on the case, and their words never become a citizen's complaint."""
    s = tg.services
    item = next(i for i in s.catalogue.items if i.level == "district" and not i.urgent)
    filing = await s.cases.file(
        CaseDraft(text="路灯整排不亮", item_code=item.code, grid_code=GRID,
                  lat=DEMO_POINT[0], lon=DEMO_POINT[1]), ReporterRef("telegram", str(CITIZEN)))
    number = filing.case.number
    staff = 7001
    await s.teams.add_worker("赵科员", "department_staff", filing.case.assignee, "telegram",
                             str(staff), s.cases.clock())
    assert "接单成功" in await tg.say(private_text(f"接单 {number}", user=staff), staff)
    done = await tg.say(private_text(f"办结 {number} 已更换灯具，恢复照明", user=staff), staff)
    assert "办结成功" in done and number in done
    case = await s.cases.get(number)
    assert case.status == Status.HANDLED
    assert any("已更换灯具" in e.note for e in case.events)
    async with s.db.session() as session:
        from bot.models import Case as CaseRow
        filed = (await session.execute(select(func.count()).select_from(CaseRow))).scalar()
    assert filed == 1  # no complaint was made of the worker's words
    # The same words from a citizen are not a command: they start a report.
    assert "接单成功" not in await tg.say(private_text(f"接单 {number}"))


async def test_group_commands_bind_cases_unbind(tg_clocked: Telegram, clock: FakeClock) -> None:
    tg, s = tg_clocked, tg_clocked.services
    assert "/bind" in await tg.say(group_command("/bind"), GROUP)
    assert "无效" in await tg.say(group_command("/bind FFFFFFFF"), GROUP)
    elsewhere = -1009999999999
    assert "还没有绑定" in await tg.say(group_command("/cases", chat=elsewhere), elsewhere)
    await _bind(tg)
    assert "没有未办结" in await tg.say(group_command("/cases"), GROUP)
    number = await _case(tg)
    text = await tg.say(group_command("/cases@gridbot_test_bot"), GROUP)
    assert number in text and "时限" in text and "已超时" not in text
    clock.advance(days=30)
    assert "已超时" in await tg.say(group_command("/cases"), GROUP)
    assert "网格群使用说明" in await tg.say(group_command("/help"), GROUP)

    assert "只有群管理员" in await tg.say(group_command("/unbind", user=WORKER), GROUP)
    assert await s.teams.grid_of_group("telegram", str(GROUP)) == GRID
    tg.api.admins.add(ADMIN)
    assert "解除" in await tg.say(group_command("/unbind", user=ADMIN), GROUP)
    assert [int(p["user_id"]) for p in tg.api.named("getChatMember")] == [WORKER, ADMIN]
    assert await s.teams.grid_of_group("telegram", str(GROUP)) is None


async def test_card_rows_delivered_out_of_order_keep_the_newest_state(tg: Telegram) -> None:
    s = tg.services
    await _workers(s)
    await _bind(tg)
    number = await _case(tg)
    worker = await s.teams.worker("telegram", str(WORKER))
    await s.actions.accept(number, worker)
    await s.actions.resolve(number, worker, "已清运")
    notices = await s.outbox.claim()
    cards = sorted((n for n in notices if n.payload["kind"] == "card"), key=lambda n: -n.id)
    for notice in cards:  # newest first: the older one must not overwrite it
        await s.outbox.deliver(notice)
    edits = tg.api.named("editMessageText")
    assert len(edits) == 1 and "已处置" in edits[0]["text"]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # PTB's own 429
async def test_blocked_users_give_up_and_flood_control_retries(tg: Telegram) -> None:
    s = tg.services
    await _workers(s)
    await _bind(tg)
    number = await _case(tg)
    tg.api.blocked.add(CITIZEN)
    tg.api.flooded.add(GROUP)
    await s.actions.accept(number, await s.teams.worker("telegram", str(WORKER)))
    assert await tg.deliver() == 0
    async with s.db.session() as session:
        rows = (await session.execute(select(OutboxMessage).where(
            OutboxMessage.status != "delivered"))).scalars().all()
    by_kind = {r.payload["kind"]: r for r in rows}
    assert by_kind["citizen"].status == "failed" and "blocked" in by_kind["citizen"].last_error
    assert by_kind["card"].status == "pending"  # tried again later


# -- languages -------------------------------------------------------------------------------

async def test_english_for_english_speakers(tg: Telegram) -> None:
    s = tg.services
    assert "Hello, this is the Chancheng grid service" in await tg.say(
        private_text("/start", ENGLISH_CITIZEN, "en-GB"), ENGLISH_CITIZEN)
    assert "describe the problem" in await tg.say(
        private_text("hello", ENGLISH_CITIZEN, "en"), ENGLISH_CITIZEN)
    assert "您好" in await tg.say(private_text("你好"))  # others stay in Chinese
    await _workers(s)
    await _bind(tg)
    number = await _case(tg, reporter=ENGLISH_CITIZEN)
    await tg.send(press(f"act:accept:{number}", OUTSIDER, GROUP, language="en"))
    assert "that you may act on was found" in tg.api.answers()[-1]["text"]
    await s.actions.accept(number, await s.teams.worker("telegram", str(WORKER)))
    await tg.deliver()
    pushed = tg.api.last_to(ENGLISH_CITIZEN)["text"]
    assert pushed == f"Your case {number} has moved on: being handled. " \
                     f"Send \"/status {number}\" for details."
    assert "处置中" in tg.api.last_to(GROUP, "editMessageText")["text"]  # the team: Chinese


def test_english_catalogue_has_every_key_with_the_same_placeholders() -> None:
    def fields(text: str) -> set[tuple[str, str]]:
        return {(name, spec) for _, name, spec, _ in string.Formatter().parse(text) if name}

    zh = tomllib.loads((LOCALES / "zh.toml").read_text(encoding="utf-8"))
    en = tomllib.loads((LOCALES / "en.toml").read_text(encoding="utf-8"))
    assert sorted(set(zh) - set(en)) == []
    assert sorted(set(en) - set(zh)) == []
    assert {k: fields(zh[k]) for k in zh} == {k: fields(en[k]) for k in zh}
    untranslated = [k for k in zh if en[k] == zh[k] and re.search(r"[\u4e00-\u9fff]", zh[k])]
    assert untranslated == []


# -- polling (local use) ---------------------------------------------------------------------

async def test_poll_feeds_the_same_handlers(tg: Telegram) -> None:
    tg.api.updates = [private_text("/help")]
    stop = asyncio.Event()
    task = asyncio.create_task(telegram.poll(tg.channel, stop, timeout_s=0))
    for _ in range(100):
        if tg.api.texts_to(CITIZEN):
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert "deleteWebhook" in [n for n, _ in tg.api.calls]
    assert "禅城网格化服务平台" in tg.api.texts_to(CITIZEN)[0]


def test_fixtures_are_real_shaped() -> None:
    from telegram import Bot, Update

    bot = Bot(TOKEN)
    for path in sorted(Path(FIXTURES / "telegram").glob("*.json")):
        update = Update.de_json(json.loads(path.read_text(encoding="utf-8")), bot)
        assert update.update_id > 0, path.name


# -- the command line ------------------------------------------------------------------------

class _BotApiHandler(BaseHTTPRequestHandler):
    calls: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        kind = self.headers.get("Content-Type", "")
        params = json.loads(body) if "json" in kind else dict(parse_qsl(body.decode()))
        name = self.path.rsplit("/", 1)[-1]
        self.calls.append((name, params))
        payload = json.dumps({"ok": True, "result": BOT if name == "getMe" else True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        return None


def test_cli_set_webhook_bind_code_and_workers(tmp_path: Path, model_dir: Path) -> None:
    """The real Bot against a local HTTP server given as base_url."""
    from typer.testing import CliRunner

    from shell.cli import app as cli

    server = ThreadingHTTPServer(("127.0.0.1", 0), _BotApiHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"GRIDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db",
           "GRIDBOT_REDIS_URL": "", "GRIDBOT_NLP_MODEL_DIR": str(model_dir),
           "GRIDBOT_TELEGRAM_TOKEN": TOKEN, "GRIDBOT_TELEGRAM_SECRET_TOKEN": SECRET,
           "GRIDBOT_TELEGRAM_BASE_URL": f"http://127.0.0.1:{server.server_port}/bot"}
    runner = CliRunner()
    try:
        result = runner.invoke(cli, ["telegram", "set-webhook", "https://gridbot.example/telegram"],
                               env=env)
        assert result.exit_code == 0, result.output
        assert _BotApiHandler.calls[-1][0] == "setWebhook"
        params = _BotApiHandler.calls[-1][1]
        assert params["url"] == "https://gridbot.example/telegram"
        assert int(params["max_connections"]) == 100
        assert params["secret_token"] == SECRET
    finally:
        server.shutdown()
    # On the README's default set-up (embedded store, no Redis): the code is kept in the
    # database, where the server that later sees `/bind CODE` finds it.
    result = runner.invoke(cli, ["telegram", "bind-code", GRID], env=env)
    assert result.exit_code == 0, result.output
    code = result.stdout.strip().splitlines()[0]
    with sqlite3.connect(tmp_path / "cli.db") as db:
        assert db.execute("SELECT scope FROM bind_codes WHERE code = ?",
                          (code,)).fetchone() == (f"grid:{GRID}",)
    result = runner.invoke(cli, ["workers", "add", "李静平", "--role", "grid_worker", "--scope",
                                 f"grid:{GRID}", "--channel", "telegram", "--id", str(WORKER)],
                           env=env)
    assert result.exit_code == 0, result.output
    assert "李静平" in result.output
    result = runner.invoke(cli, ["workers", "add", "x", "--role", "boss", "--scope",
                                 f"grid:{GRID}", "--channel", "telegram", "--id", "1"], env=env)
    assert result.exit_code == 2


async def test_one_persons_queued_updates_do_not_stall_everyone_else() -> None:
    """Two slots; one person sends five slow updates: another person's update still runs
    at once instead of waiting behind the queue."""
    from telegram import Update, User

    processor = telegram.PerUserUpdates(2)
    release = asyncio.Event()
    done: list[str] = []

    def update(user_id: int) -> Update:
        upd = Update(update_id=user_id)
        upd._effective_user = User(id=user_id, first_name="u", is_bot=False)
        return upd

    async def slow(name: str) -> None:
        await release.wait()
        done.append(name)

    async def quick(name: str) -> None:
        done.append(name)

    busy = [asyncio.create_task(processor.process_update(update(1), slow(f"a{i}")))
            for i in range(5)]
    await asyncio.sleep(0.05)
    await asyncio.wait_for(processor.process_update(update(2), quick("b")), timeout=2)
    assert done == ["b"]
    release.set()
    await asyncio.gather(*busy)
    assert done == ["b", "a0", "a1", "a2", "a3", "a4"]  # one person's stay in order


async def test_a_reply_waits_out_a_short_flood_limit(tg: Telegram) -> None:
    """The reply that carries the case number must not be lost to one 429 (a reply sent
    through the Bot API: long polling's, or a webhook turn's all but last)."""
    from telegram import Update

    tg.api.flood_once[CITIZEN] = 1
    update = Update.de_json(private_text("帮助"), tg.channel.application.bot)
    assert await tg.channel.feed(update)  # the queue long polling uses
    await tg.channel.drain()
    refused = [p for n, p in tg.api.calls if n == "sendMessage" and int(p["chat_id"]) == CITIZEN]
    assert len(refused) == 2  # the refused send and the one after the wait
    assert "我的案件" in refused[-1]["text"]


async def test_the_webhook_answers_with_the_last_reply(tg: Telegram) -> None:
    """Telegram runs the Bot API call a webhook answers with: the turn's last reply goes
    there (no request of its own), earlier replies are sent before it, in order."""
    response = await tg.client.post("/telegram", json=private_text("帮助"),
                                    headers={telegram.SECRET_HEADER: SECRET})
    call = await response.get_json()
    assert call["method"] == "sendMessage" and call["chat_id"] == CITIZEN
    assert "我的案件" in call["text"]
    assert not tg.api.named("sendMessage"), "no separate request for the reply"

    answer = telegram.WebhookAnswer()
    token = telegram._webhook_answer.set(answer)
    try:
        await tg.channel.send_replies(CITIZEN, Outcome([
            Reply("第一条"), Reply("第二条", buttons=[Button("是", "yes")])]))
    finally:
        telegram._webhook_answer.reset(token)
    assert tg.api.texts_to(CITIZEN) == ["第一条"]
    assert answer.call == {"method": "sendMessage", "chat_id": CITIZEN, "text": "第二条",
                           "reply_markup": {"inline_keyboard": [[{"text": "是",
                                                                  "callback_data": "yes"}]]}}
    assert not answer.take("sendMessage", chat_id=CITIZEN, text="迟到"), "one call per answer"


async def test_a_turn_with_a_case_number_and_a_dropped_webhook_still_reach_the_person(
        tg: Telegram) -> None:
    """A case number must arrive: such a turn sends through the Bot API (where a flood wait
    is ridden out), not in the webhook's answer. A webhook call dropped while its turn runs
    (a time-out, a shutdown) does not lose the turn nor the reply that would have ridden
    in the answer."""
    from telegram import Update

    answer = telegram.WebhookAnswer()
    token = telegram._webhook_answer.set(answer)
    try:
        await tg.channel.send_replies(CITIZEN, Outcome([Reply("已受理，案件编号 20261202-0001")],
                                                       case={"number": "20261202-0001"}))
    finally:
        telegram._webhook_answer.reset(token)
    assert answer.call is None
    assert tg.api.texts_to(CITIZEN) == ["已受理，案件编号 20261202-0001"]
    answer.close()
    assert not answer.take("sendMessage", chat_id=CITIZEN, text="迟到"), "closed"

    update = Update.de_json(private_text("帮助"), tg.channel.application.bot)
    request = asyncio.ensure_future(tg.channel.work(update))
    while not tg.channel._working:  # the turn has started
        await asyncio.sleep(0)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await tg.channel.drain()
    assert "我的案件" in tg.api.texts_to(CITIZEN)[-1]


async def test_a_card_update_that_lost_its_lock_writes_nothing(tg: Telegram) -> None:
    """A card's record is written, and its lock let go, only while the lock is still the
    writer's: one that expired mid-send and was taken must not be undone by the old holder."""
    redis, sender = tg.services.redis, tg.channel.sender
    key = card_key(GROUP, "20261202-0099")
    async with sender._locked(key) as card:
        await redis.set(f"{key}:lock", "someone-else", px=5000)  # ours expired; taken
        card.save = {"message": 5, "notice": 9}
    assert await redis.hgetall(key) == {}
    assert await redis.get(f"{key}:lock") == "someone-else"

    other = card_key(GROUP, "20261202-0100")
    async with sender._locked(other) as card:
        assert card.shown == {}
        card.save = {"message": 6, "notice": 10}
    assert await redis.hgetall(other) == {"message": "6", "notice": "10", "caption": "0"}
    assert await redis.ttl(other) > 0 and await redis.get(f"{other}:lock") is None
    async with sender._locked(other) as card:  # nothing shown: the record stays as it was
        assert card.shown == {"message": "6", "notice": "10", "caption": "0"}
    assert await redis.hgetall(other) == {"message": "6", "notice": "10", "caption": "0"}


async def test_a_street_binds_its_chat_and_escalations_reach_it(tg_clocked: Telegram,
                                                                  clock: FakeClock) -> None:
    """A street binds its Telegram group like a grid; a case escalated to the street, and
    the street's 督办 reminders, arrive there instead of only in the console."""
    s = tg_clocked.services
    street_chat = -1009000000001
    code = await s.teams.new_bind_code("street:440604001")
    text = await tg_clocked.say(group_command(f"/bind@gridbot_test_bot {code}", chat=street_chat),
                                street_chat)
    assert "祖庙街道" in text
    number = await _case(tg_clocked)
    case = await s.cases.get(number)
    clock.now = case.handling_due
    from bot.timers import TimerRunner

    while await TimerRunner(s.cases).run_once():
        pass
    case = await s.cases.get(number)
    assert case.current_level == "street"
    clock.now = case.response_due  # the street has not accepted it in time
    while await TimerRunner(s.cases).run_once():
        pass
    await tg_clocked.deliver()
    sent = tg_clocked.api.texts_to(street_chat)
    assert any("【接单督办】" in m and number in m for m in sent)
    with pytest.raises(TeamsError):
        await s.teams.new_bind_code("street:nope")


def live_location(lat: float, lon: float, user: int, first: bool = False) -> dict:
    """A shared live location (first: the message; else an edit as it moves)."""
    update = _fixture("private_location")
    _as_user(update["message"], user, "zh-hans")
    update["message"]["location"] = {"latitude": lat, "longitude": lon, "live_period": 3600}
    if not first:
        update["edited_message"] = update.pop("message")
        update["edited_message"]["edit_date"] = update["edited_message"]["date"] + 60
    return update


async def test_a_patrol_with_a_live_track_a_find_and_its_on_the_spot_close(
        tg_clocked: Telegram, clock: FakeClock) -> None:
    """A grid worker starts a patrol, shares a live location, reports what they find with
    a photo, closes it on the spot (即办) with an after-photo, ends the patrol: the case is a
    patrol report handled on the spot, the track has its distance and coverage, and the
    worker's row shows both."""
    from bot.models import Patrol
    from bot.patrol import worker_figures

    tg, s = tg_clocked, tg_clocked.services
    await _workers(s)
    started = clock()
    assert "开始巡查" in await tg.say(private_text("开始巡查", user=WORKER), WORKER)
    # Walk south through the grid, ~110 m a step, the first position shared as a message.
    lat, lon = DEMO_POINT
    assert await tg.say(live_location(lat, lon, WORKER, first=True), WORKER) == ""
    for k in range(1, 5):
        clock.advance(minutes=2)
        assert await tg.say(live_location(lat - 0.001 * k, lon, WORKER), WORKER) == ""

    # A find: words, a place, a photo, confirm — the same dialog as a citizen's.
    text = await tg.say(private_text("路边墙上贴满了办证小广告，牛皮癣很多", user=WORKER),
                        WORKER)
    if "回复序号" in text:  # (a grid matter: 非法小广告, which the grid may close itself)
        labels = [b["text"] for row in tg.api.last_to(WORKER)["reply_markup"]["inline_keyboard"]
                  for b in row]
        pick = next(i for i, label in enumerate(labels, 1) if "小广告" in label)
        text = await tg.say(private_text(str(pick), user=WORKER), WORKER)
    text = await tg.say(private_location(lat - 0.002, lon, user=WORKER), WORKER)
    photo = private_photo(user=WORKER)
    await tg.say(photo, WORKER)
    text = await tg.say(private_text("确认", user=WORKER), WORKER)
    number = NUMBER.search(text).group(1)
    assert "巡查上报" in text
    case = await s.cases.get(number)
    assert case.source == "patrol" and case.status == Status.DISPATCHED
    assert case.item_code == "E0201" and case.handling_level == "grid"
    # 即办 needs the photo after, too: without it the close is refused.
    refused = await tg.say(private_text(f"办结 {number} 已经修好", user=WORKER), WORKER)
    assert "处理前后的照片" in refused
    after = private_photo(user=WORKER)
    after["message"]["photo"][-1]["file_id"] = "AgACAgUAAxkBAAIBR2worker-after"
    await tg.say(after, WORKER)
    done = await tg.say(private_text(f"办结 {number} 已更换井盖", user=WORKER), WORKER)
    assert "办结成功" in done
    case = await s.cases.get(number)
    assert case.status == Status.HANDLED and "on_spot" in [e.action for e in case.events]
    assert "AgACAgUAAxkBAAIBR2worker-after" in [m.ref for m in case.media]

    clock.advance(minutes=10)
    ended = await tg.say(private_text("结束巡查", user=WORKER), WORKER)
    assert "巡查结束" in ended and "0.44 公里" in ended
    async with s.db.session() as session:
        patrol = (await session.execute(select(Patrol))).scalar_one()
    assert 430 < patrol.distance_m < 460 and 0 < patrol.covered_share < 1
    assert not patrol.left_grid
    [row] = await worker_figures(s.db, started, clock() + timedelta(minutes=1))
    assert row["worker"] == "李静平" and row["patrols"] == 1 and row["km"] == 0.44
    assert row["found_on_patrol"] == 1 and row["on_the_spot"] == 1
    assert row["coverage"] == round(patrol.covered_share, 4)
    # `gridbot stats --by worker --json`: the same row, with the worker's appraisal (考核).
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBOT_")}
    env["GRIDBOT_DATABASE_URL"] = s.config.database_url
    done = gridbot("stats", "--by", "worker", "--month", started.strftime("%Y-%m"), "--json",
                   env=env)
    assert done.returncode == 0, done.stderr
    mine = next(r for r in json.loads(done.stdout)["workers"] if r["worker"] == "李静平")
    assert mine["patrols"] == 1 and mine["found_on_patrol"] == 1 and mine["on_the_spot"] == 1
    assert mine["parts"]["on_spot"]["value"] == 1.0
    assert abs(mine["parts"]["coverage"]["value"] - patrol.covered_share) < 0.01
    assert mine["score"] > 0 and mine["rank"] == 1


async def test_an_area_alert_reaches_a_telegram_user(tg_clocked: Telegram,
                                                     clock: FakeClock) -> None:
    """「关注 祖庙」: at the note hour the follower gets one short note of the cases filed and
    closed near the place — item names and counts, never anyone's words — and 「取消关注」
    stops it."""
    from bot.cases.drafts import CaseDraft as Draft

    tg, s = tg_clocked, tg_clocked.services
    follower = 6101
    assert "没有找到" in await tg.say(private_text("关注 火星基地", user=follower), follower)
    reply = await tg.say(private_text("关注 祖庙", user=follower), follower)
    assert "已关注「祖庙」" in reply and "18 点" in reply
    # 祖庙 is at 23.0345, 113.1115 (data/demo/gazetteer.csv); GRID is ~1.5 km away.
    clock.advance(minutes=30)
    code = next(i.code for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    grid = s.locator.from_point(23.0345, 113.1115).spot.grid.code
    near = await s.cases.file(Draft(text="祖庙门口堆了垃圾，电话13800138000", item_code=code,
                                    grid_code=grid, lat=23.0347, lon=113.1117),
                              ReporterRef("http", "someone"))
    far = await s.cases.file(Draft(text="很远的地方", item_code=code, grid_code=GRID,
                                   lat=DEMO_POINT[0], lon=DEMO_POINT[1]),
                             ReporterRef("http", "someone-else"))
    assert near.case.number != far.case.number
    assert await s.alerts.send_due() == 0  # 09:00: not yet the hour
    clock.now = clock.now.replace(hour=10, minute=5)  # 18:05 in Foshan (UTC+8)
    assert await s.alerts.send_due() == 1
    assert await s.alerts.send_due() == 0  # once a day
    await tg.deliver()
    [note] = tg.api.texts_to(follower)[-1:]
    assert "关注区域简报" in note and "新立案 1 件" in note
    assert "13800138000" not in note and "垃圾，电话" not in note
    assert "已取消" in await tg.say(private_text("取消关注", user=follower), follower)
    clock.now += timedelta(days=1)
    assert await s.alerts.send_due() == 0


# -- photos and the place on the team's card -------------------------------------------------

def jpeg(colour: str = "red", size: tuple[int, int] = (64, 48)) -> bytes:
    from io import BytesIO

    from PIL import Image
    out = BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def _own_media_folder(tg: Telegram, folder: Path) -> None:
    """Photos of this test in its own folder, not the checkout's var/media."""
    tg.services.config.media.local_dir = str(folder)
    tg.channel.sender.store = open_store(tg.services.config)


async def test_several_photos_go_as_an_album_then_the_card(tg: Telegram,
                                                          tmp_path: Path) -> None:
    """A mini-program photo (stored bytes, uploaded) and a Telegram file id: an album, then
    the card with its buttons as a text message, edited as text later; no point, no venue."""
    s, api = tg.services, tg.api
    _own_media_folder(tg, tmp_path / "media")
    await _workers(s)
    await _bind(tg)
    stored = jpeg()
    await open_store(s.config).put("mp/" + "a" * 32 + ".jpg", stored)
    code = next(i.code for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    filing = await s.cases.file(
        CaseDraft(text="路边垃圾桶倒了一地", item_code=code, grid_code=GRID, address="祖庙路18号",
                  media=["var/media/mp/" + "a" * 32 + ".jpg", "AgACfileid-two",
                         "var/media/mp/" + "b" * 32 + ".jpg"]),  # the last one: not stored
        ReporterRef("wechat_mp", "openid-1"))
    number = filing.case.number
    assert await tg.deliver() == 1
    album = api.last_to(GROUP, "sendMediaGroup")
    media = album["media"] if isinstance(album["media"], list) else json.loads(album["media"])
    assert [m["type"] for m in media] == ["photo", "photo"]
    assert media[1]["media"] == "AgACfileid-two"
    assert list(album["uploads"].values()) == [stored]  # the stored photo's own bytes
    card = api.last_to(GROUP)
    assert number in card["text"] and "祖庙路18号" in card["text"]
    assert callback_data(card)[0] == f"act:accept:{number}"
    assert not api.named("sendVenue") and not api.named("sendPhoto")

    worker = await s.teams.worker("telegram", str(WORKER))
    await s.actions.accept(number, worker)
    await tg.deliver()
    edit = api.last_to(GROUP, "editMessageText")
    assert int(edit["message_id"]) == int(card_key_message(await s.redis.hgetall(
        card_key(GROUP, number)))) and "处置中" in edit["text"]
    assert not api.named("editMessageCaption")


def card_key_message(record: dict[str, str]) -> str:
    assert record["caption"] == "0"
    return record["message"]


async def test_a_card_too_long_for_a_caption_follows_its_photo(tg: Telegram) -> None:
    s, api = tg.services, tg.api
    await _workers(s)
    await _bind(tg)
    code = next(i.code for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    await s.cases.file(CaseDraft(text="井盖松动，" * 300, item_code=code, grid_code=GRID,
                                 lat=DEMO_POINT[0], lon=DEMO_POINT[1], media=["AgACone"]),
                       ReporterRef("telegram", str(CITIZEN)))
    await tg.deliver()
    photo = api.last_to(GROUP, "sendPhoto")
    assert photo["photo"] == "AgACone" and "caption" not in photo and "reply_markup" not in photo
    card = api.last_to(GROUP)
    assert len(card["text"]) > 1024 and callback_data(card)
    assert api.last_to(GROUP, "sendVenue")["reply_parameters"]["message_id"] == \
        int((await s.redis.hgetall(card_key(GROUP, api_number(card))))["message"])


def api_number(card: dict[str, Any]) -> str:
    match = NUMBER.search(card["text"]) or re.search(r"(\d{8}-\d{4})", card["text"])
    assert match
    return match.group(1)


async def test_a_venue_names_the_place_on_the_card(tg: Telegram) -> None:
    """A place picked from Telegram's list (a venue): its title and address are the case's
    address, and the team's card says it instead of 「（按定位）」."""
    s, api = tg.services, tg.api
    await _workers(s)
    await _bind(tg)
    text = await tg.say(private_text("祖庙路边的路灯晚上不亮"))
    if "回复序号" in text:
        await tg.say(press("1", CITIZEN, CITIZEN))
    venue = private_location(*DEMO_POINT)
    venue["message"]["venue"] = {
        "location": venue["message"]["location"], "title": "同济小学",
        "address": "佛山市禅城区同济路"}
    text = await tg.say(venue)
    assert "请确认" in text and "同济小学 佛山市禅城区同济路" in text
    text = await tg.say(press("确认", CITIZEN, CITIZEN))
    number = NUMBER.search(text).group(1)
    assert (await s.cases.get(number)).address.startswith("同济小学 佛山市禅城区同济路")
    await tg.deliver()
    card = api.last_to(GROUP)
    assert "同济小学 佛山市禅城区同济路" in card["text"] and "按定位" not in card["text"]
    assert api.last_to(GROUP, "sendVenue")["address"].startswith("同济小学")



async def test_the_console_fetches_a_telegram_photo_once(tg: Telegram, tmp_path: Path) -> None:
    """A reporter's Telegram photo is a file id: the console fetches it from Telegram the
    first time staff look, keeps it in the store, and serves the kept copy after that."""
    from adapters.case_photos import case_photo as _photo

    _own_media_folder(tg, tmp_path / "media")
    photo = jpeg("green")
    tg.api.files["AgACkeepme.jpg"] = photo
    assert await _photo(tg.services, "AgACkeepme") == photo
    assert [c for c, _ in tg.api.calls].count("getFile") == 1
    kept = tmp_path / "media" / downloaded_key("telegram", "AgACkeepme")
    assert kept.read_bytes() == photo
    assert await _photo(tg.services, "AgACkeepme") == photo
    assert [c for c, _ in tg.api.calls].count("getFile") == 1  # the kept copy



async def test_photos_telegram_refuses_leave_the_card_as_text(tg: Telegram) -> None:
    s, api = tg.services, tg.api
    await _workers(s)
    await _bind(tg)
    api.refuse_photos = True
    code = next(i.code for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    filing = await s.cases.file(CaseDraft(text="绿化带里堆了建筑垃圾", item_code=code,
                                          grid_code=GRID, media=["AgACexpired"]),
                                ReporterRef("telegram", str(CITIZEN)))
    assert await tg.deliver() == 1
    assert api.named("sendPhoto")  # tried
    card = api.last_to(GROUP)
    assert filing.case.number in card["text"] and callback_data(card)
    assert (await s.redis.hgetall(card_key(GROUP, filing.case.number)))["caption"] == "0"


async def test_the_district_gets_a_weekly_digest_of_hot_spots(tg_clocked: Telegram,
                                                              clock: FakeClock) -> None:
    """A district binds its chat (`district:CODE`); on Monday at the note hour the week's
    hot spots of its cases arrive there, once."""
    from bot.cases.drafts import CaseDraft as Draft

    tg, s = tg_clocked, tg_clocked.services
    district_chat = -1009000000044
    code = await s.teams.new_bind_code("district:440604")
    assert "禅城区" in await tg.say(group_command(f"/bind@gridbot_test_bot {code}",
                                                chat=district_chat), district_chat)
    item = next(i.code for i in s.catalogue.items if i.name == "暴露垃圾")
    assert await s.digest.send_due() == 0  # Monday 09:00: not yet the hour
    clock.now = clock.now.replace(hour=10, minute=30)  # 18:30: the digest of the week before
    assert await s.digest.send_due() == 1  # … a quiet one
    await tg.deliver()
    assert "没有反映集中的问题" in tg.api.texts_to(district_chat)[-1]
    clock.now = clock.now.replace(day=24)  # the week's reports, from Tuesday
    said = ["同济路菜市场门口垃圾堆成山，臭气熏天", "同济路菜市场门口的垃圾好几天没人清",
            "菜市场门口垃圾成堆没人管，同济路这边", "同济路菜市场垃圾堆积发臭"]
    for k, words in enumerate(said):
        clock.advance(hours=5)
        await s.cases.file(Draft(text=words, item_code=item, grid_code=GRID,
                                 lat=DEMO_POINT[0] - k * 0.0015, lon=DEMO_POINT[1]),  # 165 m apart
                           ReporterRef("telegram", f"resident-{k}"))
    assert await s.digest.send_due() == 0  # this week's was written
    clock.now = clock.now.replace(day=30, hour=10, minute=30)  # Monday 11-30, 18:30 in Foshan
    assert await s.digest.send_due() == 1
    assert await s.digest.send_due() == 0  # once a week
    await tg.deliver()
    [digest] = tg.api.texts_to(district_chat)[-1:]
    assert "本周热点" in digest and "禅城区" in digest and "菜市场" in digest
    assert "resident-" not in digest


# -- short videos, and the result photo for the reporter ------------------------------------

async def test_a_citizens_video_is_kept_and_goes_to_the_team_with_send_video(
        tg: Telegram, tmp_path: Path) -> None:
    """A video in private chat is downloaded once, checked and stored; the case's first card
    is its caption (sendVideo with the buttons), later cards edit that caption."""
    s, api = tg.services, tg.api
    _own_media_folder(tg, tmp_path / "media")
    await _workers(s)
    await _bind(tg)
    api.files["BAACvideo-manhole.jpg"] = MP4  # the fake's getFile names every file .jpg
    assert await tg.say(private_video("BAACvideo-manhole", len(MP4))) == t("video_first")
    assert [c for c, _ in api.calls].count("download") == 1
    text = await tg.say(private_text("祖庙路边的井盖不见了，很危险"))
    if "回复序号" in text:
        await tg.say(press("1", CITIZEN, CITIZEN))
    assert "请确认" in await tg.say(private_location(*DEMO_POINT))
    number = NUMBER.search(await tg.say(press("确认", CITIZEN, CITIZEN))).group(1)
    case = await s.cases.get(number)
    async with s.db.session() as session:
        [ref] = (await session.execute(select(CaseMedia.ref).where(
            CaseMedia.case_id == case.id))).scalars().all()
    assert is_video_ref(ref)
    key = stored_key(ref)
    assert key and (tmp_path / "media" / key).read_bytes() == MP4

    await tg.deliver()
    video = api.last_to(GROUP, "sendVideo")
    assert number in video["caption"] and callback_data(video)[0] == f"act:accept:{number}"
    assert list(video["uploads"].values()) == [MP4]
    assert not api.named("sendPhoto") and not api.named("sendMediaGroup")
    assert (await s.redis.hgetall(card_key(GROUP, number)))["caption"] == "1"
    await s.actions.accept(number, await s.teams.worker("telegram", str(WORKER)))
    await tg.deliver()
    assert "处置中" in api.last_to(GROUP, "editMessageCaption")["caption"]


async def test_a_video_follows_the_photos_of_a_card(tg: Telegram, tmp_path: Path) -> None:
    s, api = tg.services, tg.api
    _own_media_folder(tg, tmp_path / "media")
    await _workers(s)
    await _bind(tg)
    from bot.media_store import keep_video
    ref = await keep_video(open_store(s.config), MP4, s.config.media.video_max_bytes)
    code = next(i.code for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    filing = await s.cases.file(CaseDraft(text="井盖松动", item_code=code, grid_code=GRID,
                                          media=["AgACone", ref]),
                                ReporterRef("telegram", str(CITIZEN)))
    await tg.deliver()
    names = [n for n, p in api.calls if n.startswith("send") and int(p["chat_id"]) == GROUP]
    assert names[-3:] == ["sendPhoto", "sendVideo", "sendMessage"]
    assert "caption" not in api.last_to(GROUP, "sendVideo")
    assert filing.case.number in api.last_to(GROUP)["text"]


async def test_a_file_that_is_no_video_is_refused_in_chinese(tg: Telegram,
                                                              tmp_path: Path) -> None:
    s, api = tg.services, tg.api
    _own_media_folder(tg, tmp_path / "media")
    api.files["BAACnot-a-video.jpg"] = b"<html>not a video</html>"
    assert await tg.say(private_video("BAACnot-a-video", 24)) == t("media.video_not_video")
    # Over the cap: refused from its declared size, without a download.
    downloads = [c for c, _ in api.calls].count("download")
    too_big = s.config.media.video_max_bytes + 1
    assert await tg.say(private_video("BAACtoo-big", too_big, note=True)) == t(
        "media.video_too_large", mb="20")
    assert [c for c, _ in api.calls].count("download") == downloads
    assert not (tmp_path / "media" / "video").exists()
    text = await tg.say(private_text("祖庙路边的井盖不见了，很危险"))
    assert "视频" not in text  # nothing was kept for the report


async def test_a_telegram_reporter_gets_the_result_photo_after_the_words(
        tg: Telegram, tmp_path: Path) -> None:
    """办结 with a worker's Telegram photo and a stored one: the reporter reads the update,
    then gets both photos (a file id as it is, stored bytes uploaded), once each."""
    s, api = tg.services, tg.api
    _own_media_folder(tg, tmp_path / "media")
    await _workers(s)
    await _bind(tg)
    number = await _case(tg)
    stored = jpeg("blue")
    await open_store(s.config).put("mp/" + "c" * 32 + ".jpg", stored)
    worker = await s.teams.worker("telegram", str(WORKER))
    await s.actions.accept(number, worker)
    await tg.deliver()
    await s.actions.resolve(number, worker, "井盖已更换",
                            media=["AgACresult-photo", "var/media/mp/" + "c" * 32 + ".jpg"])
    await tg.deliver()
    to_citizen = [(n, p) for n, p in api.calls
                  if n.startswith("send") and int(p.get("chat_id", 0) or 0) == CITIZEN]
    assert [n for n, _ in to_citizen[-3:]] == ["sendMessage", "sendPhoto", "sendPhoto"]
    assert "井盖已更换" in to_citizen[-3][1]["text"]
    assert to_citizen[-2][1]["photo"] == "AgACresult-photo"
    assert list(to_citizen[-1][1]["uploads"].values()) == [stored]
    async with s.db.session() as session:
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
    assert all(r.status == "delivered" for r in rows)

