"""A case photo's bytes, wherever its channel left them: in the media store (mini-program
uploads, downloaded WeChat and WeCom media), or on Telegram's servers (a file id), fetched
once through the started Telegram bot and kept in the store — Telegram's file links expire,
and the next look is then local. Used by the console's photo pages and by channels that
send a case's photo on (a result photo to a WeChat reporter)."""

from __future__ import annotations

import logging

from bot.media_store import downloaded_key, open_store, photo_bytes, telegram_file_id
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
