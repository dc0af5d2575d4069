"""adapters/json_body.py: a request body that is not JSON we can read is None (a 400 for
the route), never an exception (a 500)."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart

from adapters.json_body import json_or_none

app = Quart(__name__)


async def _read(body: bytes, content_type: str = "application/json") -> Any:
    async with app.test_request_context("/", method="POST", data=body,
                                        headers={"Content-Type": content_type}):
        return await json_or_none()


async def test_a_json_document_is_read_whatever_the_content_type_says() -> None:
    assert await _read('{"text": "路灯不亮", "n": [1, 2]}'.encode()) == {
        "text": "路灯不亮", "n": [1, 2]}
    assert await _read(b'["a"]', "text/plain") == ["a"]  # forced: the type is not trusted
    assert await _read(b"null") is None


@pytest.mark.parametrize("body", [
    b"",
    b"{not json",
    b'{"text": "\xff\xfe"}',  # not UTF-8
    b"[" * 100_000,  # deep enough to exhaust the parser
    "路灯".encode("gbk"),
])
async def test_bytes_that_are_not_readable_json_are_none(body: bytes) -> None:
    assert await _read(body) is None
