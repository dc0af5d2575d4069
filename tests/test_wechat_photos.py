"""A 办结's result photo reaches a WeChat reporter as a customer-service image message (after
the words), inside the 48-hour window: wechatpy's real client uploads it as temporary
media and sends it, against the local fake WeChat API. On both storage set-ups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wechatpy.exceptions import WeChatClientException

from bot.media_store import open_store
from bot.services import Services
from bot.texts import t
from tests.conftest import FakeClock
from tests.fixtures.wechat.fake_api import JPEG, FakeWeChat
from tests.test_wechat import _file_for, connect

RESULT_REF = "var/media/mp/" + "e" * 32 + ".jpg"
NOTE = "垃圾已清运，地面已冲洗"


async def _handled_with_photo(s: Services, clock: FakeClock, openid: str,
                              tmp_path: Path) -> str:
    """The reporter's case, taken and handled by its grid worker with a result photo."""
    s.config.media.local_dir = str(tmp_path / "photos")
    await open_store(s.config).put(RESULT_REF.removeprefix("var/media/"), JPEG)
    number = await _file_for(s, openid)
    case = await s.cases.get(number)
    assert case is not None
    worker = await s.teams.add_worker("李静", "grid_worker", f"grid:{case.grid_code}",
                                      "telegram", f"tg-{openid}", clock())
    await s.actions.accept(number, worker)
    await s.actions.resolve(number, worker, NOTE, media=[RESULT_REF])
    return number


async def test_the_result_photo_follows_the_words_as_an_image(
        clocked: Services, clock: FakeClock, fake_api: FakeWeChat,
        tmp_path: Path) -> None:
    s = clocked
    server, _ = await connect(s, fake_api, tmp_path)
    await server.say("o-photo", "你好")  # opens the 48-hour window
    number = await _handled_with_photo(s, clock, "o-photo", tmp_path)
    await s.outbox.run_once()
    assert fake_api.texts_to("o-photo")[-1] == t("citizen.handled_with", number=number,
                                                 note=NOTE)
    [image] = fake_api.images_to("o-photo")
    assert JPEG in image and b'filename="result.jpg"' in image  # the photo's own bytes
    sends = [c for c in fake_api.sent("/cgi-bin/message/custom/send")
             if c.body["touser"] == "o-photo"]
    assert sends[-1].body["msgtype"] == "image"  # after the words
    assert [c.query["type"] for c in fake_api.sent("/cgi-bin/media/upload")] == ["image"]


async def test_a_failed_image_is_retried_without_repeating_the_words(
        clocked: Services, clock: FakeClock, fake_api: FakeWeChat,
        tmp_path: Path) -> None:
    s = clocked
    server, channel = await connect(s, fake_api, tmp_path)
    await server.say("o-retry", "你好")
    real = channel.send_image
    failures = [WeChatClientException(45009, "api freq out of limit")]

    async def flaky(*args: Any) -> None:
        if failures:
            raise failures.pop()
        await real(*args)

    channel.send_image = flaky  # type: ignore[method-assign]
    number = await _handled_with_photo(s, clock, "o-retry", tmp_path)
    await s.outbox.run_once()
    handled = t("citizen.handled_with", number=number, note=NOTE)
    assert fake_api.texts_to("o-retry").count(handled) == 1
    assert fake_api.images_to("o-retry") == []
    clock.advance(seconds=5)
    assert await s.outbox.run_once() == 1
    assert fake_api.texts_to("o-retry").count(handled) == 1  # the words went once
    assert len(fake_api.images_to("o-retry")) == 1


async def test_no_image_outside_the_window(
        clocked: Services, clock: FakeClock, fake_api: FakeWeChat,
        tmp_path: Path) -> None:
    s = clocked
    server, _ = await connect(s, fake_api, tmp_path)
    await server.say("o-late", "你好")
    clock.advance(hours=49)
    await _handled_with_photo(s, clock, "o-late", tmp_path)
    await s.outbox.run_once()
    assert fake_api.images_to("o-late") == [] and not fake_api.sent("/cgi-bin/media/upload")
    assert fake_api.sent("/cgi-bin/message/template/send")
