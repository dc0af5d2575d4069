"""Uploaded photos: is it really an image (and not too big), the per-user daily quota, and the
sweep of orphans — stored photos no case refers to.

The mini-program (adapters/wechat_mp.py) is the one way in that stores the bytes a client
sends; each photo lands in var/media/mp/<32 hex>.<suffix> and case_media.ref holds
"var/media/mp/<name>". A photo belongs to a case once the report is filed (which may take a
few dialog turns, so it is kept meanwhile); everything else in that folder is an orphan.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import re
import struct
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from PIL import Image, UnidentifiedImageError
from sqlalchemy import select

from bot.kv import PREFIX
from bot.models import CaseMedia
from bot.storage import Database

log = logging.getLogger(__name__)

MEDIA_DIR = "var/media"
MP_FOLDER = "mp"  # the mini-program's channel name, and its folder under var/media
MP_REF_PREFIX = f"{MEDIA_DIR}/{MP_FOLDER}/"
ORPHAN_AGE_S = 3600  # a photo no case refers to is removed once this old
QUOTA_TTL_S = 2 * 24 * 3600  # a day's counters outlive the day (time zones, clock skew)
_STORED_NAME = re.compile(r"^[0-9a-f]{32}\.(?:jpg|png|webp|gif|heic)$")
_REF_BATCH = 500  # names per `ref IN (…)` query

# What Pillow calls the formats we take, and the suffix they are stored under. A JPEG with a
# multi-picture segment (many phone cameras) opens as MPO.
_PILLOW_SUFFIX = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
_PILLOW_FORMATS = ["JPEG", "PNG", "WEBP", "GIF"]  # the only decoders Pillow may try
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}


class PhotoRefused(ValueError):
    """Not a photo we keep: `key` names the catalogue message, `values` fill it."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


@dataclass(frozen=True)
class PhotoLimits:
    max_bytes: int
    max_pixels: int


def sniff(data: bytes) -> str | None:
    """The stored suffix the first bytes promise (JPEG, PNG, WebP, GIF, HEIC), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[4:8] == b"ftyp" and _heic_brand(data):
        return "heic"
    return None


def check_photo(data: bytes, limits: PhotoLimits) -> str:
    """The suffix to store `data` under, once it is known to be an image of an accepted
    format within the size and pixel caps; PhotoRefused otherwise. Reads headers only (no
    full decode): cheap, and a decompression bomb is refused by its declared size."""
    if not data:
        raise PhotoRefused("mp.photo_not_image")
    if len(data) > limits.max_bytes:
        raise PhotoRefused("mp.photo_too_large", mb=_mb(limits.max_bytes))
    suffix = sniff(data)
    if suffix is None:
        raise PhotoRefused("mp.photo_not_image")
    if suffix == "heic":
        pixels = _heic_pixels(data)  # Pillow reads no HEIC without a plugin
    else:
        pixels = _pillow_pixels(data, suffix, limits.max_pixels)
    if pixels > limits.max_pixels:
        raise PhotoRefused("mp.photo_too_many_pixels", mp=_megapixels(limits.max_pixels))
    return suffix


# Short videos (Telegram, WeChat): MP4 or QuickTime, told by the ISO-BMFF `ftyp` box's brands.
_MOV_BRANDS = {b"qt  "}
_MP4_BRANDS = {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42",
               b"avc1", b"M4V ", b"M4VH", b"M4VP", b"mmp4", b"MSNV", b"dash", b"3gp4",
               b"3gp5", b"3gp6", b"3g2a"}
VIDEO_SUFFIXES = ("mp4", "mov")


def sniff_video(data: bytes) -> str | None:
    """"mp4" or "mov" when the first box is an `ftyp` naming a video brand, else None."""
    if data[4:8] != b"ftyp" or _heic_brand(data):
        return None
    size = int.from_bytes(data[:4], "big")
    if size < 16 or size > min(len(data), 4096) or size % 4:
        return None
    brands = [data[8:12]] + [data[i:i + 4] for i in range(16, size, 4)]
    if data[8:12] in _MOV_BRANDS:
        return "mov"
    return "mp4" if any(brand in _MP4_BRANDS for brand in brands) else None


def check_video(data: bytes, max_bytes: int) -> str:
    """The suffix to store `data` under ("mp4" or "mov") once it is a whole MP4/QuickTime
    file (top-level boxes that tile it, a `moov` among them) within `max_bytes`;
    PhotoRefused with a media.video_* key otherwise. Reads box headers only."""
    if len(data) > max_bytes:
        raise PhotoRefused("media.video_too_large", mb=_mb(max_bytes))
    suffix = sniff_video(data)
    if suffix is None:
        raise PhotoRefused("media.video_not_video")
    try:
        kinds = {kind for kind, _, _ in _boxes(data, 0, len(data))}
    except PhotoRefused:
        raise PhotoRefused("media.video_not_video") from None
    if b"moov" not in kinds:
        raise PhotoRefused("media.video_not_video")
    return suffix


def _pillow_pixels(data: bytes, suffix: str, max_pixels: int) -> int:
    try:
        with Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS) as image:
            if _PILLOW_SUFFIX.get(image.format or "") != suffix:
                raise PhotoRefused("mp.photo_not_image")
            width, height = image.size
            if width < 1 or height < 1:
                raise PhotoRefused("mp.photo_not_image")
            if width * height > max_pixels:
                return width * height
            image.verify()  # PNG: every chunk's CRC; the others: the structure Pillow read
    except Image.DecompressionBombError:
        return max_pixels + 1  # Pillow's own limit, far above ours
    except PhotoRefused:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error,
            EOFError, IndexError, KeyError, TypeError):
        raise PhotoRefused("mp.photo_not_image") from None
    return width * height


def _heic_brand(data: bytes) -> bool:
    size = int.from_bytes(data[:4], "big")
    if size < 16 or size > len(data) or size % 4:
        return False
    brands = [data[8:12]] + [data[i:i + 4] for i in range(16, size, 4)]
    return any(brand in _HEIC_BRANDS for brand in brands)


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """ISO-BMFF boxes between `start` and `end` as (type, payload start, payload end);
    PhotoRefused when they do not tile that span exactly."""
    found = []
    pos = start
    while pos < end:
        if end - pos < 8:
            raise PhotoRefused("mp.photo_not_image")
        size = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        header = 8
        if size == 1:
            if end - pos < 16:
                raise PhotoRefused("mp.photo_not_image")
            size = int.from_bytes(data[pos + 8:pos + 16], "big")
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise PhotoRefused("mp.photo_not_image")
        found.append((kind, pos + header, pos + size))
        pos += size
    return found


def _heic_pixels(data: bytes) -> int:
    """The largest image size the HEIC declares (its `ispe` properties). The file must be
    whole ISO-BMFF boxes, start with ftyp and hold the meta and mdat boxes."""
    top = _boxes(data, 0, len(data))
    kinds = [kind for kind, _, _ in top]
    if not kinds or kinds[0] != b"ftyp" or b"meta" not in kinds or b"mdat" not in kinds:
        raise PhotoRefused("mp.photo_not_image")
    pixels = 0
    for kind, start, end in top:
        if kind != b"meta":
            continue
        for iprp, i_start, i_end in _boxes(data, start + 4, end):  # meta is a full box
            if iprp != b"iprp":
                continue
            for ipco, c_start, c_end in _boxes(data, i_start, i_end):
                if ipco != b"ipco":
                    continue
                for prop, p_start, p_end in _boxes(data, c_start, c_end):
                    if prop == b"ispe" and p_end - p_start >= 12:
                        width, height = struct.unpack(">II", data[p_start + 4:p_start + 12])
                        pixels = max(pixels, width * height)
    if pixels <= 0:
        raise PhotoRefused("mp.photo_not_image")
    return pixels


def _mb(n: int) -> str:
    return f"{n / 1_048_576:g}"


def _megapixels(n: int) -> str:
    return f"{n / 1_000_000:g}"


# -- the per-user daily quota, in Redis (shared by every server process) ------------------

class PhotoQuota:
    """Photos and bytes one user may store per local day. Reserved before the files are
    written, given back when the request that reserved them keeps none."""

    def __init__(self, redis: aioredis.Redis, files_per_day: int, bytes_per_day: int,
                 timezone: str, clock: Any = None) -> None:
        self.redis = redis
        self.files_per_day = files_per_day
        self.bytes_per_day = bytes_per_day
        self.zone = ZoneInfo(timezone)
        self.clock = clock

    def key(self, user: str) -> str:
        now = self.clock() if self.clock is not None else datetime.now(self.zone)
        day = now.astimezone(self.zone).date().isoformat()
        # Hashed as the rate limits do: openids stay out of Redis key names.
        digest = hashlib.blake2b(user.encode("utf-8", "replace"), digest_size=12).hexdigest()
        return f"{PREFIX}mpquota:{day}:{digest}"

    async def reserve(self, user: str, files: int, size: int) -> str | None:
        """The key holding the reservation, or None (nothing reserved) when it would take the
        user past either daily limit."""
        if files > self.files_per_day or size > self.bytes_per_day:
            return None
        key = self.key(user)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, "files", files)
            pipe.hincrby(key, "bytes", size)
            pipe.expire(key, QUOTA_TTL_S)
            total_files, total_bytes, _ = await pipe.execute()
        if int(total_files) > self.files_per_day or int(total_bytes) > self.bytes_per_day:
            await self.release(key, files, size)
            return None
        return key

    async def release(self, key: str, files: int, size: int) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, "files", -files)
            pipe.hincrby(key, "bytes", -size)
            await pipe.execute()


# -- the orphan sweep -----------------------------------------------------------------------

@dataclass
class SweepReport:
    examined: int = 0  # stored photos old enough to be orphans
    removed: list[Path] = field(default_factory=list)  # (or, in a dry run, would be)
    removed_bytes: int = 0


def remove_files(paths: list[Path]) -> None:
    """Delete stored files, quietly: one already gone is what we wanted."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            log.warning("could not remove %s", path, exc_info=True)


def _old_files(folder: Path, older_than: float, newer_than: float | None) -> list[Path]:
    """Regular files named as the mini-program names its photos, modified before
    `older_than` (and after `newer_than`, when given)."""
    found = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    for entry in entries:
        if not _STORED_NAME.match(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            mtime = entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue
        if mtime < older_than and (newer_than is None or mtime > newer_than):
            found.append(Path(entry.path))
    return found


async def referenced(db: Database, refs: list[str]) -> set[str]:
    """Those of `refs` some case_media row holds."""
    held: set[str] = set()
    async with db.single() as session:  # plain reads
        for i in range(0, len(refs), _REF_BATCH):
            batch = refs[i:i + _REF_BATCH]
            rows = await session.execute(
                select(CaseMedia.ref).where(CaseMedia.ref.in_(batch)).distinct())
            held.update(rows.scalars())
    return held


async def any_referenced(db: Database) -> bool:
    """Whether any case refers to a mini-program photo (a sweep against a database that
    knows none would take them all: the wrong database, most likely)."""
    async with db.single() as session:
        row = await session.execute(
            select(CaseMedia.id).where(CaseMedia.ref.startswith(MP_REF_PREFIX)).limit(1))
        return row.first() is not None


async def _in_dialogs(redis: aioredis.Redis) -> set[str]:
    """Media references that half-finished mini-program reports hold (not filed yet)."""
    held: set[str] = set()
    async for key in redis.scan_iter(match=f"{PREFIX}dialog:{MP_FOLDER}:*", count=1000):
        raw = await redis.get(key)
        try:
            state = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            continue
        media = state.get("media") if isinstance(state, dict) else None
        if isinstance(media, list):
            held.update(ref for ref in media if isinstance(ref, str))
    return held


async def sweep_orphans(db: Database, folder: Path, *, redis: aioredis.Redis | None = None,
                        min_age_s: float = ORPHAN_AGE_S, look_back_s: float | None = None,
                        dry_run: bool = False, now: float | None = None) -> SweepReport:
    """Remove the photos in `folder` (var/media/mp) older than `min_age_s` that no
    case_media row refers to, nor (with `redis`) a half-finished report. `look_back_s`: only
    look at files modified in that span before the `min_age_s` cut-off (the periodic pass:
    a full sweep examines every file). `dry_run`: report, remove nothing."""
    now = time.time() if now is None else now
    older_than = now - min_age_s
    newer_than = older_than - look_back_s if look_back_s is not None else None
    candidates = await asyncio.to_thread(_old_files, folder, older_than, newer_than)
    report = SweepReport(examined=len(candidates))
    if not candidates:
        return report
    refs = {MP_REF_PREFIX + path.name: path for path in candidates}
    # Dialogs first: a report filed between the two looks leaves its dialog before the
    # database read that then sees its case_media rows.
    held = await _in_dialogs(redis) if redis is not None else set()
    held |= await referenced(db, sorted(refs))
    orphans = [path for ref, path in refs.items() if ref not in held]
    for path in orphans:
        try:
            report.removed_bytes += path.stat().st_size
        except FileNotFoundError:
            continue
        report.removed.append(path)
    if not dry_run:
        await asyncio.to_thread(remove_files, report.removed)
    if report.removed:
        log.info("media sweep: %s %d orphan photo(s), %d bytes, in %s",
                 "would remove" if dry_run else "removed", len(report.removed),
                 report.removed_bytes, folder)
    return report
