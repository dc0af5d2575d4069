"""python-telegram-bot over adapters.telegram_http.AiohttpRequest, against a local HTTP server
that records the raw requests: what reaches the wire is what the Bot API takes (form fields
with JSON values, multipart for files), and failures become the errors PTB expects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from telegram import Bot
from telegram.error import BadRequest, NetworkError, TimedOut

from adapters.telegram_http import AiohttpRequest
from benchmarks.fakes import BOT
from benchmarks.harness import free_port


@dataclass
class RawBotApi:
    """Answers every call with `ok`; records (path, content type, body)."""

    delay_s: float = 0.0
    status: int = 200
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)
    server: asyncio.AbstractServer | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                lines = head.split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (line.partition(":") for line in lines[1:]) if k}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                path = lines[0].split(" ")[1]
                self.seen.append((path, headers.get("content-type", ""), body))
                await asyncio.sleep(self.delay_s)
                result: Any = BOT if path.endswith("/getMe") else {
                    "message_id": 7, "date": 0, "chat": {"id": 5, "type": "private"},
                    "text": "ok"}
                payload = (json.dumps({"ok": True, "result": result}) if self.status == 200
                           else json.dumps({"ok": False, "error_code": self.status,
                                            "description": "Bad Request: chat not found"}))
                data = payload.encode()
                writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def api() -> AsyncIterator[tuple[RawBotApi, Bot]]:
    raw = RawBotApi()
    raw.server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
    port = raw.server.sockets[0].getsockname()[1]
    bot = Bot("1:test", base_url=f"http://127.0.0.1:{port}/bot",
              request=AiohttpRequest(read_timeout_s=0.3))
    await bot.initialize()
    try:
        yield raw, bot
    finally:
        await bot.shutdown()
        raw.server.close()


async def test_a_message_goes_out_as_the_bot_api_takes_it(api: tuple[RawBotApi, Bot]) -> None:
    raw, bot = api
    message = await bot.send_message(5, "井盖已修复 ✓", reply_markup=None)
    assert message.message_id == 7
    path, content_type, body = raw.seen[-1]
    assert path.endswith("/sendMessage")
    assert content_type.startswith("application/x-www-form-urlencoded")
    from urllib.parse import parse_qs
    fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    assert fields == {"chat_id": "5", "text": "井盖已修复 ✓"}


async def test_a_photo_goes_out_as_multipart(api: tuple[RawBotApi, Bot]) -> None:
    raw, bot = api
    jpeg = b"\xff\xd8\xff\xe0" + b"photo-bytes" * 10 + b"\xff\xd9"
    await bot.send_photo(5, jpeg, caption="现场照片")
    path, content_type, body = raw.seen[-1]
    assert path.endswith("/sendPhoto") and content_type.startswith("multipart/form-data")
    assert jpeg in body and "现场照片".encode() in body and b'name="chat_id"' in body


async def test_failures_become_the_errors_ptb_expects(api: tuple[RawBotApi, Bot]) -> None:
    raw, bot = api
    raw.status = 400
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):  # PTB's own status mapping
        await bot.send_message(5, "x")
    raw.status, raw.delay_s = 200, 1.0
    with pytest.raises(TimedOut):  # may have landed: the caller must not assume otherwise
        await bot.send_message(5, "慢")
    closed = Bot("1:test", base_url=f"http://127.0.0.1:{free_port()}/bot",
                 request=AiohttpRequest())
    await closed.request.initialize()
    try:
        with pytest.raises(NetworkError) as refused:  # nobody listening
            await closed.send_message(5, "x")
        # aiohttp's own message names the URL, and the URL holds the bot's token.
        assert "1:test" not in str(refused.value) and refused.value.__cause__ is None
    finally:
        await closed.request.shutdown()


async def test_it_refuses_to_work_before_initialize() -> None:
    with pytest.raises(RuntimeError, match="not initialized"):
        await AiohttpRequest().do_request("http://127.0.0.1:9/", "GET")
