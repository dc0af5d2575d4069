"""Short videos: what bot.media.check_video keeps, and how they are stored (once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.media import PhotoRefused, check_video, sniff, sniff_video
from bot.media_store import LocalStore, is_video_ref, keep_video, stored_key
from tests.fixtures.video import MP4, box, video_bytes
from tests.fixtures.wechat.fake_api import JPEG

MB = 1024 * 1024


def test_mp4_and_mov_are_told_by_their_ftyp_box() -> None:
    assert check_video(MP4, MB) == "mp4"
    assert check_video(video_bytes(b"mp42"), MB) == "mp4"
    assert check_video(video_bytes(b"qt  "), MB) == "mov"
    assert sniff(MP4) is None  # not a photo: no photo path takes it


@pytest.mark.parametrize("data", [
    b"", JPEG, b"<html>not a video</html>",
    MP4[:-3],  # cut short: the last box runs past the end
    box(b"ftyp", b"isom" + bytes(4) + b"isom") + box(b"mdat", b"x"),  # no movie header
    box(b"ftyp", b"heic" + bytes(4) + b"mif1heic") + box(b"moov", b"") + box(b"mdat", b"x"),
    box(b"ftyp", b"avif" + bytes(4) + b"avifmif1") + box(b"moov", b"") + box(b"mdat", b"x"),
])
def test_anything_else_is_refused_as_no_video(data: bytes) -> None:
    with pytest.raises(PhotoRefused) as refused:
        check_video(data, MB)
    assert refused.value.key == "media.video_not_video"


def test_a_video_over_the_cap_is_refused_with_the_cap() -> None:
    big = video_bytes(payload=bytes(2 * MB))
    assert sniff_video(big) == "mp4"
    with pytest.raises(PhotoRefused) as refused:
        check_video(big, MB)
    assert refused.value.key == "media.video_too_large" and refused.value.values == {"mb": "1"}


async def test_a_video_is_stored_once_under_its_digest(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    ref = await keep_video(store, MP4, MB)
    assert is_video_ref(ref) and ref.endswith(".mp4")
    assert await keep_video(store, MP4, MB) == ref  # the same bytes: the same file
    key = stored_key(ref)
    assert key is not None and await store.get(key) == MP4
    assert [p.name for p in (tmp_path / "video").iterdir()] == [key.split("/")[-1]]
    with pytest.raises(PhotoRefused):
        await keep_video(store, JPEG, MB)
    assert len(list((tmp_path / "video").iterdir())) == 1
