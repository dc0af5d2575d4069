"""`gridbot backup` / `restore` when photos live in an S3-compatible bucket: the bucket's
objects under the configured prefix go into the archive and come back — into a bucket, or
into the media folder of a deployment restored onto one server. boto3 against moto's S3
server on loopback (tests/test_media_store.py's fixture); both storage set-ups."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import MediaConfig
from bot.media_store import S3Store, downloaded_key, open_store
from bot.services import Services
from shell.ops.backup import BackupError, backup, read_archive, restore
from tests.test_media_store import _jpeg, s3_url  # noqa: F401 (fixture)


def _bucket_config(url: str, bucket: str, local: Path) -> MediaConfig:
    return MediaConfig(store="s3", s3_endpoint_url=url, s3_bucket=bucket,
                       s3_prefix="gridbot/", s3_region="us-east-1", s3_access_key="test",
                       s3_secret_key="test", local_dir=str(local))


async def test_the_bucket_is_archived_and_restored(services: Services, tmp_path: Path,
                                                   s3_url: str) -> None:  # noqa: F811
    s = services
    s.config.media = _bucket_config(s3_url, "backup-src", tmp_path / "local")
    store = open_store(s.config)
    assert isinstance(store, S3Store)
    store.client.create_bucket(Bucket="backup-src")
    photos = {"mp/" + "a" * 32 + ".jpg": _jpeg((64, 48)),
              downloaded_key("wechat", "MEDIA-1"): _jpeg((32, 32))}
    for key, data in photos.items():
        await store.put(key, data)
    # Another application's object in the same bucket, outside our prefix: not ours.
    store.client.put_object(Bucket="backup-src", Key="other-app/x.jpg", Body=b"x")

    archive = tmp_path / "backup.tar.gz"
    manifest = await backup(s.config, archive)
    assert set(manifest.s3) == set(photos) and manifest.media == {}
    assert read_archive(archive).s3 == photos

    # Restored into a fresh bucket of the same deployment.
    s.config.media = _bucket_config(s3_url, "backup-dst", tmp_path / "local2")
    target = open_store(s.config)
    assert isinstance(target, S3Store)
    target.client.create_bucket(Bucket="backup-dst")
    await restore(s.config, archive, force=True)
    for key, data in photos.items():
        assert await target.get(key) == data
        head = target.client.head_object(Bucket="backup-dst", Key="gridbot/" + key)
        assert head["ContentType"] == "image/jpeg"
    listed = target.client.list_objects_v2(Bucket="backup-dst")["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted("gridbot/" + k for k in photos)

    # Restored onto one server with a local folder: the photos land there, same keys.
    s.config.media = MediaConfig(store="local", local_dir=str(tmp_path / "one-server"))
    await restore(s.config, archive, force=True)
    for key, data in photos.items():
        assert (tmp_path / "one-server" / key).read_bytes() == data


async def test_a_damaged_bucket_photo_refuses_the_restore(services: Services, tmp_path: Path,
                                                          s3_url: str) -> None:  # noqa: F811
    import io
    import json
    import tarfile

    s = services
    s.config.media = _bucket_config(s3_url, "backup-bad", tmp_path / "local")
    store = open_store(s.config)
    assert isinstance(store, S3Store)
    store.client.create_bucket(Bucket="backup-bad")
    await store.put("mp/" + "b" * 32 + ".jpg", _jpeg())
    archive = tmp_path / "backup.tar.gz"
    await backup(s.config, archive)
    # Same archive, one photo's bytes changed: the manifest's digest catches it.
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(archive, "r:gz") as src, tarfile.open(damaged, "w:gz") as out:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.startswith("s3/"):
                data = data[:-1] + b"\x00"
            if member.name == "manifest.json":
                assert json.loads(data)["s3"]
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    with pytest.raises(BackupError, match="checksum"):
        read_archive(damaged)
