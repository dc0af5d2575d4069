"""Telegram, inbound half: the webhook, and Updates turned into the project's messages.

POST /telegram checks the secret token, drops retried update_ids and has a
python-telegram-bot Application (built with `updater(None)`: we own the web server) work the
Update before answering. The turn's last reply (or the toast of a pressed button) rides in the
webhook's answer as a Bot API method, which Telegram then executes: one HTTP request to the
Bot API fewer per update. Earlier replies of the same turn are sent first, so a turn's replies
keep their order (a status push from the outbox may still come between two turns). Telegram
reports no failure of such a call, so a turn that filed or showed a case (its number must
arrive) sends everything through the Bot API, which rides out flood waits.

- Private chats are citizens: text, shared locations (WGS-84), photos (file_id as media
  ref), /start, /help, /cases and button presses become InboundMessages for the dialog
  (handlers.router.handle); its replies go back with their buttons as inline keyboards.
- Groups are grid teams: /bind CODE, /unbind (admins), /cases, and the buttons on case
  cards ("act:<action>:<number>"), which call WorkerActions for the registered worker who
  pressed. 办结 and 退回 ask for a note / reason, read from that worker's next message in the
  group (pending state in Redis with a TTL).

The outbound half (cards edited in place, notices, status pushes) is adapters.telegram_outbound.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import weakref
from collections.abc import Awaitable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from quart import Blueprint, Response, current_app, jsonify, request
from telegram import CallbackQuery, ForceReply, Message, Update, User
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import (
    Application,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest

from adapters import app_state, inbound
from adapters.json_body import json_or_none
from adapters.telegram_http import AiohttpRequest
from adapters.telegram_outbound import (
    CHANNEL,
    LANGUAGE_TTL_S,
    TelegramSender,
    fit,
    keyboard,
    language_key,
)
from bot.actions import ActionRefused
from bot.config import TelegramConfig
from bot.kv import PREFIX
from bot.media import PhotoRefused
from bot.media_store import keep_video, open_store
from bot.messages import InboundMessage, Location, Outcome, Reply
from bot.queries import open_cases_of_grid, refusal_before_prompt
from bot.services import Services
from bot.texts import t
from handlers import intents, team

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
PENDING_TTL_S = 15 * 60  # how long a 办结 / 退回 prompt waits for its note
MAX_CONCURRENT_UPDATES = 64
CASES_LIMIT = 20
REPLY_ATTEMPTS = 3
STOP_WAIT_S = 10.0
MAX_REPLY_WAIT_S = 10.0  # a longer flood wait: the person has moved on; don't hold their lock
PROMPTED = {"resolve": "team.ask_note", "give_back": "team.ask_reason",
            "verify_fail": "team.ask_check_reason", "refuse_report": "verify.ask_reason"}
DONE_TOAST = {"accept": "team.accepted", "arrive": "team.arrived", "hand_up": "team.handed_up",
              "verify": "team.verified", "confirm_report": "verify.confirmed"}
# What a worker is told after the note a button asked for.
NOTED = {"resolve": "team.resolved", "give_back": "team.given_back",
         "verify_fail": "team.check_failed", "refuse_report": "verify.refused"}

blueprint = Blueprint("telegram", __name__)


@dataclass
class WebhookAnswer:
    """The one Bot API call a webhook may answer with; the first taker gets it, until the
    answer is closed (tasks started during the turn share it and may outlive the request)."""

    call: dict[str, Any] | None = None
    closed: bool = False

    def take(self, method: str, **params: Any) -> bool:
        if self.call is not None or self.closed:
            return False
        self.call = {"method": method, **{k: v for k, v in params.items() if v is not None}}
        return True

    def close(self) -> dict[str, Any] | None:
        self.closed = True
        return self.call


# Set while POST /telegram works its update: handlers in that task may answer through it.
_webhook_answer: ContextVar[WebhookAnswer | None] = ContextVar("telegram_webhook_answer",
                                                               default=None)


def language_of_user(user: User | None) -> str:
    code = (user.language_code or "") if user else ""
    return "en" if code.lower().startswith("en") else "zh"


def _command_text(text: str) -> str:
    """'/cases@gridbot' → '/cases'; '/start payload' (deep links) → '/start'."""
    if not text.startswith("/"):
        return text
    head, _, rest = text.partition(" ")
    head = head.split("@", 1)[0]
    return head if head == "/start" or not rest else f"{head} {rest}"


class PerUserUpdates(BaseUpdateProcessor):
    """Different people's updates run concurrently; one person's run in arrival order,
    because their dialog state is read, changed and written back."""

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = (
            weakref.WeakValueDictionary())

    # PTB marks process_update @final (its semaphore, then do_process_update); the order here
    # is the point of this class, so it is overridden on purpose.
    async def process_update(  # type: ignore[misc]
            self, update: object, coroutine: Awaitable[Any]) -> None:
        """The person's lock first, a concurrency slot second: taken the other way round, one
        person's queued updates would hold slots while they wait and stall everyone else."""
        user = update.effective_user if isinstance(update, Update) else None
        key = user.id if user else 0
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            await super().process_update(update, coroutine)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        await coroutine

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


class TelegramChannel:
    def __init__(self, services: Services, config: TelegramConfig,
                 request: BaseRequest | None = None,
                 get_updates_request: BaseRequest | None = None) -> None:
        self.services = services
        self.config = config
        # Tests may pass a fake Bot API; otherwise the calls go over aiohttp (telegram_http).
        self.application = (
            Application.builder().token(config.token).base_url(config.base_url)
            .base_file_url(config.base_file_url).updater(None)
            .concurrent_updates(PerUserUpdates(MAX_CONCURRENT_UPDATES))
            .request(request or AiohttpRequest())
            .get_updates_request(get_updates_request or AiohttpRequest(pool_size=1))
            .build())
        self.sender = TelegramSender(self.application.bot, services.redis,
                                     open_store(services.config))
        self._working: set[asyncio.Future[Any]] = set()  # webhook turns and their late sends
        self._add_handlers()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        await self.application.initialize()  # getMe: the bot's username for /cmd@bot
        await self.application.start()

    async def stop(self) -> None:
        if self._working:  # webhook turns under way finish first (within reason)
            await asyncio.wait(self._working, timeout=STOP_WAIT_S)
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    def accepts(self, given: str) -> bool:
        secret = self.config.secret_token
        return bool(secret) and hmac.compare_digest(given.encode(), secret.encode())

    async def _first_time(self, update: Update) -> bool:
        """False for an update Telegram already delivered (it retries on errors)."""
        return await inbound.first_time(self.services, f"{CHANNEL}:update",
                                        str(update.update_id))

    async def feed(self, update: Update) -> bool:
        """Queue an update for the Application to work in the background (long polling)."""
        if not await self._first_time(update):
            return False
        await self.application.update_queue.put(update)
        return True

    async def work(self, update: Update) -> dict[str, Any]:
        """Work an update now (the webhook); the Bot API call to answer it with, or {}.
        It goes through the same per-person processor as queued updates, in a task of its
        own: if the webhook call is dropped meanwhile (a time-out, a shutdown), the turn
        still finishes, and sends what would have ridden in the answer itself."""
        if not await self._first_time(update):
            return {}
        answer = WebhookAnswer()
        task = self._track(self._work(update, answer))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(lambda _: self._send_orphaned(answer))
            raise
        return answer.close() or {}

    async def _work(self, update: Update, answer: WebhookAnswer) -> None:
        _webhook_answer.set(answer)  # this task's context only
        app = self.application
        await app.update_processor.process_update(update, app.process_update(update))

    def _send_orphaned(self, answer: WebhookAnswer) -> None:
        call = answer.close()
        if call is None:
            return
        params = dict(call)
        method = params.pop("method")
        self._track(self.application.bot.do_api_request(method, api_kwargs=params))

    def _track(self, work: Awaitable[Any]) -> asyncio.Future[Any]:
        """Run `work` as a task that stop() and drain() wait for."""
        task = asyncio.ensure_future(work)
        self._working.add(task)
        task.add_done_callback(self._working.discard)
        return task

    async def drain(self) -> None:
        """Wait until every queued update and every webhook's turn has been worked (tests,
        shutdown)."""
        await self.application.update_queue.join()
        while self._working:
            await asyncio.gather(*self._working, return_exceptions=True)

    # -- routing ----------------------------------------------------------------------------

    def _add_handlers(self) -> None:
        groups = filters.ChatType.GROUPS & filters.UpdateType.MESSAGE
        app = self.application
        app.add_handler(CallbackQueryHandler(self.on_button))
        app.add_handler(CommandHandler("bind", self.on_bind, filters=groups))
        app.add_handler(CommandHandler("unbind", self.on_unbind, filters=groups))
        app.add_handler(CommandHandler("cases", self.on_group_cases, filters=groups))
        app.add_handler(CommandHandler(["help", "start"], self.on_group_help, filters=groups))
        # Edited messages are left alone (the dialog has moved on since), but for a live
        # location's updates: a worker's patrol track.
        app.add_handler(MessageHandler(filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE,
                                       self.on_private))
        app.add_handler(MessageHandler(
            filters.ChatType.PRIVATE & filters.UpdateType.EDITED_MESSAGE & filters.LOCATION,
            self.on_live_location))
        app.add_handler(MessageHandler(groups & (filters.TEXT | filters.PHOTO),
                                       self.on_group_message))
        app.add_error_handler(self.on_error)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram update %s failed", getattr(update, "update_id", "?"),
                  exc_info=context.error)

    # -- citizens (private chats) -----------------------------------------------------------

    async def on_private(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or user.is_bot:
            return
        if await self._pending_reply(message, user):  # a worker's note, asked for here
            return
        location = None
        if message.location is not None:  # Telegram pins are WGS-84
            # A venue (a place picked from the map's list) names itself: keep its words.
            venue = message.venue
            label = " ".join(x for x in (venue.title, venue.address) if x) if venue else ""
            location = Location(message.location.latitude, message.location.longitude, "wgs84",
                                label=label)
        media = [message.photo[-1].file_id] if message.photo else []  # the largest size
        if message.video or message.video_note:
            kept = await self._keep_video(message, language_of_user(user))
            if kept is None:
                return
            media = [kept]
        msg = InboundMessage(CHANNEL, str(user.id),
                             text=_command_text(message.text or message.caption or ""),
                             location=location, media=media,
                             message_id=str(message.message_id),
                             language=language_of_user(user),
                             live="start" if message.location and message.location.live_period
                             else "")
        await self._converse(message.chat_id, msg)

    async def _keep_video(self, message: Message, language: str) -> str | None:
        """A citizen's short video, downloaded, checked and stored (Telegram's file links
        expire); its media ref, or None once the sender has been told why it was refused."""
        video = message.video or message.video_note
        assert video is not None  # the caller saw one
        limit = self.services.config.media.video_max_bytes
        too_large = PhotoRefused("media.video_too_large", mb=f"{limit / 1_048_576:g}")
        try:
            if video.file_size and video.file_size > limit:
                raise too_large  # known before the download
            try:
                data = bytes(await (await video.get_file()).download_as_bytearray())
            except BadRequest:  # "file is too big": over the Bot API's 20 MB download cap
                raise too_large from None
            store = self.sender.store or open_store(self.services.config)
            return await keep_video(store, data, limit)
        except PhotoRefused as refused:
            log.info("telegram video refused: %s", refused.key)
            await self.send_replies(message.chat_id, Outcome(
                [Reply(t(refused.key, language, **refused.values))]))
            return None

    async def on_live_location(self, update: Update,
                               context: ContextTypes.DEFAULT_TYPE) -> None:
        """A live location moved: the next point of the sender's patrol (silent)."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or message.location is None:
            return
        msg = InboundMessage(CHANNEL, str(user.id),
                             location=Location(message.location.latitude,
                                               message.location.longitude, "wgs84"),
                             message_id=f"live:{message.message_id}:{update.update_id}",
                             language=language_of_user(user), live="update")
        await inbound.follow(self.services, msg)

    async def _converse(self, chat_id: int, msg: InboundMessage) -> None:
        # Pushes are rendered later, without the person's message: keep their language.
        outcome = await inbound.converse(
            self.services, msg, remember={language_key(msg.user): (msg.language, LANGUAGE_TTL_S)})
        await self.send_replies(chat_id, outcome)

    async def send_replies(self, chat_id: int, outcome: Outcome) -> None:
        """In order; the last may ride in the webhook's answer, which Telegram runs after,
        unless the turn carries a case number (that one goes where failures are seen)."""
        if not outcome.replies:
            return
        *first, last = outcome.replies
        for reply in first:
            await self._send_reply(chat_id, reply)
        answer = _webhook_answer.get()
        markup = keyboard(last.buttons)
        if outcome.case is None and answer is not None and answer.take(
                "sendMessage", chat_id=chat_id, text=fit(last.text),
                reply_markup=markup.to_dict() if markup else None):
            return
        await self._send_reply(chat_id, last)

    @staticmethod
    async def _answer_query(query: CallbackQuery, text: str | None = None,
                            show_alert: bool = False) -> None:
        """A button's toast: in the webhook's answer when it is still free."""
        answer = _webhook_answer.get()
        if answer is not None and answer.take("answerCallbackQuery", callback_query_id=query.id,
                                              text=text, show_alert=show_alert or None):
            return
        await query.answer(text, show_alert=show_alert)

    async def _send_reply(self, chat_id: int, reply: Reply) -> None:
        """A reply (it may carry the new case number) rides out a short flood wait or a
        refused connection. Not a time-out: that send may have landed, and a second copy
        would confuse more than the wait for the next message."""
        for attempt in range(REPLY_ATTEMPTS):
            try:
                await self.application.bot.send_message(chat_id, fit(reply.text),
                                                        reply_markup=keyboard(reply.buttons))
                return
            except RetryAfter as exc:
                wait = exc.retry_after
                wait_s = wait.total_seconds() if hasattr(wait, "total_seconds") else float(wait)
                if wait_s > MAX_REPLY_WAIT_S or attempt == REPLY_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(wait_s)
            except TimedOut:
                raise
            except NetworkError:
                if attempt == REPLY_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.5 * 2**attempt)

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        data, user = query.data or "", query.from_user
        language = language_of_user(user)
        if data.startswith("act:"):
            await self._worker_action(query, data, language)
            return
        chat = query.message.chat if query.message else None
        if chat is None or chat.type != ChatType.PRIVATE:
            await query.answer(t("team.bad_button", language), show_alert=True)
            return
        await query.answer()
        # One answer per question: take the keyboard away so it is not pressed twice.
        try:
            await query.edit_message_reply_markup(reply_markup=None)
        except TelegramError:
            log.debug("could not remove the keyboard", exc_info=True)
        msg = InboundMessage(CHANNEL, str(user.id), text=data, message_id=f"cb:{query.id}",
                             language=language)
        await self._converse(chat.id, msg)

    # -- grid teams (groups) ----------------------------------------------------------------

    async def _worker_action(self, query: CallbackQuery, data: str, language: str) -> None:
        _, action, number = [*data.split(":", 2), "", ""][:3]
        user = query.from_user
        chat = query.message.chat if query.message else None
        if not number or chat is None or action not in (*DONE_TOAST, *PROMPTED):
            await self._answer_query(query, t("team.bad_button", language), show_alert=True)
            return
        s = self.services
        worker = await s.teams.worker(CHANNEL, str(user.id))
        try:
            if action in PROMPTED:
                refused = await refusal_before_prompt(s.db, s.teams, number, worker, action)
                if refused is not None:
                    raise refused
                assert worker is not None  # may_act passed
                await s.redis.set(_pending_key(chat.id, user.id),
                                  json.dumps({"action": action, "case": number, "media": []}),
                                  ex=PENDING_TTL_S)
                await self._answer_query(query, t("team.reply_here", language))
                await self.application.bot.send_message(
                    chat.id, t(PROMPTED[action], language, name=worker.name, number=number),
                    reply_markup=ForceReply(selective=False))
                return
            await team.perform(team.TeamCommand(action, number), worker, s)
        except ActionRefused as refused:  # nothing changed: say why, to the presser only
            await self._answer_query(query, refused.text(language), show_alert=True)
            return
        await self._answer_query(query, t(DONE_TOAST[action], language, number=number))

    async def on_group_message(self, update: Update,
                               context: ContextTypes.DEFAULT_TYPE) -> None:
        """A note or reason a worker was asked for; other group talk is not ours."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        if await self._pending_reply(message, user):
            return
        # A worker's typed command (核查通过 20261203-0004); other group talk is not ours.
        msg = InboundMessage(CHANNEL, str(user.id), text=(message.text or "").strip(),
                             message_id=str(message.message_id),
                             language=language_of_user(user))
        done = await team.from_worker(msg, self.services)
        if done is not None:
            await self.send_replies(message.chat_id, done)

    async def _pending_reply(self, message: Message, user: User) -> bool:
        """The note or reason a worker was asked for after a button (in the group, or in a
        private chat with the bot: a department worker's): carried out, never taken for a
        citizen's complaint. False when nothing was asked of them here."""
        key = _pending_key(message.chat_id, user.id)
        raw = await self.services.redis.get(key)
        if not raw:
            return False
        pending = json.loads(raw)
        language = language_of_user(user)
        text = (message.text or message.caption or "").strip()
        if message.photo and pending["action"] == "resolve":
            pending["media"].append(message.photo[-1].file_id)  # evidence photo
        if not text:
            if message.photo:
                await self.services.redis.set(key, json.dumps(pending), ex=PENDING_TTL_S)
                await message.reply_text(t("team.photo_kept", language))
            return True
        await self.services.redis.delete(key)
        if intents.is_cancel(text):
            await message.reply_text(t("team.pending_cancelled", language))
            return True
        s, number = self.services, pending["case"]
        worker = await s.teams.worker(CHANNEL, str(user.id))
        done = NOTED[pending["action"]]
        try:
            await team.perform(team.TeamCommand(pending["action"], number, text,
                                                pending["media"]), worker, s)
        except ActionRefused as refused:
            await message.reply_text(refused.text(language))
            return True
        assert worker is not None  # the action checked who acts
        await message.reply_text(t(done, language, name=worker.name, number=number))
        return True

    async def on_bind(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, language = update.effective_message, language_of_user(update.effective_user)
        if message is None:
            return
        if not context.args:
            await message.reply_text(t("team.bind_usage", language))
            return
        s = self.services
        bound = await s.teams.bind(context.args[0], CHANNEL, str(message.chat_id),
                                   s.cases.clock())
        if bound is None:
            await message.reply_text(t("team.bind_failed", language))
            return
        if ":" in bound:  # street:CODE / department:NAME: a street's or department's chat
            await message.reply_text(t("team.bound_office", language,
                                       name=s.cases.assignee_label(bound)))
            return
        await message.reply_text(t("team.bound", language, grid=self._grid_name(bound)))

    async def on_unbind(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        language = language_of_user(user)
        member = await context.bot.get_chat_member(message.chat_id, user.id)
        if member.status not in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER):
            await message.reply_text(t("team.admins_only", language))
            return
        unbound = await self.services.teams.unbind(CHANNEL, str(message.chat_id))
        await message.reply_text(t("team.unbound" if unbound else "team.not_bound", language))

    async def on_group_cases(self, update: Update,
                             context: ContextTypes.DEFAULT_TYPE) -> None:
        message, language = update.effective_message, language_of_user(update.effective_user)
        if message is None:
            return
        s = self.services
        grid_code = await s.teams.grid_of_group(CHANNEL, str(message.chat_id))
        if grid_code is None:
            await message.reply_text(t("team.not_bound", language))
            return
        await message.reply_text(fit(await self._open_cases_text(grid_code, language)))

    async def _open_cases_text(self, grid_code: str, language: str) -> str:
        s, grid = self.services, self._grid_name(grid_code)
        cases = await open_cases_of_grid(s.db, grid_code, CASES_LIMIT)
        if not cases:
            return t("team.cases_none", language, grid=grid)
        now = s.cases.clock()
        lines = [t("team.cases_header", language, grid=grid)]
        for case in cases:
            overdue = case.handling_due is not None and case.handling_due < now
            lines.append(t("team.cases_line", language, number=case.number,
                           item=s.cases.item_label(case),
                           status=t(f"status.{case.status}", language),
                           deadline=s.cases.local(case.handling_due),
                           overdue=t("team.overdue_mark", language) if overdue else ""))
        return "\n".join(lines)

    async def on_group_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is not None:
            await message.reply_text(t("team.help", language_of_user(update.effective_user)))

    def _grid_name(self, grid_code: str) -> str:
        area = self.services.grids.get(grid_code)
        return area.name if area else grid_code


def _pending_key(chat_id: int, user_id: int) -> str:
    return f"{PREFIX}tgpending:{chat_id}:{user_id}"


# -- the channel's plug (adapters.channels) --------------------------------------------------

async def start(services: Services, config: TelegramConfig | None = None,
                request: BaseRequest | None = None,
                get_updates_request: BaseRequest | None = None) -> TelegramChannel | None:
    """Start the Application and register the outbox sender; nothing without a token."""
    config = config or services.config.telegram
    if not config.token:
        return None
    if not config.secret_token:
        log.warning("telegram.secret_token is empty: POST /telegram refuses every call "
                    "(use `gridbot telegram poll` locally)")
    channel = TelegramChannel(services, config, request, get_updates_request)
    await channel.start()
    services.channels[CHANNEL] = channel
    services.outbox.register(CHANNEL, channel.sender)
    return channel


async def stop(services: Services) -> None:
    channel = services.channels.pop(CHANNEL, None)
    if channel is not None:
        services.outbox.unregister(CHANNEL)
        await channel.stop()


def running(services: Services) -> TelegramChannel | None:
    return services.channels.get(CHANNEL)


async def poll(channel: TelegramChannel, stop_event: asyncio.Event, timeout_s: int = 30) -> None:
    """Long polling for local use: the update queue, with the webhook's handlers."""
    bot = channel.application.bot
    await bot.delete_webhook()  # getUpdates is refused while a webhook is set
    offset: int | None = None
    while not stop_event.is_set():
        try:
            updates = await bot.get_updates(offset=offset, timeout=timeout_s,
                                            allowed_updates=Update.ALL_TYPES)
        except TelegramError:
            log.warning("getUpdates failed; retrying", exc_info=True)
            await asyncio.sleep(3)
            continue
        for update in updates:
            offset = update.update_id + 1
            await channel.feed(update)


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


@blueprint.post("/telegram")
async def webhook() -> Response:
    services = app_state.state_of(current_app).services
    channel = running(services) if services is not None else None
    if channel is None:
        return _error(404, "the Telegram channel is not configured")
    if not channel.accepts(request.headers.get(SECRET_HEADER, "")):
        return _error(403, "wrong or missing secret token")
    data = await json_or_none()
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        return _error(400, "not a Telegram update")
    try:
        update = Update.de_json(data, channel.application.bot)
    except Exception:  # a shape we cannot read: a retry would not read it either
        log.warning("unreadable telegram update %s", data.get("update_id"), exc_info=True)
        return jsonify({})
    return jsonify(await channel.work(update))

