"""shell/chat_client.py: `gridbot chat`, the terminal client of the HTTP chat API — what a
typed line becomes, and how answers, refusals and an unreachable server are shown. The
server here is a small stand-in on loopback that answers as /api/v1/messages does."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import pytest

from bot.texts import t
from shell.chat_client import parse_line, run_chat
from tests.fixtures import loopback


@pytest.mark.parametrize(("line", "body"), [
    ("路灯不亮", {"user": "u1", "text": "路灯不亮"}),
    ("/loc 23.0215,113.1214", {"user": "u1", "location": {
        "lat": 23.0215, "lon": 113.1214, "coord": "wgs84"}}),
    (" /loc -23.5， 113 gcj02 ", {"user": "u1", "location": {
        "lat": -23.5, "lon": 113.0, "coord": "gcj02"}}),
    ("/loc 23.0 113.1", {"user": "u1", "location": {"lat": 23.0, "lon": 113.1,
                                                    "coord": "wgs84"}}),
    ("/photo https://example.org/p.jpg", {"user": "u1", "media": ["https://example.org/p.jpg"]}),
    # Not a well-formed command: sent as words, for the bot to answer.
    ("/loc here", {"user": "u1", "text": "/loc here"}),
    ("/loc 23.0,113.1 bd09", {"user": "u1", "text": "/loc 23.0,113.1 bd09"}),
])
def test_a_line_becomes_the_request_body(line: str, body: dict[str, Any]) -> None:
    assert parse_line(line, "u1") == body


class _Api(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, Any], str]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((body, self.headers.get("X-API-Key", "")))
        if self.path != "/api/v1/messages":
            status, answer = 404, {"error": "not found"}
        elif body.get("text") == "太多了":
            status, answer = 429, {"error": "rate limited"}
        else:
            status, answer = 200, {"replies": [{"text": f"收到：{body.get('text', '位置')}",
                                                "buttons": []}, {"text": "第二条",
                                                                 "buttons": []}],
                                   "case": None}
        loopback.send_json(self, status, answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    _Api.received = []
    server = loopback.serve(_Api)
    yield f"http://127.0.0.1:{server.server_port}/"
    loopback.stop(server)


def test_piped_lines_are_echoed_sent_and_answered_until_end_of_input(api: str) -> None:
    out = io.StringIO()
    lines = io.StringIO("路灯不亮\n\n   \n太多了\n/loc 23.0215,113.1214\n")
    assert run_chat(api, "u7", "k-123", stdin=lines, stdout=out) == 0
    # Blank lines are not sent; every request carries the user and the key.
    assert [body for body, _ in _Api.received] == [
        {"user": "u7", "text": "路灯不亮"}, {"user": "u7", "text": "太多了"},
        {"user": "u7", "location": {"lat": 23.0215, "lon": 113.1214, "coord": "wgs84"}}]
    assert {key for _, key in _Api.received} == {"k-123"}
    assert out.getvalue().splitlines() == [
        t("chat.you", text="路灯不亮"), t("chat.bot", text="收到：路灯不亮"),
        t("chat.bot", text="第二条"),
        t("chat.you", text="太多了"), "[429] rate limited",  # a refusal, and go on
        t("chat.you", text="/loc 23.0215,113.1214"), t("chat.bot", text="收到：位置"),
        t("chat.bot", text="第二条")]


def test_no_key_no_header(api: str) -> None:
    assert run_chat(api, "u7", "", stdin=io.StringIO("你好\n"), stdout=io.StringIO()) == 0
    assert [key for _, key in _Api.received] == [""]


def test_an_unreachable_server_is_said_and_ends_with_status_1() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    out = io.StringIO()
    assert run_chat(url, "u7", "", stdin=io.StringIO("路灯不亮\n"), stdout=out) == 1
    before, after = t("chat.unreachable", url=url, error="\0").split("\0")
    last = out.getvalue().splitlines()[-1]
    assert last.startswith(before) and last.endswith(after) and "refused" in last
