"""Mini-program uploads cannot fill the disk: the whole request is checked before a byte is
stored, a photo must really be an image within the caps, each user has a daily quota (in
Redis), a request that fails or comes to nothing leaves no file, and orphans are swept (by the
app's periodic job and by `gridbot media sweep`)."""

from __future__ import annotations

import asyncio
import io
import os
import struct
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from quart.datastructures import FileStorage
from typer.testing import CliRunner

from adapters import wechat_mp
from bot.config import WechatConfig
from bot.media import PhotoLimits, PhotoRefused, check_photo, sweep_orphans
from bot.services import Services
from bot.texts import t
from shell.app import create_app
from tests.fixtures.wechat.fake_api import FakeWeChat
from tests.test_wechat_mp import PIN, login

TEXT = "季华五路18号门口路灯不亮，晚上很黑"
HOUR = 3600


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (64, 48), noise: bool = False,
                ) -> bytes:
    image = Image.new("RGB", size, (200, 60, 20))
    if noise:
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def heic_bytes(width: int = 4032, height: int = 3024) -> bytes:
    """The box structure of an iPhone HEIC (ftyp, meta with ispe, mdat); no real pixels."""
    ispe = _box(b"ispe", b"\0\0\0\0" + struct.pack(">II", width, height))
    meta = _box(b"meta", b"\0\0\0\0" + _box(b"hdlr", b"\0" * 8 + b"pict" + b"\0" * 13)
                + _box(b"iprp", _box(b"ipco", ispe)))
    return _box(b"ftyp", b"heic\0\0\0\0mif1heic") + meta + _box(b"mdat", b"\x00" * 64)


def upload(data: bytes, name: str = "a.jpg", content_type: str = "image/jpeg") -> FileStorage:
    return FileStorage(stream=io.BytesIO(data), filename=name, content_type=content_type)


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def connect(services: Services, fake: FakeWeChat, media: Path, **settings: Any) -> Any:
    settings.setdefault("mp_media_sweep_interval_s", 0)
    services.config.wechat = WechatConfig(
        mp_app_id="wxmp0123456789ab", mp_app_secret="mp-secret", api_base_url=fake.base_url,
        session_secret="test-session-secret", mp_subscribe_template_id="SUB-status",
        **settings)
    await wechat_mp.start(services)
    mp = wechat_mp.channel_for(services)
    assert mp is not None
    mp.media_dir = media
    return create_app(services.config, services, background=False).test_client()


async def post(client: Any, auth: dict[str, str], photos: list[bytes] | list[FileStorage],
               **form: str) -> Any:
    files = [p if isinstance(p, FileStorage) else upload(p, f"{i}.jpg")
             for i, p in enumerate(photos)]
    # The test client takes one file per field name: build the multipart body by hand.
    boundary = uuid.uuid4().hex
    body = io.BytesIO()
    for key, value in form.items():
        body.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{key}\"\r\n\r\n"
                   f"{value}\r\n".encode())
    for f in files:
        body.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"photos\"; "
                   f"filename=\"{f.filename}\"\r\nContent-Type: {f.content_type}\r\n\r\n"
                   .encode())
        body.write(f.read())
        body.write(b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    headers = {**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    return await client.post("/api/mp/reports", headers=headers, data=body.getvalue())


async def finish(client: Any, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """Pick the first suggestion when the model was unsure, and confirm."""
    if body["step"] == "choose_item":
        await client.post("/api/mp/reports/reply", headers=auth, json={"text": "1"})
        body = await (await client.post("/api/mp/reports/reply", headers=auth,
                                        json={"text": "确认"})).get_json()
    assert body["case"] is not None and body["step"] is None, body
    return body


# -- the whole request is checked before anything is stored ---------------------------------

async def test_twenty_invalid_reports_store_no_file(services: Services, fake_api: FakeWeChat,
                                                    tmp_path: Path) -> None:
    media = tmp_path / "media"
    client = await connect(services, fake_api, media)
    auth = await login(client, "code-mallory")
    photos = [image_bytes() for _ in range(9)]
    for _ in range(20):  # the finding: empty text, nine photos each
        r = await post(client, auth, photos, text="", lat=str(PIN[0]), lon=str(PIN[1]))
        assert r.status_code == 400
        assert "text" in (await r.get_json())["error"]
    assert stored_files(media) == []


@pytest.mark.parametrize("form", [
    {"text": "   "},  # blank
    {"text": TEXT, "lat": str(PIN[0])},  # half a point
    {"text": TEXT, "lat": "91", "lon": "113.1"},  # off the globe
    {"text": TEXT, "lat": "north", "lon": "113.1"},
    {"text": TEXT, "coord": "bd09", "lat": str(PIN[0]), "lon": str(PIN[1])},
    {"text": TEXT, "address": "路" * 201},
    {"text": TEXT, "community": "c" * 33},
    {"text": TEXT, "surprise": "1"},  # a field the API does not have
])
async def test_any_invalid_field_stores_no_file(services: Services, fake_api: FakeWeChat,
                                                tmp_path: Path, form: dict[str, str]) -> None:
    media = tmp_path / "media"
    client = await connect(services, fake_api, media)
    auth = await login(client, "code-mallory")
    r = await post(client, auth, [image_bytes(), image_bytes("PNG")], **form)
    assert r.status_code == 400, await r.get_data(as_text=True)
    assert stored_files(media) == []


async def test_ten_photos_or_an_extra_file_field_store_nothing(
    services: Services, fake_api: FakeWeChat, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    client = await connect(services, fake_api, media)
    auth = await login(client, "code-mallory")
    r = await post(client, auth, [image_bytes() for _ in range(10)], text=TEXT)
    assert r.status_code == 400 and (await r.get_json())["error"] == t("mp.too_many_photos",
                                                                       max=9)
    r = await client.post("/api/mp/reports", headers=auth, form={"text": TEXT},
                          files={"attachment": upload(image_bytes())})
    assert r.status_code == 400 and "attachment" in (await r.get_json())["error"]
    assert stored_files(media) == []


# -- a photo must really be an image --------------------------------------------------------

async def test_text_file_named_jpg_is_refused_in_chinese(services: Services,
                                                         fake_api: FakeWeChat,
                                                         tmp_path: Path) -> None:
    media = tmp_path / "media"
    client = await connect(services, fake_api, media)
    auth = await login(client, "code-mallory")
    fake = upload("这不是照片，只是一个文本文件。\n".encode() * 50, "photo.jpg")
    r = await post(client, auth, [image_bytes(), fake], text=TEXT, lat=str(PIN[0]),
                   lon=str(PIN[1]), confirm="1")
    assert r.status_code == 400
    answer = await r.get_json()
    assert answer["error"] == t("mp.photo_not_image", n=2)
    assert "第 2 张照片不是有效的图片" in answer["error"]
    assert stored_files(media) == []
    # JPEG's first bytes in front of text are not a JPEG either.
    r = await post(client, auth, [b"\xff\xd8\xff\xe0" + b"<html>" * 100], text=TEXT)
    assert r.status_code == 400
    assert (await r.get_json())["error"] == t("mp.photo_not_image", n=1)
    assert stored_files(media) == []


async def test_size_and_pixel_caps(services: Services, fake_api: FakeWeChat,
                                   tmp_path: Path) -> None:
    media = tmp_path / "media"
    client = await connect(services, fake_api, media, mp_photo_max_bytes=20_000,
                           mp_photo_max_pixels=1_000_000)
    auth = await login(client, "code-mallory")
    big = image_bytes("PNG", (120, 120), noise=True)  # ~43 KB of noise
    r = await post(client, auth, [big], text=TEXT)
    assert r.status_code == 400
    assert (await r.get_json())["error"] == t("mp.photo_too_large", n=1, mb="0.0190735")
    wide = image_bytes("PNG", (2000, 1000))  # a few KB, two million pixels
    r = await post(client, auth, [image_bytes(), wide], text=TEXT)
    assert r.status_code == 400
    assert (await r.get_json())["error"] == t("mp.photo_too_many_pixels", n=2, mp="1")
    assert stored_files(media) == []


def test_check_photo_knows_what_wechat_sends() -> None:
    limits = PhotoLimits(max_bytes=10_000_000, max_pixels=50_000_000)
    for fmt, suffix in (("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif")):
        assert check_photo(image_bytes(fmt), limits) == suffix
    assert check_photo(heic_bytes(), limits) == "heic"
    with pytest.raises(PhotoRefused) as refused:
        check_photo(heic_bytes(9000, 9000), limits)  # 81 megapixels
    assert refused.value.key == "mp.photo_too_many_pixels"
    truncated = image_bytes("PNG", (300, 200), noise=True)[:-100]
    broken_heic = heic_bytes() + b"trailing garbage"
    for data in (b"", b"GIF89a not really", b"RIFF\0\0\0\0WEBPVP8 ", truncated, broken_heic,
                 b"\x89PNG\r\n\x1a\n" + b"\0" * 40, image_bytes("BMP"), image_bytes("TIFF")):
        with pytest.raises(PhotoRefused) as refused:
            check_photo(data, limits)
        assert refused.value.key == "mp.photo_not_image", data[:20]


# -- the daily quota ------------------------------------------------------------------------

async def test_over_quota_user_is_refused(services: Services, fake_api: FakeWeChat,
                                          tmp_path: Path) -> None:
    media = tmp_path / "media"
    client = await connect(services, fake_api, media, mp_photos_per_day=3,
                           mp_photo_bytes_per_day=1_000_000)
    auth = await login(client, "code-mallory")
    r = await post(client, auth, [image_bytes(), image_bytes()], text=TEXT,
                   lat=str(PIN[0]), lon=str(PIN[1]), confirm="1")
    assert r.status_code == 200
    await finish(client, auth, await r.get_json())
    kept = stored_files(media)
    assert len(kept) == 2
    r = await post(client, auth, [image_bytes(), image_bytes()], text=TEXT)
    assert r.status_code == 429
    assert (await r.get_json())["error"] == t("mp.photo_quota", files=3, mb="0.953674")
    assert "上限" in (await r.get_json())["error"]
    assert stored_files(media) == kept
    r = await post(client, auth, [image_bytes()], text=TEXT)  # the third photo still fits
    assert r.status_code == 200 and len(stored_files(media)) == 3
    # Someone else has a quota of their own.
    other = await login(client, "code-nina")
    r = await post(client, other, [image_bytes(), image_bytes()], text=TEXT)
    assert r.status_code == 200 and len(stored_files(media)) == 5


async def test_bytes_count_against_the_quota_too(services: Services, fake_api: FakeWeChat,
                                                 tmp_path: Path) -> None:
    media = tmp_path / "media"
    client = await connect(services, fake_api, media, mp_photo_bytes_per_day=600_000)
    auth = await login(client, "code-mallory")
    noisy = [image_bytes("PNG", (300, 300), noise=True) for _ in range(3)]  # ~270 KB each
    r = await post(client, auth, noisy[:2], text=TEXT)
    assert r.status_code == 200 and len(stored_files(media)) == 2
    r = await post(client, auth, noisy[2:], text=TEXT)
    assert r.status_code == 429 and len(stored_files(media)) == 2
    r = await post(client, auth, [image_bytes()], text=TEXT)  # a small one still fits
    assert r.status_code == 200 and len(stored_files(media)) == 3


async def test_photos_of_a_report_that_comes_to_nothing_are_removed(
    services: Services, fake_api: FakeWeChat, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    client = await connect(services, fake_api, media, mp_photos_per_day=4)
    auth = await login(client, "code-mallory")
    for _ in range(3):  # cancelled at once, three times: no file, and no quota used
        r = await post(client, auth, [image_bytes(), image_bytes()], text="取消")
        assert r.status_code == 200 and (await r.get_json())["case"] is None
        assert stored_files(media) == []
    # A report that waits for its place keeps its photos until it is filed.
    r = await post(client, auth, [image_bytes(), image_bytes()], text="门口路灯不亮")
    body = await r.get_json()
    assert body["step"] is not None and len(stored_files(media)) == 2


async def test_a_failed_report_leaves_no_file(services: Services, fake_api: FakeWeChat,
                                              tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    media = tmp_path / "media"
    client = await connect(services, fake_api, media, mp_photos_per_day=2)
    auth = await login(client, "code-mallory")

    async def storage_down(*_args: Any) -> None:
        raise RuntimeError("Redis went away")

    monkeypatch.setattr(services.dialogs, "save", storage_down)
    for _ in range(2):  # the quota comes back with the files
        r = await post(client, auth, [image_bytes(), image_bytes()], text=TEXT,
                       lat=str(PIN[0]), lon=str(PIN[1]), confirm="1")
        assert r.status_code == 500
        assert stored_files(media) == []
    monkeypatch.undo()
    r = await post(client, auth, [image_bytes(), image_bytes()], text=TEXT)
    assert r.status_code == 200


# -- orphans --------------------------------------------------------------------------------

def _orphan(folder: Path, age_s: float, suffix: str = "jpg") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.{suffix}"
    path.write_bytes(image_bytes())
    _age(path, age_s)
    return path


def _age(path: Path, age_s: float) -> None:
    then = time.time() - age_s
    os.utime(path, (then, then))


async def _referenced(client: Any, media: Path) -> Path:
    """A photo a filed case refers to, made two hours old."""
    auth = await login(client, "code-olga")
    before = stored_files(media / "mp")
    r = await post(client, auth, [image_bytes()], text=TEXT, lat=str(PIN[0]),
                   lon=str(PIN[1]), confirm="1")
    await finish(client, auth, await r.get_json())
    [path] = [p for p in stored_files(media / "mp") if p not in before]
    _age(path, 2 * HOUR)
    return path


async def _pending(client: Any, media: Path) -> Path:
    """A photo a half-finished report (waiting for its place) holds, made two hours old."""
    auth = await login(client, "code-pete")
    before = stored_files(media / "mp")
    r = await post(client, auth, [image_bytes()], text="门口路灯不亮")
    assert (await r.get_json())["step"] is not None
    [path] = [p for p in stored_files(media / "mp") if p not in before]
    _age(path, 2 * HOUR)
    return path


async def test_sweep_removes_orphans_and_keeps_what_cases_use(
    services: Services, fake_api: FakeWeChat, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    client = await connect(services, fake_api, media)
    referenced, pending = await _referenced(client, media), await _pending(client, media)
    folder = media / "mp"
    orphan = _orphan(folder, 2 * HOUR)
    orphan_png = _orphan(folder, 3 * 24 * HOUR, "png")
    fresh = _orphan(folder, 10 * 60)  # maybe a report being written right now
    notes = folder / "README.txt"
    notes.write_text("not ours")
    _age(notes, 2 * HOUR)

    dry = await sweep_orphans(services.db, folder, redis=services.redis, dry_run=True)
    assert sorted(dry.removed) == sorted([orphan, orphan_png])
    assert dry.examined == 4 and orphan.exists()
    done = await sweep_orphans(services.db, folder, redis=services.redis)
    assert sorted(done.removed) == sorted([orphan, orphan_png])
    assert not orphan.exists() and not orphan_png.exists()
    assert referenced.exists() and pending.exists() and fresh.exists() and notes.exists()
    # The periodic pass looks back a day: the three-day-old orphan is the full sweep's.
    late = _orphan(folder, 3 * 24 * HOUR)
    quick = await sweep_orphans(services.db, folder, redis=services.redis,
                                look_back_s=24 * HOUR)
    assert quick.removed == [] and late.exists()


async def test_the_app_sweeps_periodically(services: Services, fake_api: FakeWeChat,
                                           tmp_path: Path) -> None:
    media = tmp_path / "media"
    await connect(services, fake_api, media, mp_media_sweep_interval_s=1)
    orphan = _orphan(media / "mp", 2 * HOUR)
    kept = _orphan(media / "mp", 60)
    try:
        for _ in range(50):
            if not orphan.exists():
                break
            await asyncio.sleep(0.1)
        assert not orphan.exists() and kept.exists()
    finally:
        await wechat_mp.stop(services)


async def test_gridbot_media_sweep(services: Services, fake_api: FakeWeChat,
                                   tmp_path: Path) -> None:
    from shell.cli import app

    media = tmp_path / "var" / "media"  # where the config below keeps them
    client = await connect(services, fake_api, media)
    referenced = await _referenced(client, media)
    orphan = _orphan(media / "mp", 2 * HOUR)
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{services.config.database_url}"\n'
                      f'[redis]\nurl = "{services.config.redis.url}"\n', encoding="utf-8")
    cli = ["media", "sweep", "--config", str(config)]
    env: dict[str, str | None] = {"GRIDBOT_DATABASE_URL": None, "GRIDBOT_REDIS_URL": None}
    result = await asyncio.to_thread(CliRunner().invoke, app, [*cli, "--dry-run"], env=env)
    assert result.exit_code == 0, result.output
    assert orphan.name in result.output and "would remove: 1 orphan" in result.output
    assert orphan.exists()
    result = await asyncio.to_thread(CliRunner().invoke, app, cli, env=env)
    assert result.exit_code == 0, result.output
    assert "removed: 1 orphan" in result.output
    assert not orphan.exists() and referenced.exists()


def test_gridbot_media_sweep_refuses_a_database_without_photos(tmp_path: Path) -> None:
    """Pointed at a database no case with a photo is in (the wrong one, most likely), the
    sweep would take every photo: it removes nothing unless told --force."""
    from bot.storage import upgrade_sync
    from shell.cli import app

    orphan = _orphan(tmp_path / "var" / "media" / "mp", 2 * HOUR)
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/other.db"\n',
                      encoding="utf-8")
    upgrade_sync(f"sqlite+aiosqlite:///{tmp_path}/other.db")
    cli = ["media", "sweep", "--config", str(config)]
    env: dict[str, str | None] = {"GRIDBOT_DATABASE_URL": None, "GRIDBOT_REDIS_URL": None}
    result = CliRunner().invoke(app, cli, env=env)
    assert result.exit_code == 1 and orphan.exists(), result.output
    result = CliRunner().invoke(app, [*cli, "--dry-run"], env=env)
    assert result.exit_code == 0 and orphan.exists(), result.output
    result = CliRunner().invoke(app, [*cli, "--force"], env=env)
    assert result.exit_code == 0 and not orphan.exists(), result.output
