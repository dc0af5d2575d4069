"""WeCom (企业微信) for grid workers.

Outbound: each grid's group gets its assignment cards and 督办 notices through the group
robot's webhook (the outbox recipient is the robot's key), as markdown — the card text is
the team's view of the case and never names the reporter; a card of a case with a point
links to the map, and the reporter's stored photos follow it as image messages.
Inbound: the self-built app's callback (signature + AES, wechatpy.enterprise), where a worker
types 接单 / 到场 / 办结 <说明> / 退回 <原因> / 上报 with the case number, and sends photos,
kept as evidence for their next 办结. Other words, location pins and a report's photos go
into the dialog every channel shares (handlers.router): 开始巡查 / 结束巡查, a patrol track
from periodic pins (WeCom has no live location), and finds reported from the street. Who
may act is decided by bot.actions, not here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from quart import Blueprint, Response, request
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.enterprise.replies import TextReply
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.messages import BaseMessage

from adapters import app_state, inbound
from adapters.background import BackgroundWork
from adapters.wechat import fresh, has_dtd, plain, well_formed
from adapters.wechat_api import WechatApi, media_bytes, work_api
from bot.actions import ActionRefused
from bot.config import WecomConfig
from bot.kv import PREFIX, as_text
from bot.media import PhotoLimits, PhotoRefused, check_photo
from bot.media_store import (
    LocalStore,
    MediaStore,
    downloaded_key,
    jpeg_or_png_within,
    open_store,
    photo_bytes,
)
from bot.messages import InboundMessage, Location
from bot.models import Case, Worker
from bot.outbox import DeliveryError, Notice, PermanentDeliveryError
from bot.services import Services
from bot.texts import t
from bot.workflow import ACTIONS, Status
from handlers import team
from handlers.router import handle

log = logging.getLogger(__name__)

CHANNEL = "wecom"
SUCCESS = "success"
MEDIA_DIR = "var/media"
MARKDOWN_MAX_BYTES = 4000  # the robot takes 4096
IMAGE_MAX_BYTES = 2 * 1024 * 1024  # the robot's image message: JPG/PNG up to 2 MB
MAX_CARD_IMAGES = 4  # a group is not a photo album: the rest are on the console
MAP_URL = "https://uri.amap.com/marker?position={lon},{lat}&coordinate=wgs84&name={name}"
PHOTOS_TTL_S = 24 * 3600  # photos wait this long for the worker's 办结
REPLY_CACHE_TTL_S = 120
ROBOT_GONE = {93000, 93008}  # invalid webhook key, robot removed from the group
# Markdown the citizen's words must not inject into a staff group (links, emphasis, tags).
_MARKDOWN = str.maketrans({"[": "［", "]": "］", "<": "＜", ">": "＞", "*": "＊", "`": "｀",
                           "#": "＃"})

blueprint = Blueprint("wecom", __name__)


def markdown_card(notice: Notice) -> str:
    """The outbox text as robot markdown: the first line bold, an action hint for cards."""
    head, _, rest = notice.text.translate(_MARKDOWN).partition("\n")
    lines = [f"**{head}**", rest]
    if notice.payload.get("kind") == "card":
        link = map_link(notice.payload)
        if link:
            lines.append(f"[{t('wecom.map_link')}]({link})")
        to_verify = notice.payload.get("status") == Status.REPORTED  # a patrol report: 核实
        hint = t("wecom.verify_hint" if to_verify else "wecom.card_hint",
                 number=notice.payload.get("case", ""))
        lines.append(f'<font color="comment">{hint}</font>')
    content = "\n".join(line for line in lines if line)
    while len(content.encode()) > MARKDOWN_MAX_BYTES:
        content = content[:-100]
    return content


def map_link(payload: dict[str, Any]) -> str:
    """A web map of the case's point ('' without one). Amap reads WGS-84 when told so."""
    point = payload.get("point")
    if not (isinstance(point, list) and len(point) == 2):
        return ""
    try:
        lat, lon = float(point[0]), float(point[1])
    except (TypeError, ValueError):
        return ""
    name = quote(str(payload.get("case", "")))
    return MAP_URL.format(lat=f"{lat:.6f}", lon=f"{lon:.6f}", name=name)


@dataclass
class WecomChannel:
    services: Services
    config: WecomConfig
    crypto: WeChatCrypto | None  # None: robot cards only, no app callback
    api: WechatApi
    http: httpx.AsyncClient
    media_dir: Path
    work: BackgroundWork = field(default_factory=lambda: BackgroundWork("WeCom"))
    s3: MediaStore | None = None  # the shared bucket, when photos live in one
    replies: inbound.ReplyCache = field(init=False)

    def __post_init__(self) -> None:
        self.replies = inbound.ReplyCache(self.services, "wecom", REPLY_CACHE_TTL_S)

    def store(self) -> MediaStore:
        """Where photos' bytes are: the shared bucket, or the media folder."""
        return self.s3 if self.s3 is not None else LocalStore(self.media_dir)

    # -- outbound: the group robot --------------------------------------------------------

    async def send(self, notice: Notice) -> None:
        kind = notice.payload.get("kind")
        if kind == "card" and notice.payload.get("status") not in (Status.DISPATCHED,
                                                                   Status.REPORTED):
            # A robot cannot edit its card: the group hears of the assignment only (and of
            # a patrol report waiting for its 核实).
            return
        if kind not in ("card", "notice"):
            return  # reporters are never on this channel
        if not notice.recipient:
            raise PermanentDeliveryError("no robot key for this group")
        await self._post(notice.recipient, {
            "msgtype": "markdown", "markdown": {"content": markdown_card(notice)}})
        if kind == "card":
            await self._images(notice)

    async def _images(self, notice: Notice) -> None:
        """The card's stored photos as image messages. Best effort once the card is out: a
        retry of the row would post the card twice."""
        sent = 0
        for ref in notice.payload.get("photos") or []:
            if sent >= MAX_CARD_IMAGES or not isinstance(ref, str):
                break
            data = await photo_bytes(self.store(), ref)
            image = await asyncio.to_thread(jpeg_or_png_within, data, IMAGE_MAX_BYTES) \
                if data else None
            if image is None:
                continue  # a Telegram file id, not downloaded yet, or unreadable
            try:
                await self._post(notice.recipient, {"msgtype": "image", "image": {
                    "base64": base64.b64encode(image).decode(),
                    # The robot's checksum of the bytes, not a security use.
                    "md5": hashlib.md5(image, usedforsecurity=False).hexdigest()}})
            except DeliveryError:
                log.warning("WeCom robot: a photo of case %s was not sent",
                            notice.payload.get("case"), exc_info=True)
            sent += 1

    async def _post(self, key: str, body: dict[str, Any]) -> None:
        try:
            response = await self.http.post(self.config.webhook_base_url,
                                            params={"key": key}, json=body)
        except httpx.HTTPError as exc:
            raise DeliveryError(repr(exc)) from exc
        if response.status_code >= 400:
            raise DeliveryError(f"robot webhook answered HTTP {response.status_code}")
        errcode = response.json().get("errcode", -1)
        if errcode in ROBOT_GONE:
            raise PermanentDeliveryError(f"robot webhook errcode {errcode}")
        if errcode != 0:
            raise DeliveryError(f"robot webhook errcode {errcode}")

    # -- inbound: worker commands ---------------------------------------------------------

    async def answer(self, msg: BaseMessage) -> str:
        """The reply text for a worker's message ('' = nothing to say); a retried message
        gets the first answer, so a command is carried out once."""
        key = str(msg.id) if msg.id else f"{msg.source}:{msg.time}:{msg.type}"
        if not await inbound.first_time(self.services, CHANNEL, key):
            return await self.replies.replay(key) or ""
        refused = await inbound.held_back(self.services, CHANNEL, msg.source)
        if refused is not None:
            return "\n".join(reply.text for reply in refused.replies)
        try:
            text = await self._answer(msg)
        except Exception:
            log.exception("WeCom message %s failed", key)
            text = t("wechat.error")
        await self.replies.keep(key, text)
        return text

    async def _answer(self, msg: BaseMessage) -> str:
        if msg.type not in ("text", "image", "location"):
            return ""  # entering the app and other events
        worker = await self.services.teams.worker(CHANNEL, msg.source)
        if worker is None:
            return t("wecom.unknown_worker")
        if msg.type == "location":
            # WeCom has no live location: each pin is a point of the worker's patrol, or
            # the place of the report they are making (the dialog decides).
            return await self._converse(InboundMessage(
                CHANNEL, msg.source, location=Location(
                    float(msg.location_x), float(msg.location_y), "gcj02",
                    label=msg.label or ""),
                message_id=str(msg.id or ""), live="pin"))
        if msg.type == "image":
            if await self._reporting(msg.source):  # the photo of the find being reported
                self.background(self.fetch_media(msg.media_id))
                return await self._converse(InboundMessage(
                    CHANNEL, msg.source, media=[f"{CHANNEL}:{msg.media_id}"],
                    message_id=str(msg.id or "")))
            await self.keep_photo(msg.source, msg.media_id)
            return t("wecom.photo_kept")
        command = team.parse(msg.content or "")
        if command is None:
            # Not a command: 开始巡查 / 结束巡查, or a find reported from the street — the
            # same dialog every channel has (handlers.router).
            return await self._converse(InboundMessage(
                CHANNEL, msg.source, text=msg.content or "", message_id=str(msg.id or "")))
        if not command.number:
            return t("team.usage")
        try:
            case = await self.act(command, worker)
        except ActionRefused as refused:
            return refused.text()
        return t("team.done", command=ACTIONS[command.action].command, number=case.number,
                 status=t(f"status.{case.status}"))

    async def _converse(self, inbound: InboundMessage) -> str:
        """A turn of the dialog; its replies as one text (the app's reply has no buttons:
        a worker types what a button would say)."""
        outcome = await handle(inbound, self.services)
        return "\n\n".join(reply.text for reply in outcome.replies)

    async def _reporting(self, user: str) -> bool:
        """Whether the worker is in the middle of reporting a find."""
        return "step" in await self.services.dialogs.load(CHANNEL, user)

    async def act(self, command: team.TeamCommand, worker: Worker) -> Case:
        if command.action != "resolve":
            return await team.perform(command, worker, self.services)
        photos_key = self._photos_key(worker.external_id)
        photos = await self.services.redis.lrange(photos_key, 0, -1)
        command.media = [as_text(photo) for photo in photos]
        case = await team.perform(command, worker, self.services)
        await self.services.redis.delete(photos_key)  # used only once the case took them
        return case

    def _photos_key(self, user: str) -> str:
        return f"{PREFIX}wecomphotos:{user}"

    async def keep_photo(self, user: str, media_id: str) -> None:
        key = self._photos_key(user)
        await self.services.redis.rpush(key, f"{CHANNEL}:{media_id}")
        await self.services.redis.expire(key, PHOTOS_TTL_S)
        self.background(self.fetch_media(media_id))

    async def fetch_media(self, media_id: str) -> Path:
        data = media_bytes(await self.api.call(
            lambda c: c.get("media/get", params={"media_id": media_id})))
        path = media_path(self.media_dir, media_id)
        # Kept only when it is a photo within the caps the mini-program's uploads meet.
        caps = self.services.config.wechat
        limits = PhotoLimits(caps.mp_photo_max_bytes, caps.mp_photo_max_pixels)
        try:
            await asyncio.to_thread(check_photo, data, limits)
        except PhotoRefused as refused:
            log.warning("media %s not kept: %s", media_id[:16], refused.key)
            return path
        await asyncio.to_thread(_write, path, data)
        if self.s3 is not None:  # the other servers read it from the bucket
            await self.s3.put(downloaded_key(CHANNEL, media_id), data)
        return path

    def background(self, work: Awaitable[Any]) -> None:
        self.work.start(work)

    async def drain(self) -> None:
        """Wait for background work (slow replies, media downloads): tests and shutdown."""
        await self.work.drain()


def media_path(media_dir: Path, media_id: str) -> Path:
    return media_dir / CHANNEL / f"{hashlib.sha256(media_id.encode()).hexdigest()[:32]}.jpg"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# -- plumbing ---------------------------------------------------------------------------------

async def start(services: Services) -> None:
    cfg = services.config.wecom
    if not cfg.corp_id:
        services.channels.pop(CHANNEL, None)
        return
    # The robot sender works with the webhook alone; the app callback needs token and key.
    crypto = WeChatCrypto(cfg.token, cfg.encoding_aes_key, cfg.corp_id) \
        if cfg.token and cfg.encoding_aes_key else None
    channel = WecomChannel(
        services, cfg, crypto,
        work_api(cfg.corp_id, cfg.secret, cfg.api_base_url, services.redis),
        httpx.AsyncClient(timeout=10), services.config.path(services.config.media.local_dir),
        s3=open_store(services.config) if services.config.media.store == "s3" else None)
    services.channels[CHANNEL] = channel
    services.outbox.register(CHANNEL, channel.send)


def channel_for(services: Services) -> WecomChannel | None:
    return services.channels.get(CHANNEL)



@blueprint.get("/wecom")
async def handshake() -> Response:
    channel = channel_for(app_state.services())
    if channel is None or channel.crypto is None:
        return plain(404)
    args = request.args
    try:
        echo = channel.crypto.check_signature(args.get("msg_signature", ""),
                                              args.get("timestamp", ""), args.get("nonce", ""),
                                              args.get("echostr", ""))
    except (InvalidSignatureException, InvalidCorpIdException):
        return plain(403)
    except Exception:  # an echostr that does not decrypt
        return plain(400)
    return plain(200, echo if isinstance(echo, str) else echo.decode())


@blueprint.post("/wecom")
async def receive() -> Response:
    channel = channel_for(app_state.services())
    if channel is None or channel.crypto is None:
        return plain(404)
    args = request.args
    timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
    body = await request.get_data()
    if has_dtd(body):
        return plain(400, "DTDs are not accepted")
    if not fresh(timestamp):  # signed requests are replayable: refuse old ones
        return plain(403)
    try:
        xml = channel.crypto.decrypt_message(body, args.get("msg_signature", ""), timestamp,
                                             nonce)
        if has_dtd(xml):
            return plain(400, "DTDs are not accepted")
        msg = well_formed(parse_message(xml))
    except (InvalidSignatureException, InvalidCorpIdException):
        return plain(403)
    except Exception:  # anything unreadable from outside is the sender's fault
        return plain(400, "not a WeCom message")
    text = await channel.answer(msg)
    if not text:
        return plain(200, SUCCESS)
    reply = TextReply(content=text, message=msg).render()
    return Response(channel.crypto.encrypt_message(reply, nonce, timestamp), status=200,
                    content_type="application/xml; charset=utf-8")
