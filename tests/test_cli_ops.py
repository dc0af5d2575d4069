"""shell/cli/ops.py: `gridbot backup`, `restore` and `media sweep` — what each says and its
exit status when it works and when it must not. The config file sits in the test's folder,
so var/media is the test's too."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.cli_env import sqlite_env
from tests.gridbot_cli import gridbot
from tests.templates import DatabaseTemplates

ORPHAN = "a" * 32 + ".jpg"  # named as the mini-program stores its photos


def _config(tmp_path: Path) -> str:
    path = tmp_path / "config.toml"
    path.write_text("# the defaults; paths below this folder\n", encoding="utf-8")
    return str(path)


def test_backup_and_restore_refuse_what_they_cannot_do(tmp_path: Path,
                                                       db_templates: DatabaseTemplates) -> None:
    config = _config(tmp_path)
    empty = {**os.environ, "GRIDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/empty.db"}
    out = tmp_path / "backups" / "gridbot.tar.gz"
    failed = gridbot("backup", "--out", str(out), "--config", config, env=empty)
    assert failed.returncode == 1 and "no gridbot schema" in failed.stderr
    assert not out.exists() and list(out.parent.iterdir()) == []  # no half archive left

    env = sqlite_env(tmp_path, db_templates)
    done = gridbot("backup", "--out", str(out), "--config", config, env=env)
    assert done.returncode == 0, done.stderr
    assert "backed up" in done.stdout and "0 media files" in done.stdout and out.exists()
    # Into a database that holds data: only with --force.
    refused = gridbot("restore", str(out), "--config", config, env=env)
    assert refused.returncode == 1 and "already holds data" in refused.stderr
    garbage = tmp_path / "not-a-backup.tar.gz"
    garbage.write_bytes(b"plain bytes")
    broken = gridbot("restore", str(garbage), "--config", config, env=env)
    assert broken.returncode == 1 and "not a gridbot backup" in broken.stderr


def test_the_media_sweep_removes_nothing_from_a_folder_no_case_refers_to(
        tmp_path: Path, db_templates: DatabaseTemplates) -> None:
    config = _config(tmp_path)
    env = sqlite_env(tmp_path, db_templates)
    folder = tmp_path / "var" / "media" / "mp"
    folder.mkdir(parents=True)
    orphan = folder / ORPHAN
    orphan.write_bytes(b"\xff\xd8\xff photo")
    day_ago = time.time() - 86400
    os.utime(orphan, (day_ago, day_ago))
    (folder / ("b" * 32 + ".jpg")).write_bytes(b"\xff\xd8\xff fresh")  # too young to judge

    # No case refers to any photo: most likely the wrong database, so nothing goes.
    wary = gridbot("media", "sweep", "--config", config, env=env)
    assert wary.returncode == 1 and "nothing removed" in wary.stderr
    assert ORPHAN in wary.stdout and orphan.exists()
    dry = gridbot("media", "sweep", "--dry-run", "--config", config, env=env)
    assert dry.returncode == 0 and "would remove: 1 orphan photo(s)" in dry.stdout
    assert orphan.exists()
    forced = gridbot("media", "sweep", "--force", "--config", config, env=env)
    assert forced.returncode == 0 and "removed: 1 orphan photo(s)" in forced.stdout
    assert not orphan.exists() and len(list(folder.iterdir())) == 1


def test_a_sweep_without_a_database_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "GRIDBOT_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/x",
           "GRIDBOT_REDIS_URL": ""}
    failed = gridbot("media", "sweep", "--dry-run", "--config", _config(tmp_path), env=env)
    assert failed.returncode == 1 and "sweep failed" in failed.stderr
