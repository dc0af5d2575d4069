"""Telegram, outbound half: replies and outbox rows rendered as Telegram messages.

- kind=card: the grid team's view of a case. The first card is sent to the group; every
  later card of the same case edits that message in place (its id is kept in Redis), with
  the buttons that fit the new state, so the group always sees where the case stands.
  A first card with the reporter's photos goes as the caption of one photo (sendPhoto), or
  after an album of several (sendMediaGroup); a caption card is edited by
  editMessageCaption. A case with a point gets a venue message under its first card.
  A citizen's short video goes by sendVideo: as the card's caption when there is no photo,
  else after the photos.
- kind=notice: a plain message to the group (督办, reminders).
- kind=citizen: a status update in the reporter's private chat; a closed case comes with
  a 1–5 rating keyboard; the handler's result photos follow the words (sendPhoto).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto, Message
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError

from bot.kv import PREFIX, as_text
from bot.media import sniff, sniff_video
from bot.media_store import MediaStore, is_video_ref, photo_bytes, telegram_file_id
from bot.messages import Button
from bot.outbox import DeliveryError, Notice, PermanentDeliveryError
from bot.texts import DEFAULT_LANGUAGE, t
from bot.workflow import ACTIONS, TEAM_ACTIONS, Status, offered

log = logging.getLogger(__name__)

CHANNEL = "telegram"
MAX_TEXT = 4096  # Bot API limit for one message
MAX_CAPTION = 1024  # Bot API limit for a photo's caption
TELEGRAM_PHOTO = ("jpg", "png", "webp")  # stored photos sendPhoto takes
CARD_TTL_S = 180 * 24 * 3600  # long enough to outlive any case
LANGUAGE_TTL_S = 365 * 24 * 3600
CARD_LOCK_MS = 15_000
CARD_LOCK_WAIT_S = 10.0
RATING_SCORES = range(1, 6)
LONG_LABEL = 8  # characters; longer labels get a row each
SENT_MARK_TTL_S = 7 * 24 * 3600  # longer than the outbox keeps retrying a row
# KEYS: lock, card record; ARGV: token, message id, notice id (both "" when nothing was
# shown), record TTL, caption ("1": the card is a photo's caption).
SAVE_AND_RELEASE = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then
  redis.call('hset', KEYS[2], 'message', ARGV[2], 'notice', ARGV[3], 'caption', ARGV[5])
  redis.call('expire', KEYS[2], ARGV[4])
end
return redis.call('del', KEYS[1])
"""


def card_key(chat_id: int | str, number: str) -> str:
    return f"{PREFIX}tgcard:{chat_id}:{number}"


def language_key(user_id: int | str) -> str:
    return f"{PREFIX}tglang:{user_id}"


# On a team's card: its actions, and the check a grid leader makes once it is handled; on a
# patrol report waiting to be filed, the second look (核实).
CARD_ACTIONS = (*TEAM_ACTIONS, ACTIONS["verify"], ACTIONS["verify_fail"], ACTIONS["confirm_report"],
                ACTIONS["refuse_report"])


def action_data(action: str, number: str) -> str:
    return f"act:{action}:{number}"


def card_buttons(number: str, status: str, language: str = DEFAULT_LANGUAGE,
                 level: str | None = None) -> list[Button]:
    """The team's actions the case allows now (bot.workflow.ACTIONS); once handled, the
    leader's check (核查通过 / 核查不通过)."""
    return [Button(t(f"button.{action.name}", language), action_data(action.name, number))
            for action in CARD_ACTIONS if offered(action, status, level)]


def rating_buttons(number: str, language: str = DEFAULT_LANGUAGE) -> list[Button]:
    # The value is the rating command the dialog already understands (intents.rating), so a
    # press is just the citizen "typing" it.
    return [Button(t("button.rate", language, score=score), f"评价 {number} {score}")
            for score in RATING_SCORES]


def keyboard(buttons: list[Button], per_row: int = 3) -> InlineKeyboardMarkup | None:
    """Inline keyboard, callback data = the button's value (Telegram allows 64 bytes)."""
    if not buttons:
        return None
    if any(len(b.label) > LONG_LABEL for b in buttons):
        per_row = 1  # category and place names: one per row, or the phone cuts them off
    elif len(buttons) <= 5 and all(len(b.label) <= 3 for b in buttons):
        per_row = len(buttons)  # 1–5 scores, short choices: one row reads best
    rows = [buttons[i:i + per_row] for i in range(0, len(buttons), per_row)]
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.value) for b in row] for row in rows])


def fit(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def language_of(redis: aioredis.Redis, user_id: int | str) -> str:
    return as_text(await redis.get(language_key(user_id))) or DEFAULT_LANGUAGE


class TelegramSender:
    """The outbox sender for channel "telegram"."""

    def __init__(self, bot: Bot, redis: aioredis.Redis, store: MediaStore | None = None
                 ) -> None:
        self.bot = bot
        self.redis = redis
        self.store = store  # where stored photos' bytes are (mini-program, WeChat)
        self._save_and_release = redis.register_script(SAVE_AND_RELEASE)

    async def __call__(self, notice: Notice) -> None:
        kind = notice.payload.get("kind")
        try:
            if not notice.recipient:
                raise PermanentDeliveryError("no Telegram chat for this recipient")
            chat = _chat_id(notice.recipient)
            if kind == "card":
                await self._card(notice, chat)
            elif kind == "citizen":
                await self._citizen(notice, chat)
            else:
                await self.bot.send_message(chat, fit(notice.text))
        except (Forbidden, ChatMigrated) as exc:  # blocked, kicked, chat gone or moved
            raise PermanentDeliveryError(str(exc)) from exc
        except BadRequest as exc:  # the request itself is wrong: retrying will not help
            raise PermanentDeliveryError(str(exc)) from exc
        except TelegramError as exc:  # timeouts, network, flood control: try again later
            raise DeliveryError(str(exc)) from exc

    async def _citizen(self, notice: Notice, chat: int) -> None:
        number = str(notice.payload.get("case", ""))
        status = str(notice.payload.get("status", ""))
        language = await language_of(self.redis, notice.recipient)
        text = _translated(notice.text, number, status, language, notice.payload.get("say"))
        markup = None
        if status == Status.CLOSED and number:
            markup = keyboard(rating_buttons(number, language))
        await self._once(notice, "text",
                         lambda: self.bot.send_message(chat, fit(text), reply_markup=markup))
        # The handler's result photos (办结) after the words; one Telegram will not take is
        # left out: the words already told what was done.
        for i, photo in enumerate(await self._photos(notice)):
            try:
                await self._once(notice, f"photo{i}",
                                 functools.partial(self.bot.send_photo, chat, photo))
            except BadRequest:
                log.warning("case %s: Telegram refused a result photo", number, exc_info=True)

    async def _once(self, notice: Notice, part: str,
                    send: Callable[[], Awaitable[object]]) -> None:
        """Send one part of a notice unless a try before already did: a retry after a photo
        failed must not repeat the words (marked in Redis by the row's key)."""
        mark = f"{PREFIX}tgsent:{notice.idempotency_key}:{part}"
        if await self.redis.get(mark) is not None:
            return
        await send()
        await self.redis.set(mark, "1", ex=SENT_MARK_TTL_S)

    async def _card(self, notice: Notice, chat: int) -> None:
        number = str(notice.payload.get("case", ""))
        markup = keyboard(card_buttons(number, str(notice.payload.get("status", "")),
                                       level=notice.payload.get("level")))
        async with self._locked(card_key(chat, number)) as card:
            if int(card.shown.get("notice", 0)) >= notice.id:
                return  # rows can arrive out of order: a newer state is on screen already
            message_id = int(card.shown["message"]) if card.shown.get("message") else None
            caption = card.shown.get("caption") == "1"
            if notice.payload.get("fresh"):
                message_id = None  # it came back with a reason: a new card, below the talk
            if message_id is not None:
                try:
                    if caption:
                        await self.bot.edit_message_caption(
                            chat_id=chat, message_id=message_id,
                            caption=fit(notice.text, MAX_CAPTION), reply_markup=markup)
                    else:
                        await self.bot.edit_message_text(
                            fit(notice.text), chat_id=chat, message_id=message_id,
                            reply_markup=markup)
                except BadRequest as exc:
                    if "not modified" not in str(exc).lower():
                        message_id = None  # deleted or no longer editable: post it afresh
            if message_id is None:
                first = not card.shown.get("message") and not notice.payload.get("fresh")
                sent, caption = await self._post_card(notice, chat, markup, first)
                message_id = sent.message_id
                if first:
                    await self._venue(notice, chat, message_id)
            card.save = {"message": message_id, "notice": notice.id, "caption": int(caption)}

    async def _post_card(self, notice: Notice, chat: int, markup: InlineKeyboardMarkup | None,
                         first: bool) -> tuple[Message, bool]:
        """The card message, and whether it is a photo's caption. Photos go with the first
        card only: a re-posted card (deleted, or back with a reason) is text."""
        photos = await self._photos(notice) if first else []
        video = await self._video(notice) if first else None
        try:
            if video is not None and not photos and len(notice.text) <= MAX_CAPTION:
                sent = await self.bot.send_video(chat, video, caption=notice.text,
                                                 reply_markup=markup, filename=video_name(video),
                                                 supports_streaming=True)
                return sent, True
            if len(photos) == 1 and video is None and len(notice.text) <= MAX_CAPTION:
                sent = await self.bot.send_photo(chat, photos[0], caption=notice.text,
                                                 reply_markup=markup)
                return sent, True
            if len(photos) == 1:  # too long for a caption: the card follows its photo
                await self.bot.send_photo(chat, photos[0])
            elif photos:  # an album takes no buttons: the card follows it
                await self.bot.send_media_group(chat, [InputMediaPhoto(p) for p in photos])
            if video is not None:  # after the photos, or before a card too long to caption
                await self.bot.send_video(chat, video, filename=video_name(video),
                                          supports_streaming=True)
        except BadRequest:
            # A photo Telegram will not take (an expired file id, an odd file) must not
            # keep the team from the case: the card goes as text.
            log.warning("Telegram refused the photos of case %s; card sent without them",
                        notice.payload.get("case"), exc_info=True)
        return await self.bot.send_message(chat, fit(notice.text), reply_markup=markup), False

    async def _photos(self, notice: Notice) -> list[str | bytes]:
        """What Telegram can show of the card's photos: file ids as they are, stored photos'
        bytes; a photo not (yet) stored is left out rather than holding the card back."""
        found: list[str | bytes] = []
        for ref in notice.payload.get("photos") or []:
            if not isinstance(ref, str) or is_video_ref(ref):
                continue
            file_id = telegram_file_id(ref)
            if file_id:
                found.append(file_id)
            elif self.store is not None and (data := await photo_bytes(self.store, ref)) \
                    and sniff(data) in TELEGRAM_PHOTO:  # HEIC and GIF are no Telegram photos
                found.append(data)
        return found

    async def _video(self, notice: Notice) -> bytes | None:
        """The bytes of the card's first stored video (a citizen's, from Telegram or
        WeChat), or None."""
        for ref in notice.payload.get("photos") or []:
            if isinstance(ref, str) and is_video_ref(ref) and self.store is not None \
                    and (data := await photo_bytes(self.store, ref)) and sniff_video(data):
                return data
        return None

    async def _venue(self, notice: Notice, chat: int, card_id: int) -> None:
        """The case's point as a venue under its card: the map is one tap away. Best effort:
        the card is already out, and a lost venue must not post the card again."""
        point = notice.payload.get("point")
        if not (isinstance(point, list) and len(point) == 2):
            return
        number = str(notice.payload.get("case", ""))
        address = str(notice.payload.get("address") or "")
        # The card (with its address and grid) is what matters: a lost venue is not retried.
        with contextlib.suppress(TelegramError):
            await self.bot.send_venue(
                chat, latitude=float(point[0]), longitude=float(point[1]),
                title=t("card.venue_title", number=number),
                address=address or t("card.venue_pin", lat=f"{point[0]:.5f}",
                                     lon=f"{point[1]:.5f}"),
                reply_to_message_id=card_id)

    @contextlib.asynccontextmanager
    async def _locked(self, key: str) -> AsyncIterator[CardLock]:
        """One card update at a time per (chat, case), across processes: two runners must
        not both post a first card, nor apply edits out of order. Taking the lock reads the
        card's record in the same round trip; the new record and the release go together."""
        lock, token = f"{key}:lock", secrets.token_hex(8)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + CARD_LOCK_WAIT_S
        while True:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.set(lock, token, nx=True, px=CARD_LOCK_MS)
                pipe.hgetall(key)
                taken, shown = await pipe.execute()
            if taken:
                break
            if loop.time() > give_up:
                raise DeliveryError(f"card {key} is busy")
            await asyncio.sleep(0.05)
        card = CardLock(shown)
        try:
            yield card
        finally:
            # One script: only while the lock is still ours (it may have expired and been
            # taken since) is the record written and the lock let go.
            save = card.save or {}
            await self._save_and_release(
                keys=[lock, key],
                args=[token, save.get("message", ""), save.get("notice", ""), CARD_TTL_S,
                      save.get("caption", 0)])


def video_name(data: bytes) -> str:
    return f"video.{sniff_video(data) or 'mp4'}"


@dataclass
class CardLock:
    shown: dict[str, str]  # the card's record: message id, newest notice id shown
    save: dict[str, int] | None = None  # the record to write as the lock is released


def _chat_id(recipient: str) -> int:
    try:
        return int(recipient)
    except ValueError:  # e.g. a grid file naming a chat by @name: fix the data, not retry
        raise PermanentDeliveryError(f"not a Telegram chat id: {recipient!r}") from None


def _translated(text: str, number: str, status: str, language: str,
                say: dict[str, Any] | None = None) -> str:
    """The core writes status updates in the default language; for someone who reads
    another, render the same catalogue entry in theirs (its key and values travel in the
    payload). Texts we do not recognise pass through unchanged."""
    if language == DEFAULT_LANGUAGE or not number or not status:
        return text
    if say and isinstance(say.get("values"), dict):
        return t(str(say["key"]), language, **say["values"],
                 status=t(f"status.{status}", language))
    key = "citizen.closed_rate" if status == Status.CLOSED else "citizen.status_changed"
    if text != t(key, number=number, status=t(f"status.{status}")):
        return text
    return t(key, language, number=number, status=t(f"status.{status}", language))
