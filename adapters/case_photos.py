"""A case photo's (or short video's) bytes, wherever its channel left them, and the answer
that serves them.

The media store holds mini-program uploads and downloaded WeChat and WeCom media; a Telegram
file id (a photo or a worker's after-photo sent to the bot) is fetched once through the
started Telegram bot and kept in the store — Telegram's file links expire, and the next look
is then local. Used by the console's photo pages, the mini-program's case page and channels
that send a case's photo on (a result photo to a WeChat reporter)."""

from __future__ import annotations

import asyncio
import logging

from quart import Request, Response

from bot.media import sniff, sniff_video
from bot.media_store import (
    CONTENT_TYPES,
    downloaded_key,
    open_store,
    photo_bytes,
    telegram_file_id,
    thumbnail,
)
from bot.services import Services

log = logging.getLogger(__name__)


async def case_photo(s: Services, ref: str) -> bytes | None:
    """The bytes of a case_media ref, or None (not stored, Telegram away, the id gone)."""
    store = open_store(s.config)
    file_id = telegram_file_id(ref)
    if file_id is None:
        return await photo_bytes(store, ref)
    key = downloaded_key("telegram", file_id)
    data = await store.get(key)
    if data is not None:
        return data
    channel = s.channels.get("telegram")
    bot = getattr(getattr(channel, "application", None), "bot", None)
    if bot is None:
        return None
    try:
        data = bytes(await (await bot.get_file(file_id)).download_as_bytearray())
    except Exception:  # Telegram down, or the file id gone: there is no photo to give
        log.warning("could not fetch a Telegram photo", exc_info=True)
        return None
    await store.put(key, data)
    return data


async def photo_response(data: bytes | None, thumb: bool,
                         request: Request | None = None) -> Response | None:
    """The photo as an image response of the type its bytes are (a small JPEG for `thumb`),
    a video as video/mp4 or video/quicktime (byte ranges answered when `request` is given:
    players seek with them), or None when the bytes are nothing we serve."""
    video = sniff_video(data) if data else None
    if data is not None and video is not None and not thumb:
        response = Response(data, content_type=CONTENT_TYPES[video])
        if request is not None:
            await response.make_conditional(request, accept_ranges=True,
                                            complete_length=len(data))
        return _private(response)
    suffix = sniff(data) if data else None
    if data is None or suffix is None:
        return None
    if thumb and suffix != "heic":
        small = await asyncio.to_thread(thumbnail, data)
        if small is not None:
            data, suffix = small, "jpg"
    return _private(Response(data, content_type=CONTENT_TYPES[suffix]))


def _private(response: Response) -> Response:
    response.headers["Content-Disposition"] = "inline"
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
