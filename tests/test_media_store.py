"""The photo store behind its interface: the local folder (the default, what `gridbot backup`
archives) and an S3-compatible bucket — boto3 against moto's S3 server started on loopback
by the test (no network, no AWS)."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.config import Config, MediaConfig
from bot.media_store import (
    LocalStore,
    S3Store,
    downloaded_key,
    jpeg_or_png_within,
    open_store,
    photo_bytes,
    stored_key,
    telegram_file_id,
    thumbnail,
)
from tests.test_telegram import Telegram, _start

MOTO = Path(sys.executable).with_name("moto_server")


def _jpeg(size: tuple[int, int] = (640, 480)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "orange").save(out, "JPEG")
    return out.getvalue()


def test_refs_name_their_keys() -> None:
    assert stored_key("var/media/mp/" + "a" * 32 + ".jpg") == "mp/" + "a" * 32 + ".jpg"
    assert stored_key("wechat:MEDIA_1") == downloaded_key("wechat", "MEDIA_1")
    assert stored_key("wecom:W1").startswith("wecom/")
    # Never outside the store, never a Telegram id or a web address.
    assert stored_key("var/media/../gridbot.db") is None
    assert stored_key("var/media/mp//x.jpg") is None
    assert stored_key("AgACAgUAAxkBAAIBQ2") is None
    assert stored_key("https://example.org/a.jpg") is None
    assert telegram_file_id("AgACAgUAAxkBAAIBQ2") == "AgACAgUAAxkBAAIBQ2"
    assert telegram_file_id("wechat:MEDIA_1") is None
    assert telegram_file_id("var/media/mp/x.jpg") is None


async def test_local_store_round_trip_and_refusals(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "media")
    photo = _jpeg()
    await store.put("mp/" + "b" * 32 + ".jpg", photo)
    assert (tmp_path / "media" / "mp" / ("b" * 32 + ".jpg")).read_bytes() == photo
    assert await photo_bytes(store, "var/media/mp/" + "b" * 32 + ".jpg") == photo
    assert await store.get("mp/missing.jpg") is None
    assert await store.get("../secret") is None
    with pytest.raises(ValueError):
        await store.put("../escape.jpg", photo)
    assert not list((tmp_path / "media").rglob("*.part"))  # written whole, then renamed


def test_thumbnails_and_robot_sized_images() -> None:
    small = thumbnail(_jpeg((1600, 1200)))
    assert small is not None
    with Image.open(io.BytesIO(small)) as image:
        assert max(image.size) == 320 and image.format == "JPEG"
    assert thumbnail(b"not a photo") is None
    photo = _jpeg()
    assert jpeg_or_png_within(photo, 2 * 1024 * 1024) is photo  # fits: sent as it is
    webp = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(webp, "WEBP")
    assert (jpeg_or_png_within(webp.getvalue(), 1 << 20) or b"").startswith(b"\xff\xd8\xff")
    noisy = Image.effect_noise((1500, 1500), 100).convert("RGB")
    big = io.BytesIO()
    noisy.save(big, "PNG")
    assert len(big.getvalue()) > 1_000_000
    shrunk = jpeg_or_png_within(big.getvalue(), 1_000_000)  # too big: re-encoded smaller
    assert shrunk is not None and len(shrunk) <= 1_000_000 and shrunk.startswith(b"\xff\xd8")


# -- S3, against moto's server ---------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    if not MOTO.exists() and shutil.which("moto_server") is None:
        pytest.fail("moto_server is missing: install the test extras (moto[server])")
    port = _free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    server = subprocess.Popen([str(MOTO if MOTO.exists() else "moto_server"),
                               "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("moto_server did not start")
        yield url
    finally:
        server.terminate()
        server.wait(10)


def _s3_config(url: str, bucket: str) -> Config:
    return Config(media=MediaConfig(store="s3", s3_endpoint_url=url, s3_bucket=bucket,
                                    s3_prefix="gridbot/", s3_region="us-east-1",
                                    s3_access_key="test", s3_secret_key="test"))


async def test_s3_store_round_trip(s3_url: str) -> None:
    config = _s3_config(s3_url, "gridbot-media")
    store = open_store(config)
    assert isinstance(store, S3Store)
    store.client.create_bucket(Bucket="gridbot-media")
    photo = _jpeg()
    await store.put(downloaded_key("wechat", "MEDIA_9"), photo)
    assert await photo_bytes(store, "wechat:MEDIA_9") == photo
    listed = store.client.list_objects_v2(Bucket="gridbot-media")["Contents"]
    [obj] = listed
    assert obj["Key"] == "gridbot/" + downloaded_key("wechat", "MEDIA_9")
    head = store.client.head_object(Bucket="gridbot-media", Key=obj["Key"])
    assert head["ContentType"] == "image/jpeg" and head["ContentLength"] == len(photo)
    assert await store.get("wechat/none.jpg") is None
    assert await store.get("../x") is None
    # Another server process (another client) reads the same photo.
    other = open_store(config)
    assert await other.get(downloaded_key("wechat", "MEDIA_9")) == photo


# -- the store in use ------------------------------------------------------------------------

@pytest.fixture
async def tg(services: Any) -> AsyncIterator[Telegram]:
    from adapters import telegram

    driver = await _start(services)
    yield driver
    await telegram.stop(services)


async def test_backup_archives_what_the_local_store_holds(services: Any, tmp_path: Path
                                                         ) -> None:
    from shell.ops.backup import backup

    services.config.media.local_dir = str(tmp_path / "photos")
    photo = _jpeg()
    await open_store(services.config).put("mp/" + "c" * 32 + ".jpg", photo)
    await open_store(services.config).put(downloaded_key("wecom", "W1"), photo)
    manifest = await backup(services.config, tmp_path / "backup.tar.gz")
    assert set(manifest.media) == {"mp/" + "c" * 32 + ".jpg", downloaded_key("wecom", "W1")}


async def test_a_card_photo_read_from_the_bucket_by_another_server(
        s3_url: str, tg: Telegram, tmp_path: Path) -> None:
    """Several servers: the photo was uploaded through one, the card is sent by another —
    whose local folder is empty; the Telegram card still carries the photo's bytes."""
    from bot.cases import CaseDraft, ReporterRef
    from tests.test_telegram import GRID, GROUP, _bind, _workers

    s = tg.services
    config = _s3_config(s3_url, "gridbot-cards")
    config.media.local_dir = str(tmp_path / "empty")
    s.config.media = config.media
    bucket = open_store(s.config)
    assert isinstance(bucket, S3Store)
    bucket.client.create_bucket(Bucket="gridbot-cards")
    photo = _jpeg()
    await bucket.put("mp/" + "d" * 32 + ".jpg", photo)
    tg.channel.sender.store = open_store(s.config)
    await _workers(s)
    await _bind(tg)
    code = next(i.code for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    await s.cases.file(CaseDraft(text="小区门口垃圾满了没人清", item_code=code, grid_code=GRID,
                                 media=["var/media/mp/" + "d" * 32 + ".jpg"]),
                       ReporterRef("wechat_mp", "o-s3"))
    await tg.deliver()
    sent = tg.api.last_to(GROUP, "sendPhoto")
    assert list(sent["uploads"].values()) == [photo] and "caption" in sent
    assert not (tmp_path / "empty").exists()  # nothing came from a local folder
