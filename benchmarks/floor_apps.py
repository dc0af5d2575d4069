"""The smallest apps the server stack can serve, for benchmarks/stack_floor.py: what
hypercorn (and Quart on it) cost per request before gridbot does any work."""

from __future__ import annotations

from typing import Any

from quart import Quart, jsonify, request

quart_app = Quart(__name__)


@quart_app.post("/echo")
async def echo() -> Any:
    """Parse a JSON body and answer JSON: the least a chat or webhook route does."""
    body = await request.get_json()
    return jsonify({"user": body.get("user"), "ok": True})


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Plain ASGI: read the body, answer a fixed JSON (hypercorn and h11 alone)."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b'{"ok":true}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
