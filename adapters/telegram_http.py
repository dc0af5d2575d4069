"""python-telegram-bot's HTTP calls on aiohttp instead of its default httpx.

Every reply, card and status push is a Bot API call. `benchmarks/telegram_http.py` (fake Bot
API, 2026-12-02): 1.2 ms of CPU per `send_message` through httpx, 0.28 ms through aiohttp,
the fake's share included. The Bot API semantics (status codes → TelegramError, flood
control, JSON decoding) stay python-telegram-bot's own: a BaseRequest only moves bytes. Its
errors are the ones python-telegram-bot expects from a request class: TimedOut for time-outs
(the call may have landed), NetworkError for everything else on the wire.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

# python-telegram-bot's own defaults for HTTPXRequest.
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 5.0
POOL_TIMEOUT_S = 1.0
MEDIA_WRITE_TIMEOUT_S = 20.0


class AiohttpRequest(BaseRequest):
    """One aiohttp session (keep-alive pool of `pool_size` connections) per instance."""

    def __init__(self, pool_size: int = 256, read_timeout_s: float = READ_TIMEOUT_S) -> None:
        self.pool_size = pool_size
        self._read_timeout_s = read_timeout_s
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float:
        return self._read_timeout_s

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.pool_size),
                headers={"User-Agent": self.USER_AGENT},
                trust_env=True)  # HTTPS_PROXY and friends, as with PTB's httpx default

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = BaseRequest.DEFAULT_NONE,
                         write_timeout: Any = BaseRequest.DEFAULT_NONE,
                         connect_timeout: Any = BaseRequest.DEFAULT_NONE,
                         pool_timeout: Any = BaseRequest.DEFAULT_NONE) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        read_s = _given(read_timeout, self._read_timeout_s)
        if request_data is not None and request_data.multipart_data:
            # aiohttp has no write timeout of its own: an upload's may count as reading.
            write_s = _given(write_timeout, MEDIA_WRITE_TIMEOUT_S)
            read_s = None if read_s is None or write_s is None else max(read_s, write_s)
        pool_s = _given(pool_timeout, POOL_TIMEOUT_S)
        connect_s = _given(connect_timeout, CONNECT_TIMEOUT_S)
        timeout = aiohttp.ClientTimeout(
            total=None,
            # aiohttp's `connect` covers waiting for a pooled connection and opening a new one
            connect=None if pool_s is None or connect_s is None else pool_s + connect_s,
            sock_connect=connect_s,
            sock_read=read_s)
        # aiohttp's error texts hold the URL, and the URL holds the bot's token: keep both
        # out of the error (and of every log line that prints it).
        try:
            async with self._session.request(method, url, data=_body(request_data),
                                             timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError:
            raise TimedOut from None
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}") from None


def _given(value: Any, default: float) -> float | None:
    """A per-call timeout, the default when the caller left it out (None: no limit)."""
    return default if isinstance(value, type(BaseRequest.DEFAULT_NONE)) else value


def _body(request_data: RequestData | None) -> aiohttp.FormData | dict[str, str] | None:
    """Form fields (values JSON-encoded, as the Bot API takes them), multipart with files."""
    if request_data is None:
        return None
    fields = request_data.json_parameters
    files = request_data.multipart_data
    if not files:
        return fields or None
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    for name, (filename, content, mime_type) in files.items():
        form.add_field(name, content, filename=filename, content_type=mime_type)
    return form
