"""API keys in the database: made and shown once, stored as a hash, revoked at once; accepted
by /api/v1 next to the configured keys; managed with `gridbot apikeys`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.apikeys import ApiKeyError, create_key, list_keys, revoke_key, verify_key
from bot.models import ApiKey
from bot.services import Services
from bot.storage import Database
from shell.app import create_app
from tests.conftest import make_config
from tests.gridbot_cli import gridbot

REMOTE = {"client": ("203.0.113.9", 5000)}
LOCAL = {"client": ("127.0.0.1", 5000)}


async def test_keys_are_shown_once_stored_hashed_and_revoked(services: Services) -> None:
    db = services.db
    info, key = await create_key(db, "fixmystreet")
    assert key.startswith("gbk_") and len(key) >= 40 and info.prefix == key[:12]
    async with db.session() as session:
        row = (await session.execute(select(ApiKey))).scalar_one()
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in (row.name, row.prefix, row.key_hash)  # the key itself is kept nowhere
    _, other = await create_key(db, "web")
    assert other != key

    found = await verify_key(db, key)
    assert found is not None and found.name == "fixmystreet" and found.last_used_at
    for wrong in ("", key[:-1], key + "x", key[:-1] + ("A" if key[-1] != "A" else "B"),
                  "gbk_" + "x" * 300, other[:12] + key[12:], key.upper(),
                  "gbk_\x00" + key[5:], key[:12] + "\x00"):
        assert await verify_key(db, wrong) is None, wrong
    used = found.last_used_at
    # Touched at most once a minute: reads do not each become a write.
    assert (await verify_key(db, key, now=used + timedelta(seconds=30))).last_used_at == used
    later = used + timedelta(minutes=2)
    assert (await verify_key(db, key, now=later)).last_used_at == later

    with pytest.raises(ApiKeyError, match="exists already"):
        await create_key(db, "fixmystreet")
    for bad in ("", "   ", "x" * 65, "tab\there"):
        with pytest.raises(ApiKeyError):
            await create_key(db, bad)
    assert await revoke_key(db, "fixmystreet") and await verify_key(db, key) is None
    assert await revoke_key(db, "fixmystreet")  # twice is harmless
    assert not await revoke_key(db, "nobody")
    assert await verify_key(db, other) is not None
    listed = await list_keys(db)
    assert [(k.name, k.active) for k in listed] == [("fixmystreet", False), ("web", True)]
    assert key not in repr(listed) and row.key_hash not in repr(listed)


async def test_http_api_takes_database_keys_next_to_configured_ones(
    services: Services, tmp_path: Path, model_dir: Path
) -> None:
    # A key for a web front end: the chat and suggest scopes (a new key has open311 only).
    _, key = await create_key(services.db, "widget", scopes=("chat", "suggest"))
    _, gone = await create_key(services.db, "old", scopes=("chat",))
    await revoke_key(services.db, "old")
    body = {"user": "u", "text": "你好"}

    async def status(client, headers: dict[str, str], where: dict) -> int:
        r = await client.post("/api/v1/messages", json=body, headers=headers, scope_base=where)
        return r.status_code

    # No configured keys: loopback needs none (as before); elsewhere a database key works.
    plain = create_app(services.config, services).test_client()
    assert await status(plain, {}, LOCAL) == 200
    assert await status(plain, {}, REMOTE) == 403
    assert await status(plain, {"X-API-Key": key}, REMOTE) == 200
    assert await status(plain, {"X-API-Key": "wrong"}, REMOTE) == 401
    assert await status(plain, {"X-API-Key": gone}, REMOTE) == 401
    r = await plain.post("/api/v1/suggest", json={"text": "路灯不亮"},
                         headers={"X-API-Key": key}, scope_base=REMOTE)
    assert r.status_code == 200  # the suggest API shares the check

    # Configured keys keep working, and database keys work beside them.
    keyed = make_config(tmp_path, model_dir, services.config.database_url,
                        services.config.redis.url, GRIDBOT_API_KEYS="s3cret")
    client = create_app(keyed, services).test_client()
    assert await status(client, {"X-API-Key": "s3cret"}, REMOTE) == 200
    assert await status(client, {"X-API-Key": key}, REMOTE) == 200
    assert await status(client, {"X-API-Key": key}, LOCAL) == 200
    assert await status(client, {}, LOCAL) == 401
    assert await status(client, {}, REMOTE) == 401
    assert await status(client, {"X-API-Key": gone}, REMOTE) == 401


def _gridbot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return gridbot("apikeys", *args, env={**os.environ, **env})  # in-process


def test_cli_adds_lists_and_revokes_keys(tmp_path: Path) -> None:
    env = {"GRIDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/keys.db"}
    added = _gridbot("add", "fixmystreet", env=env)
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert added.stdout == key + "\n" and key.startswith("gbk_")  # alone, for $(…)
    assert "shown only now" in added.stderr
    again = _gridbot("add", "fixmystreet", env=env)
    assert again.returncode == 2 and "exists already" in again.stderr

    listed = _gridbot("list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["prefix"], r["active"]) for r in rows] == [
        ("fixmystreet", key[:12], True)]
    table = _gridbot("list", env=env)
    assert "fixmystreet" in table.stdout
    digest = hashlib.sha256(key.encode()).hexdigest()
    for output in (listed.stdout, table.stdout):
        assert key not in output and digest not in output

    async def check(expect_active: bool) -> None:
        db = Database(env["GRIDBOT_DATABASE_URL"])
        try:
            assert (await verify_key(db, key) is not None) is expect_active
        finally:
            await db.close()

    asyncio.run(check(True))
    revoked = _gridbot("revoke", "fixmystreet", env=env)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    asyncio.run(check(False))
    assert json.loads(_gridbot("list", "--json", env=env).stdout)[0]["active"] is False
    missing = _gridbot("revoke", "nobody", env=env)
    assert missing.returncode == 1 and "nobody" in missing.stderr
