"""WeChat official account (公众号): the webhook (inbound) and the outbox sender (outbound).

Inbound: check the signature of every request, refuse stale timestamps and reused nonces
(plaintext mode signs only timestamp and nonce, not the body, so a captured query string
would otherwise carry any body), decrypt in safe (AES) mode, parse with
wechatpy, drop WeChat's retries (they get the first answer again), run the dialog within
WeChat's 5-second window or finish it in the background and push the reply through the
customer-service API. A video or short video is downloaded, checked and stored as case
media at once (WechatChannel.inbound_video). Outbound: customer-service text while the
user's 48-hour window is open (a 办结's result photos follow as image messages), a template
message after it.
Transport only: the dialog is handlers.router.handle.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from quart import Blueprint, Response, request
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import (
    InvalidAppIdException,
    InvalidSignatureException,
    WeChatClientException,
)
from wechatpy.messages import BaseMessage
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from adapters import app_state, inbound
from adapters.background import BackgroundWork
from adapters.case_photos import case_photo
from adapters.wechat_api import WechatApi, media_bytes, official_api
from bot import kv
from bot.config import Config, WechatConfig
from bot.kv import PREFIX, Remember
from bot.media import PhotoLimits, PhotoRefused, check_photo
from bot.media_store import (
    LocalStore,
    MediaStore,
    downloaded_key,
    jpeg_or_png_within,
    keep_video,
    open_store,
)
from bot.messages import InboundMessage, Location, Reply
from bot.outbox import Notice, PermanentDeliveryError
from bot.services import Services
from bot.texts import t

log = logging.getLogger(__name__)

CHANNEL = "wechat"
SUCCESS = "success"  # what WeChat takes for "no passive reply, don't retry"
REPLY_BUDGET_S = 4.0  # WeChat gives up at 5 s and retries
REPLY_CACHE_TTL_S = 120  # WeChat's three retries come within ~15 s
WINDOW = timedelta(hours=48)  # customer-service messages reach users who wrote this recently
WINDOW_MARGIN = timedelta(minutes=5)  # … and a send must not land just after it closes
MAX_CLOCK_SKEW_S = 300  # older signed requests are replays
# A (timestamp, nonce) is remembered as long as its timestamp can pass `fresh`.
NONCE_TTL_S = 2 * MAX_CLOCK_SKEW_S + 10
MEDIA_DIR = "var/media"
MENU_KEYS = ("REPORT", "MY_CASES", "HELP")
# Menu clicks that mean the same as words a user can type: those words go to the dialog.
MENU_WORDS = {"MY_CASES": "wechat.menu.my_cases", "HELP": "wechat.menu.help"}
# errcodes after which a push will never reach this user
GONE = {40003, 43004, 43101}  # bad openid, unsubscribed, refused
OUT_OF_WINDOW = 45015
MAX_PHOTOS = 3  # result photos sent on to a reporter with an update
VIDEO_TYPES = ("video", "shortvideo")  # kept as case media, like photos
VIDEO_DOWNLOAD_TIMEOUT_S = 30.0
IMAGE_MAX_BYTES = 2 * 1024 * 1024  # well inside WeChat's 10 MB for temporary images
SENT_MARK_TTL_S = 7 * 24 * 3600  # longer than the outbox keeps retrying a row
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_MENTIONED_LINE = "(?m)^{}[.、．]"

blueprint = Blueprint("wechat", __name__)


def render_text(replies: list[Reply]) -> str:
    """One text for WeChat's one passive reply. Text messages have no buttons: a button
    whose value the text does not already show becomes a line telling what to send."""
    parts = []
    for reply in replies:
        lines = [reply.text]
        for button in reply.buttons:
            shown = (f"「{button.value}」" in reply.text
                     or re.search(_MENTIONED_LINE.format(re.escape(button.value)), reply.text))
            if not shown:
                lines.append(t("wechat.button_line", value=button.value, label=button.label))
        parts.append("\n".join(lines))
    return "\n\n".join(p for p in parts if p.strip())


def dedupe_id(msg: BaseMessage) -> str:
    """MsgId for messages; events have none (FromUserName + CreateTime + Event, and the
    menu key: two different clicks within a second are two events)."""
    if msg.id:
        return str(msg.id)
    key = getattr(msg, "key", "") or ""
    return f"{msg.source}:{msg.time}:{getattr(msg, 'event', msg.type)}:{key}"


def has_dtd(xml: bytes | str) -> bool:
    """WeChat never sends a DTD; one here is an entity-expansion attempt (refused early,
    before any parser sees it; xmltodict would refuse entities too)."""
    data = xml.encode() if isinstance(xml, str) else xml
    # WeChat sends UTF-8: NUL bytes mean UTF-16/32, which would hide a DTD from this scan.
    return b"\x00" in data or bool(_DTD.search(data))


def well_formed(msg: BaseMessage | None) -> BaseMessage:
    """wechatpy converts fields lazily, on first access: read the ones gridbot uses now, so
    a CreateTime of ':' or a Location_X of 'NaN' is a 400 here and not a crash later."""
    if msg is None:
        raise ValueError("empty body")
    if not (msg.source or "").strip():
        raise ValueError("no FromUserName")
    _ = (msg.id, msg.time, msg.type, msg.target)
    if msg.type == "location":
        lat, lon = float(msg.location_x), float(msg.location_y)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):  # NaN fails these too
            raise ValueError("location out of range")
    return msg


@dataclass
class WechatChannel:
    services: Services
    config: WechatConfig
    api: WechatApi
    crypto: WeChatCrypto | None
    media_dir: Path
    reply_budget_s: float = REPLY_BUDGET_S
    work: BackgroundWork = field(default_factory=lambda: BackgroundWork("WeChat"))
    s3: MediaStore | None = None  # the shared bucket, when photos live in one
    replies: inbound.ReplyCache = field(init=False)

    def __post_init__(self) -> None:
        self.replies = inbound.ReplyCache(self.services, "wx", REPLY_CACHE_TTL_S)

    # -- inbound ------------------------------------------------------------------------------

    async def answer(self, msg: BaseMessage) -> str:
        """The passive reply's plaintext XML, or SUCCESS. A retry of a message gets the
        first attempt's answer (waiting for it a little if that is still running)."""
        key = dedupe_id(msg)
        # The 48-hour service window opens with the dedupe mark, in its round trip.
        window = (None if getattr(msg, "event", "") == "unsubscribe"
                  else self.inbound_note(msg.source))
        if not await inbound.first_time(self.services, CHANNEL, key, remember=window):
            return await self.replies.replay(key, self.reply_budget_s) or SUCCESS
        if window is not None:  # …and is kept in the database, off the 5-second path
            self.background(self.services.contacts.note(
                CHANNEL, msg.source, self.services.cases.clock()))
        task = asyncio.ensure_future(self._replies_for(msg))
        try:
            replies = await asyncio.wait_for(asyncio.shield(task), self.reply_budget_s)
        except TimeoutError:
            # Too slow for WeChat's window: answer now, push the reply when it is ready.
            await self.replies.keep(key, SUCCESS)
            self.background(self._send_later(task, msg.source))
            return SUCCESS
        text = render_text(replies)
        xml = TextReply(content=text, message=msg).render() if text else SUCCESS
        await self.replies.keep(key, xml)
        return xml

    async def _replies_for(self, msg: BaseMessage) -> list[Reply]:
        try:
            message = (await self.inbound_video(msg) if msg.type in VIDEO_TYPES
                       else self.inbound(msg))
            if isinstance(message, list):
                return message
            return (await inbound.converse(self.services, message)).replies
        except Exception:
            log.exception("WeChat message %s failed", dedupe_id(msg))
            return [Reply(t("wechat.error"))]

    def inbound(self, msg: BaseMessage) -> InboundMessage | list[Reply]:
        """WeChat's message → ours, or the replies for what needs no dialog."""
        user, mid = msg.source, str(msg.id or "")
        if msg.type == "text":
            return InboundMessage(CHANNEL, user, msg.content or "", message_id=mid)
        if msg.type == "location":
            # Label: how WeChat names the pin (「佛山市禅城区祖庙路」): the worker reads it.
            location = Location(float(msg.location_x), float(msg.location_y), "gcj02",
                                label=str(msg.label or ""))
            return InboundMessage(CHANNEL, user, location=location, message_id=mid)
        if msg.type == "image":
            self.background(self.fetch_media(msg.media_id))
            return InboundMessage(CHANNEL, user, media=[media_ref(msg.media_id)],
                                  message_id=mid)
        if msg.type == "voice":
            if (msg.recognition or "").strip():
                return InboundMessage(CHANNEL, user, msg.recognition, message_id=mid)
            return [Reply(t("wechat.voice_needs_text"))]
        if msg.type == "event":
            return self._event(msg)
        return [Reply(t("wechat.unsupported"))]

    async def inbound_video(self, msg: BaseMessage) -> InboundMessage | list[Reply]:
        """A video or short video: downloaded now (WeChat deletes temporary media after three
        days, and a file that is no video must be refused while the person is there),
        checked and stored; a slow download answers through the late-reply path."""
        limit = self.services.config.media.video_max_bytes
        try:
            data = await self.video_bytes(str(msg.media_id), limit)
            store = self.s3 or LocalStore(self.media_dir)  # where its photos go too
            ref = await keep_video(store, data, limit)
        except PhotoRefused as refused:
            log.info("WeChat video %s refused: %s", str(msg.media_id)[:16], refused.key)
            return [Reply(t(refused.key, **refused.values))]
        return InboundMessage(CHANNEL, msg.source, media=[ref], message_id=str(msg.id or ""))

    async def video_bytes(self, media_id: str, limit: int) -> bytes:
        """A video's bytes through the media API, which answers for video media with a
        download link ({"video_url": …}) instead of the bytes: followed, reading at most
        one byte past `limit` (check_video then refuses it as too large)."""
        result = await self.api.call(lambda c: c.media.download(media_id))
        link = result.get("video_url") if isinstance(result, dict) else None
        if not isinstance(link, str):
            return media_bytes(result)
        if urlsplit(link).scheme not in ("http", "https"):
            raise PhotoRefused("media.video_not_video")
        async with httpx.AsyncClient(timeout=VIDEO_DOWNLOAD_TIMEOUT_S) as client, \
                client.stream("GET", link) as answer:
            answer.raise_for_status()
            data = bytearray()
            async for chunk in answer.aiter_bytes():
                data += chunk
                if len(data) > limit:
                    break
        return bytes(data[:limit + 1])

    def _event(self, msg: BaseMessage) -> InboundMessage | list[Reply]:
        event = msg.event
        if event in ("subscribe", "subscribe_scan"):
            return [Reply(t("wechat.welcome")), Reply(t("help"))]
        if event == "click":
            key = (msg.key or "").upper()
            if key == "REPORT":
                return [Reply(t("wechat.how_to_report"))]
            if key in MENU_WORDS:
                return InboundMessage(CHANNEL, msg.source, t(MENU_WORDS[key]))
        return []  # unsubscribe, views, periodic location reports: nothing to say

    def inbound_note(self, openid: str) -> Remember:
        """When the person last wrote: customer-service messages are allowed for 48 h."""
        now = self.services.cases.clock()
        return {f"{PREFIX}wxlast:{openid}": (str(now.timestamp()),
                                             int((WINDOW + timedelta(days=1)).total_seconds()))}

    async def in_window(self, openid: str) -> bool:
        """Redis answers at once; the database after a restart of the embedded store."""
        mark = await self.services.redis.get(f"{PREFIX}wxlast:{openid}")
        if mark is not None:
            last = float(mark)
        else:
            moment = await self.services.contacts.last(CHANNEL, openid)
            if moment is None:
                return False
            last = moment.timestamp()
        age = self.services.cases.clock().timestamp() - last
        return age < (WINDOW - WINDOW_MARGIN).total_seconds()

    async def fetch_media(self, media_id: str) -> Path:
        """Keep a photo as evidence: WeChat deletes temporary media after three days."""
        data = media_bytes(await self.api.call(lambda c: c.media.download(media_id)))
        path = media_path(self.media_dir, media_id)
        # Kept only when it is a photo within the caps the mini-program's uploads meet.
        limits = PhotoLimits(self.config.mp_photo_max_bytes, self.config.mp_photo_max_pixels)
        try:
            await asyncio.to_thread(check_photo, data, limits)
        except PhotoRefused as refused:
            log.warning("media %s not kept: %s", media_id[:16], refused.key)
            return path
        await asyncio.to_thread(_write, path, data)
        if self.s3 is not None:  # the other servers read it from the bucket
            await self.s3.put(downloaded_key(CHANNEL, media_id), data)
        return path

    # -- outbound -----------------------------------------------------------------------------

    async def send_text(self, openid: str, text: str) -> None:
        await self.api.call(lambda c: c.message.send_text(openid, text))

    async def _send_later(self, task: Awaitable[list[Reply]], openid: str) -> None:
        text = render_text(await task)
        if text:
            await self.send_text(openid, text)

    async def send(self, notice: Notice) -> None:
        """Outbox sender: a case update for the reporter (recipient = openid)."""
        openid = notice.recipient
        if not openid:
            raise PermanentDeliveryError("no WeChat user for this reporter")
        try:
            if await self.in_window(openid):
                try:
                    await self._once(notice, "text", lambda: self.send_text(openid, notice.text))
                except WeChatClientException as exc:
                    if exc.errcode != OUT_OF_WINDOW:
                        raise
                else:
                    await self.send_photos(openid, notice)
                    return
            await self.send_template(openid, notice)
        except WeChatClientException as exc:
            if exc.errcode in GONE:
                raise PermanentDeliveryError(f"WeChat {exc.errcode}: {exc.errmsg}") from exc
            raise

    async def send_photos(self, openid: str, notice: Notice) -> None:
        """The result photos of a 办结 after its words, as customer-service image messages
        (uploaded as temporary media first). A photo that cannot be had or shown is left
        out: the words already told what was done."""
        for i, ref in enumerate((notice.payload.get("photos") or [])[:MAX_PHOTOS]):
            data = await case_photo(self.services, str(ref))
            image = await asyncio.to_thread(jpeg_or_png_within, data, IMAGE_MAX_BYTES) \
                if data else None
            if image is None:
                log.info("case %s: a result photo cannot go to WeChat", notice.payload.get("case"))
                continue
            name = "result.png" if image.startswith(b"\x89PNG") else "result.jpg"
            try:
                await self._once(notice, f"photo{i}",
                                 functools.partial(self.send_image, openid, name, image))
            except WeChatClientException as exc:
                if exc.errcode == OUT_OF_WINDOW:
                    return  # the window closed meanwhile: the words went, the photos cannot
                raise

    async def send_image(self, openid: str, name: str, image: bytes) -> None:
        kind = "image/png" if name.endswith(".png") else "image/jpeg"
        uploaded = await self.api.call(
            lambda c: c.media.upload("image", (name, image, kind)))
        media_id = uploaded["media_id"]
        await self.api.call(lambda c: c.message.send_image(openid, media_id))

    async def _once(self, notice: Notice, part: str,
                    send: Callable[[], Awaitable[None]]) -> None:
        """Send one part of a notice unless a try before already did: a retry after the
        photo failed must not repeat the words (marked in Redis by the row's key)."""
        mark = f"{PREFIX}wxsent:{notice.idempotency_key}:{part}"
        if await self.services.redis.get(mark) is not None:
            return
        await send()
        await self.services.redis.set(mark, "1", ex=SENT_MARK_TTL_S)

    async def send_template(self, openid: str, notice: Notice) -> None:
        template = self.config.status_template_id
        if not template:
            raise PermanentDeliveryError("the user's 48 h window is closed and "
                                         "wechat.status_template_id is not set")
        status = notice.payload.get("status", "")
        data = {
            "first": {"value": t("wechat.template.first")},
            "keyword1": {"value": notice.payload.get("case", "")},
            "keyword2": {"value": t(f"status.{status}") if status else ""},
            "remark": {"value": notice.text},
        }
        await self.api.call(lambda c: c.message.send_template(openid, template, data))

    # -- housekeeping -------------------------------------------------------------------------

    def background(self, work: Awaitable[Any]) -> None:
        self.work.start(work)

    async def drain(self) -> None:
        """Wait for background work (slow replies, media downloads): tests and shutdown."""
        await self.work.drain()


def media_ref(media_id: str) -> str:
    return f"wechat:{media_id}"


def media_path(media_dir: Path, media_id: str) -> Path:
    # The id comes from the message: hash it rather than trust it in a path.
    return media_dir / "wechat" / f"{hashlib.sha256(media_id.encode()).hexdigest()[:32]}.jpg"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def menu_definition() -> dict[str, Any]:
    return {"button": [{"type": "click", "name": t(f"wechat.menu_label.{key.lower()}"),
                        "key": key} for key in MENU_KEYS]}


# -- plumbing ---------------------------------------------------------------------------------

async def start(services: Services) -> None:
    cfg = services.config.wechat
    if not cfg.token:
        services.channels.pop(CHANNEL, None)
        return
    crypto = WeChatCrypto(cfg.token, cfg.encoding_aes_key, cfg.app_id) \
        if cfg.encoding_aes_key else None
    channel = WechatChannel(
        services, cfg, official_api(cfg.app_id, cfg.app_secret, cfg.api_base_url,
                                    services.redis),
        crypto, services.config.path(services.config.media.local_dir),
        s3=open_store(services.config) if services.config.media.store == "s3" else None)
    services.channels[CHANNEL] = channel
    services.outbox.register(CHANNEL, channel.send)


def channel_for(services: Services) -> WechatChannel | None:
    return services.channels.get(CHANNEL)


def plain(status: int, body: str = "") -> Response:
    """WeChat and WeCom callbacks answer in plain text (an empty 200, `success`, echostr)."""
    return Response(body, status=status, content_type="text/plain; charset=utf-8")


def _signed(cfg: WechatConfig) -> bool:
    args = request.args
    try:
        check_signature(cfg.token, args.get("signature", ""), args.get("timestamp", ""),
                        args.get("nonce", ""))
    except InvalidSignatureException:
        return False
    return True


@blueprint.get("/wechat")
async def handshake() -> Response:
    channel = channel_for(app_state.services())
    if channel is None:
        return plain(404)
    if not _signed(channel.config):
        return plain(403)
    return plain(200, request.args.get("echostr", ""))


@blueprint.post("/wechat")
async def receive() -> Response:
    channel = channel_for(app_state.services())
    if channel is None:
        return plain(404)
    args = request.args
    timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
    if not _signed(channel.config) or not fresh(timestamp):
        return plain(403)
    aes = args.get("encrypt_type", "raw") == "aes"
    if aes != (channel.crypto is not None):
        return plain(400, "encrypt_type does not match this account's mode")
    body = await request.get_data()
    if has_dtd(body):
        return plain(400, "DTDs are not accepted")
    try:
        xml: bytes | str = body
        if channel.crypto is not None:
            xml = channel.crypto.decrypt_message(body, args.get("msg_signature", ""),
                                                 timestamp, nonce)
            if has_dtd(xml):
                return plain(400, "DTDs are not accepted")
        msg = well_formed(parse_message(xml))
    except (InvalidSignatureException, InvalidAppIdException):
        return plain(403)
    except Exception:  # anything unreadable from outside is the sender's fault, not ours
        return plain(400, "not a WeChat message")
    if not await first_use(channel.services, timestamp, nonce, xml):
        log.warning("WeChat: a signed timestamp/nonce came again with another message; "
                    "refused as a replay")
        return plain(403)
    answer = await channel.answer(msg)
    if answer == SUCCESS:
        return plain(200, SUCCESS)
    if channel.crypto is not None:
        answer = channel.crypto.encrypt_message(answer, nonce, timestamp)
    return Response(answer, status=200, content_type="application/xml; charset=utf-8")


def fresh(timestamp: str) -> bool:
    """Signed requests are replayable: refuse ones far from now."""
    return timestamp.isdigit() and abs(time.time() - int(timestamp)) <= MAX_CLOCK_SKEW_S


async def first_use(services: Services, timestamp: str, nonce: str, xml: bytes | str) -> bool:
    """Whether this (timestamp, nonce) may carry this message: the first time it is seen
    (SET NX EX, kept while the timestamp is fresh), or again with the very same message —
    WeChat's own retry, which the MsgId dedupe answers without running anything twice. The
    same signature with another message is a replay (in plaintext mode the signature does
    not cover the body): False, and nothing is processed."""
    pair = hashlib.sha256(f"{timestamp}:{nonce}".encode("utf-8", "replace")).hexdigest()[:32]
    key = f"{PREFIX}wxnonce:{pair}"
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    digest = hashlib.sha256(data).hexdigest()
    redis = services.redis
    if await redis.set(key, digest, nx=True, ex=NONCE_TTL_S):
        return True
    return await redis.get(key) == digest


async def create_menu(config: Config) -> dict[str, Any]:
    """`gridbot wechat menu`: 我要上报 / 我的案件 / 使用说明 (the token is shared as usual)."""
    cfg = config.wechat
    redis = kv.connect(config.redis.url)
    try:
        api = official_api(cfg.app_id, cfg.app_secret, cfg.api_base_url, redis)
        return await api.call(lambda c: c.menu.create(menu_definition()))
    finally:
        await redis.aclose()
