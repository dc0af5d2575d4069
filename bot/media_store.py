"""Where photo bytes live, behind one interface: a local folder (var/media, the default — and
what `gridbot backup` archives) or an S3-compatible bucket shared by several servers.

A case_media ref names a photo the way its channel gave it; `stored_key` turns it into the
store's key: the mini-program's "var/media/mp/<name>" → "mp/<name>", WeChat's and WeCom's
"wechat:<media id>" → "wechat/<sha256[:32]>.jpg" (downloaded on receipt: WeChat deletes
temporary media after three days). A Telegram file id stays on Telegram's servers: no key.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from bot.config import Config
from bot.media import check_video

MEDIA_DIR = "var/media"
_REF_PREFIX = f"{MEDIA_DIR}/"
DOWNLOADED = ("wechat", "wecom")  # channels whose media ids we download and keep
THUMB_PX = 320
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp",
                 "gif": "image/gif", "heic": "image/heic",
                 "mp4": "video/mp4", "mov": "video/quicktime"}
VIDEO_FOLDER = "video"  # citizens' short videos, named by their bytes' digest


class MediaStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes | None:
        """The bytes, or None when the store does not hold `key`."""


def downloaded_key(channel: str, media_id: str) -> str:
    """The key a channel's downloaded media id is kept under."""
    return f"{channel}/{hashlib.sha256(media_id.encode()).hexdigest()[:32]}.jpg"


def stored_key(ref: str) -> str | None:
    """The store key holding `ref`'s bytes, or None (a Telegram file id, a web address)."""
    if ref.startswith(_REF_PREFIX):
        key = ref[len(_REF_PREFIX):]
        return key if _safe(key) else None
    channel, sep, media_id = ref.partition(":")
    if sep and channel in DOWNLOADED and media_id:
        return downloaded_key(channel, media_id)
    return None


def telegram_file_id(ref: str) -> str | None:
    """A photo sent on Telegram (by a reporter or a worker) is kept as its bare file id; the
    other refs carry a channel prefix or a path."""
    if not ref or ":" in ref or "/" in ref:
        return None
    return ref


def video_ref(data: bytes, suffix: str) -> str:
    """The case_media ref a video is kept under: named by its bytes, so the same video sent
    twice is stored once."""
    return f"{_REF_PREFIX}{VIDEO_FOLDER}/{hashlib.sha256(data).hexdigest()[:32]}.{suffix}"


def is_video_ref(ref: str) -> bool:
    return ref.startswith(f"{_REF_PREFIX}{VIDEO_FOLDER}/") and ref.endswith((".mp4", ".mov"))


def media_kind(ref: str) -> str:
    """case_media.kind of a ref: "video" for a stored video, else "photo"."""
    return "video" if is_video_ref(ref) else "photo"


async def keep_video(store: MediaStore, data: bytes, max_bytes: int) -> str:
    """Store a citizen's video once it is checked (bot.media.check_video raises
    PhotoRefused otherwise); its case_media ref."""
    suffix = await asyncio.to_thread(check_video, data, max_bytes)
    ref = video_ref(data, suffix)
    await store.put(ref[len(_REF_PREFIX):], data)
    return ref


def content_type(key: str) -> str:
    return CONTENT_TYPES.get(key.rsplit(".", 1)[-1].lower(), "application/octet-stream")


def _safe(key: str) -> bool:
    parts = key.split("/")
    return bool(key) and all(p not in ("", ".", "..") for p in parts) and "\\" not in key


class LocalStore:
    """The default: files under var/media (one server, or a shared disk)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        if not _safe(key):
            raise ValueError(f"bad media key {key!r}")
        return self.root / key

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(_write, self.path(key), data)

    async def get(self, key: str) -> bytes | None:
        try:
            return await asyncio.to_thread(self.path(key).read_bytes)
        except (FileNotFoundError, IsADirectoryError, ValueError):
            return None


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)  # a reader never sees half a photo


class S3Store:
    """An S3-compatible bucket (AWS, MinIO, Ceph…) for several servers. boto3 is
    synchronous: every call runs in a worker thread."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    @classmethod
    def from_config(cls, config: Config) -> S3Store:
        import boto3  # only deployments that use S3 need it

        media = config.media
        client = boto3.client(
            "s3", endpoint_url=media.s3_endpoint_url or None,
            region_name=media.s3_region or None,
            aws_access_key_id=media.s3_access_key or None,
            aws_secret_access_key=media.s3_secret_key or None)
        return cls(client, media.s3_bucket, media.s3_prefix)

    async def put(self, key: str, data: bytes) -> None:
        if not _safe(key):
            raise ValueError(f"bad media key {key!r}")
        await asyncio.to_thread(self.client.put_object, Bucket=self.bucket,
                                Key=self.prefix + key, Body=data,
                                ContentType=content_type(key))

    async def get(self, key: str) -> bytes | None:
        if not _safe(key):
            return None
        return await asyncio.to_thread(self._get, self.prefix + key)

    def _get(self, full_key: str) -> bytes | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=full_key)
        except self.client.exceptions.NoSuchKey:
            return None
        body: bytes = answer["Body"].read()
        return body


def open_store(config: Config) -> MediaStore:
    if config.media.store == "s3":
        return S3Store.from_config(config)
    return LocalStore(config.path(config.media.local_dir))


async def photo_bytes(store: MediaStore, ref: str) -> bytes | None:
    """A stored photo's bytes, or None (not stored here, or not yet downloaded)."""
    key = stored_key(ref)
    return await store.get(key) if key else None


def thumbnail(data: bytes, size: int = THUMB_PX) -> bytes | None:
    """A small JPEG of a photo for the console's lists; None when Pillow cannot read it
    (HEIC): the page then shows the original."""
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG", "PNG", "WEBP", "GIF"]) as image:
            image.thumbnail((size, size))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=80)
            return out.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def jpeg_or_png_within(data: bytes, max_bytes: int) -> bytes | None:
    """`data` as a JPEG or PNG of at most `max_bytes` (what WeCom's group robot takes):
    as it is when it already fits, else re-encoded and shrunk; None when Pillow cannot
    read it (HEIC)."""
    if len(data) <= max_bytes and data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")):
        return data
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG", "PNG", "WEBP", "GIF"]) as image:
            picture = image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    for side in (4096, 2048, 1280, 800):
        picture.thumbnail((side, side))
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=82)
        if out.tell() <= max_bytes:
            return out.getvalue()
    return None
