"""`gridbot backup` / `gridbot restore`: a round trip on both back ends (and across them),
refusals (non-empty target, newer revision, damaged archive) and the CLI."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select

from bot.cases import CaseDraft, ReporterRef
from bot.config import PROJECT_ROOT, Config
from bot.models import Base
from bot.services import Services, build_services
from shell.ops.backup import BackupError, backup, head_revision, restore
from tests.conftest import POSTGRES_URL, make_config
from tests.gridbot_cli import gridbot

GRID = "440604001001001"  # 同济社区第3网格 (as in the other tests)
PIN = (23.0215, 113.1214)


async def _fill(s: Services, media: Path) -> str:
    """Cases through the real engine: filed, worked, closed and rated; a photo on disk."""
    grid = s.grids.locate(*PIN)
    assert grid is not None
    code = next(i.code for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    worker = await s.teams.add_worker("李静", "grid_worker", f"grid:{grid.code}", "telegram",
                                      "tg-li", s.cases.clock())
    numbers = []
    for i, reporter in enumerate(["u1", "u2", "u3"]):
        filing = await s.cases.file(CaseDraft(
            text=f"楼下堆满了垃圾 {i}，电话 13800138000", item_code=code, grid_code=grid.code,
            lat=PIN[0] + i * 0.01, lon=PIN[1], address="季华五路18号",
            media=[f"wechat:photo-{i}"]), ReporterRef("http", reporter))
        numbers.append(filing.case.number)
    await s.actions.accept(numbers[0], worker)
    await s.actions.resolve(numbers[0], worker, "已清运", ["photo-after"])
    (media / "wechat").mkdir(parents=True, exist_ok=True)
    (media / "wechat" / "a1.jpg").write_bytes(b"\xff\xd8photo\xff\xd9")
    (media / "telegram-ünïcode.jpg").write_bytes(os.urandom(2048))
    return numbers[0]


async def _snapshot(s: Services, number: str) -> dict[str, Any]:
    async with s.db.session() as session:
        # case_counters is left out: restore raises it to the numbers held (PostgreSQL
        # numbers cases through Redis, so a PostgreSQL backup has no counter rows).
        counts = {t.name: (await session.execute(select(func.count()).select_from(t))).scalar()
                  for t in Base.metadata.sorted_tables if t.name != "case_counters"}
    case = await s.cases.get(number)
    assert case is not None
    return {"counts": counts, "case": s.cases.public_view(case),
            "reporter_sees": await s.cases.get(number, ReporterRef("http", "u1")) is not None}


async def _fresh_postgres(name: str) -> str:
    """An empty database `name` on the test server (created if missing)."""
    admin = POSTGRES_URL.replace("+asyncpg", "").rsplit("/", 1)[0] + "/postgres"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"


async def _target(kind: str, tmp_path: Path) -> str:
    if kind == "postgresql":
        try:
            return await _fresh_postgres("gridbot_guard_restore")
        except (OSError, asyncpg.PostgresError) as exc:
            pytest.skip(f"PostgreSQL not reachable: {exc}")
    return f"sqlite+aiosqlite:///{tmp_path}/restored.db"


def _config_for(url: str, base: Services, tmp_path: Path, model_dir: Path) -> Config:
    return make_config(tmp_path, model_dir, url, base.config.redis.url)


@pytest.mark.parametrize("target", ["sqlite", "postgresql"])
async def test_round_trip_keeps_every_row_and_the_timeline(
    services: Services, tmp_path: Path, model_dir: Path, target: str
) -> None:
    media = tmp_path / "media"
    number = await _fill(services, media)
    before = await _snapshot(services, number)
    archive = tmp_path / "backup.tar.gz"
    manifest = await backup(services.config, archive, media_dir=media)
    assert manifest.revision == head_revision(services.config.database_url)
    assert manifest.tables["cases"]["rows"] == 3
    assert set(manifest.media) == {"wechat/a1.jpg", "telegram-ünïcode.jpg"}

    url = await _target(target, tmp_path)
    restored_media = tmp_path / "restored-media"
    config = _config_for(url, services, tmp_path, model_dir)
    await restore(config, archive, media_dir=restored_media)
    again = await build_services(config, services.cases.clock)
    try:
        after = await _snapshot(again, number)
        assert after == before
        # The engine works on the restored data: new cases get fresh ids and numbers.
        grid = again.grids.locate(*PIN)
        code = next(i.code for i in again.catalogue.items
                    if i.code != before["case"]["item"]["code"] and i.level == "grid")
        filing = await again.cases.file(CaseDraft(text="路灯不亮了", item_code=code,
                                                  grid_code=grid.code, lat=PIN[0], lon=PIN[1]),
                                        ReporterRef("http", "u9"))
        assert not filing.attached and filing.case.id > 3 and filing.case.number != number
    finally:
        await again.close()
    for rel in manifest.media:
        assert (restored_media / rel).read_bytes() == (media / rel).read_bytes()


async def test_refusals(services: Services, tmp_path: Path, model_dir: Path) -> None:
    media = tmp_path / "media"
    await _fill(services, media)
    archive = tmp_path / "b.tar.gz"
    await backup(services.config, archive, media_dir=media)

    # Into a database that holds data: refused, then replaced with --force.
    with pytest.raises(BackupError, match="already holds data"):
        await restore(services.config, archive, media_dir=tmp_path / "m2")
    await restore(services.config, archive, force=True, media_dir=tmp_path / "m2")
    assert len(await services.cases.list()) == 3

    # From a newer gridbot: refused before anything is touched.
    newer = _rewrite(archive, tmp_path / "newer.tar.gz",
                     lambda m: {**m, "revision": "9999_from_the_future"})
    target = make_config(tmp_path / "t", model_dir)
    with pytest.raises(BackupError, match="does not know"):
        await restore(target, newer)
    assert not Path(target.database_url.split("///")[1]).exists()

    # Damaged: a table's bytes no longer match the manifest's checksum.
    damaged = _rewrite(archive, tmp_path / "damaged.tar.gz", lambda m: m,
                       change={"tables/cases.jsonl": b'{"id": 1}\n'})
    with pytest.raises(BackupError, match="checksum"):
        await restore(target, damaged)
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(BackupError, match="not a gridbot backup"):
        await restore(target, tmp_path / "junk.tar.gz")


def _rewrite(src: Path, dst: Path, edit: Any, change: dict[str, bytes] | None = None) -> Path:
    change = change or {}
    with tarfile.open(src, "r:gz") as tin, tarfile.open(dst, "w:gz") as tout:
        for member in tin.getmembers():
            data = tin.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "manifest.json":
                data = json.dumps(edit(json.loads(data))).encode()
            data = change.get(member.name, data)
            member.size = len(data)
            tout.addfile(member, io.BytesIO(data))
    return dst


async def test_cli_backup_and_restore(tmp_path: Path, model_dir: Path) -> None:
    """The commands as an operator runs them, on SQLite, in a process of their own."""
    shutil.copytree(model_dir, tmp_path / "models")
    config = tmp_path / "config.toml"
    config.write_text((PROJECT_ROOT / "config.toml").read_text(encoding="utf-8")
                      .replace('model_dir = "var/models"', f'model_dir = "{tmp_path}/models"')
                      .replace('file = "data/', f'file = "{PROJECT_ROOT}/data/')
                      .replace('gazetteer = "data/', f'gazetteer = "{PROJECT_ROOT}/data/'),
                      encoding="utf-8")
    s = await build_services(make_config(tmp_path, model_dir, f"sqlite+aiosqlite:///{tmp_path}"
                                                              "/var/gridbot.db"))
    number = await _fill(s, tmp_path / "var" / "media")
    await s.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBOT_")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return gridbot(*args, "--config", str(config), env=env)  # in-process

    out = tmp_path / "nightly.tar.gz"
    done = run("backup", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "3 rows" not in done.stdout and "revision" in done.stdout
    refused = run("restore", str(out))
    assert refused.returncode == 1 and "--force" in refused.stderr
    for suffix in ("", "-wal", "-shm"):  # the whole SQLite database, not only its main file
        (tmp_path / "var" / f"gridbot.db{suffix}").unlink(missing_ok=True)
    shutil.rmtree(tmp_path / "var" / "media")
    done = run("restore", str(out))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "var" / "media" / "wechat" / "a1.jpg").exists()
    shown = gridbot("cases", "show", number, "--json", "--config", str(config), env=env)
    assert shown.returncode == 0 and number in shown.stdout, shown.stderr[-800:]
