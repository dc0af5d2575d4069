"""Fake WeChat API and fake Telegram Bot API for the load and fault benchmarks.

Both are small asyncio HTTP/1.1 servers on 127.0.0.1 (free ports), run in the load client's
event loop so a simulated citizen can wait for the bot's pushed reply without polling. They
record every message the bot delivered (who to, what, when, and whether the answer went out
after the client had already given up), and they have switchable fault modes:

- WeChat: `timeout` (hold the call past wechatpy's 10 s timeout, then deliver anyway: the
  worst case, a send that landed but whose answer was lost), `45009` (rate limit),
  `40001` (every token issued so far is invalid: the SDK must refresh), `5xx`.
- Telegram: `timeout` (past python-telegram-bot's 5 s read timeout, then deliver), `429`
  (flood control with retry_after), `5xx`.

Only message sends count as deliveries; token fetches, getMe and button acknowledgements are
answered but not recorded as messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

Answer = tuple[int, dict[str, Any]]
BOT = {"id": 7000000001, "is_bot": True, "first_name": "gridbot", "username": "gridbot_load_bot"}


@dataclass(frozen=True)
class Delivery:
    channel: str  # "wechat" or "telegram"
    method: str  # custom_send / template_send / sendMessage / editMessageText
    recipient: str
    text: str
    at: float
    late: bool  # delivered while the fake held the answer back past the client's timeout


@dataclass
class FakeApi:
    """The shared part: the HTTP server, the record, waiters and the fault switch."""

    channel: str = ""
    mode: str = "ok"
    hold_s: float = 12.0  # how long `timeout` holds an answer back
    deliveries: list[Delivery] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)  # fault answers given, by mode
    _inboxes: dict[str, asyncio.Queue[str]] = field(
        default_factory=lambda: defaultdict(asyncio.Queue))
    _server: asyncio.AbstractServer | None = None
    port: int = 0

    async def start(self) -> FakeApi:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def set_mode(self, mode: str) -> None:
        self.mode = mode

    def inbox(self, recipient: str) -> asyncio.Queue[str]:
        """Texts sent to one recipient, in order: a simulated citizen reads its replies here."""
        return self._inboxes[recipient]

    def record(self, method: str, recipient: str, text: str, late: bool) -> None:
        self.deliveries.append(Delivery(self.channel, method, recipient, text, time.time(),
                                        late))
        self._inboxes[recipient].put_nowait(text)

    def duplicates(self) -> Counter[tuple[str, str]]:
        """(recipient, text) pairs delivered more than once, with how many extra times."""
        seen = Counter((d.recipient, d.text) for d in self.deliveries)
        return Counter({k: n - 1 for k, n in seen.items() if n > 1})

    async def answer(self, method: str, path: str, query: dict[str, str],
                     body: dict[str, Any]) -> Answer:
        raise NotImplementedError

    # -- HTTP/1.1 on asyncio streams (keep-alive, Content-Length bodies) -----------------

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                request_line, _, rest = head.decode("latin-1").partition("\r\n")
                method, target, _ = request_line.split(" ", 2)
                headers = {}
                for line in rest.split("\r\n"):
                    name, _, value = line.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                raw = await reader.readexactly(int(headers.get("content-length") or 0))
                url = urlparse(target)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                status, payload = await self.answer(method, url.path, query,
                                                    _body(raw, headers.get("content-type", "")))
                data = json.dumps(payload, ensure_ascii=False).encode()
                writer.write(f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                             "Content-Type: application/json\r\n"
                             f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
                await writer.drain()
        except (ConnectionError, ValueError, asyncio.IncompleteReadError):
            return  # the caller went away mid-request (e.g. its process was killed)
        finally:
            writer.close()


def _body(raw: bytes, content_type: str) -> dict[str, Any]:
    """JSON (wechatpy) or form-encoded (python-telegram-bot, values JSON-encoded)."""
    if not raw:
        return {}
    if "json" in content_type or raw[:1] == b"{":
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}


@dataclass
class FakeWeChatApi(FakeApi):
    channel: str = "wechat"
    valid_tokens: set[str] = field(default_factory=set)
    _token_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    tokens_issued: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        if mode == "40001":
            self.expire_tokens()

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    async def answer(self, method: str, path: str, query: dict[str, str],
                     body: dict[str, Any]) -> Answer:
        if path in ("/cgi-bin/token", "/cgi-bin/gettoken"):
            token = f"TOKEN-{next(self._token_ids)}"
            self.tokens_issued += 1
            self.valid_tokens.add(token)
            return 200, {"access_token": token, "expires_in": 7200}
        mode = self.mode
        if mode == "5xx":
            self.refused[mode] += 1
            return 503, {"errcode": -1, "errmsg": "system busy"}
        if mode == "45009":
            self.refused[mode] += 1
            return 200, {"errcode": 45009, "errmsg": "reach max api daily quota limit"}
        if query.get("access_token") not in self.valid_tokens:
            self.refused["40001"] += 1
            return 200, {"errcode": 40001, "errmsg": "invalid credential, access_token is "
                                                      "invalid or not latest"}
        late = mode == "timeout"
        if late:
            self.refused[mode] += 1
            await asyncio.sleep(self.hold_s)
        touser = str(body.get("touser", ""))
        if path == "/cgi-bin/message/custom/send":
            self.record("custom_send", touser, str((body.get("text") or {}).get("content", "")),
                        late)
        elif path == "/cgi-bin/message/template/send":
            remark = ((body.get("data") or {}).get("remark") or {}).get("value", "")
            self.record("template_send", touser, str(remark), late)
            return 200, {"errcode": 0, "errmsg": "ok", "msgid": len(self.deliveries)}
        return 200, {"errcode": 0, "errmsg": "ok"}


@dataclass
class FakeTelegramApi(FakeApi):
    channel: str = "telegram"
    hold_s: float = 8.0  # python-telegram-bot's default read timeout is 5 s
    retry_after_s: int = 2
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(100))
    _running: set[asyncio.Task[Answer]] = field(default_factory=set)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    def run_webhook_answer(self, call: dict[str, Any]) -> None:
        """Telegram runs the Bot API call a webhook answered with as if the bot had made it;
        in a fault window it is lost (nobody is told, as with the real Telegram)."""
        params = dict(call)
        method = str(params.pop("method", ""))
        if not method:
            return
        task = asyncio.ensure_future(self.answer("POST", f"/bot/{method}", {}, params))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def answer(self, method: str, path: str, query: dict[str, str],
                     body: dict[str, Any]) -> Answer:
        name = path.rsplit("/", 1)[-1]
        if name == "getMe":  # startup must work even while the sends are failing
            return 200, {"ok": True, "result": BOT}
        sends = name in ("sendMessage", "editMessageText")
        mode = self.mode
        if sends and mode == "429":
            self.refused[mode] += 1
            return 429, {"ok": False, "error_code": 429,
                         "description": f"Too Many Requests: retry after {self.retry_after_s}",
                         "parameters": {"retry_after": self.retry_after_s}}
        if sends and mode == "5xx":
            self.refused[mode] += 1
            return 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
        late = sends and mode == "timeout"
        if late:
            self.refused[mode] += 1
            await asyncio.sleep(self.hold_s)
        if not sends:
            return 200, {"ok": True, "result": True}  # answerCallbackQuery, edits of markup …
        chat_id = int(body.get("chat_id", 0) or 0)
        text = str(body.get("text", ""))
        self.record(name, str(chat_id), text, late)
        chat = ({"id": chat_id, "type": "private", "first_name": "市民"} if chat_id > 0 else
                {"id": chat_id, "type": "supergroup", "title": "网格工作群"})
        message_id = int(body.get("message_id") or next(self._message_ids))
        return 200, {"ok": True, "result": {"message_id": message_id, "from": BOT,
                                            "chat": chat, "date": int(time.time()),
                                            "text": text}}
