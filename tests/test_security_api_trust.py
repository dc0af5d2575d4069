"""What the API trusts, on both storage set-ups: a web page cannot use the keyless loopback
API through someone's browser (JSON bodies only, no foreign Origin, no unknown Host), the
form and multipart routes keep their formats, database keys work only within their scopes
(chosen at `gridbot apikeys add --scope`, open311 alone by default; keys that existed before
scopes keep open311 and chat), and an X-API-Key with non-ASCII characters is a JSON 401."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.config import ApiConfig
from bot.services import Services
from shell.app import create_app
from tests.conftest import POSTGRES_URL, _reset_postgres
from tests.gridbot_cli import gridbot

LOCAL = {"client": ("127.0.0.1", 5000)}
REMOTE = {"client": ("203.0.113.9", 5000)}
REPORT = {"user": "web-1", "text": "小区门口路灯不亮，晚上很黑",
          "location": {"lat": 23.0215, "lon": 113.1214}}


def _with_api(services: Services, **api: Any):
    config = services.config.model_copy(update={"api": ApiConfig(**api)})
    return create_app(config, services, background=False).test_client()


async def _json_error(response: Any, status: int) -> str:
    assert response.status_code == status, (response.status_code,
                                            await response.get_data(True))
    assert response.content_type.startswith("application/json")
    body = await response.get_json()
    assert set(body) == {"error"} and body["error"]
    return body["error"]


# -- D: browsers -------------------------------------------------------------------------------

async def test_a_web_page_cannot_file_through_the_keyless_loopback_api(
        services: Services) -> None:
    client = create_app(services.config, services, background=False).test_client()
    raw = json.dumps(REPORT).encode()

    async def post(headers: dict[str, str], body: bytes = raw, path: str = "/api/v1/reports"):
        return await client.post(path, data=body, headers=headers, scope_base=LOCAL)

    # What the penetration test sent: a "simple" cross-site request through loopback.
    attack = {"Content-Type": "text/plain", "Origin": "http://rebind.evil.example",
              "Host": "rebind.evil.example:8080"}
    assert (await post(attack)).status_code in (400, 403)
    # Each part on its own is refused too, in the API's JSON error format.
    for content_type in ("text/plain", "text/plain; charset=utf-8",
                         "application/x-www-form-urlencoded", "multipart/form-data; b=x", ""):
        message = await _json_error(await post({"Content-Type": content_type}), 400)
        assert "JSON" in message
    message = await _json_error(await post({"Content-Type": "application/json",
                                            "Origin": "http://evil.example"}), 403)
    assert "Origin" in message
    await _json_error(await post({"Content-Type": "application/json", "Origin": "null"}), 403)
    for host in ("rebind.evil.example:8080", "rebind.evil.example", "127.0.0.1.evil.example"):
        message = await _json_error(await post({"Content-Type": "application/json",
                                                "Host": host}), 400)
        assert "Host" in message
    # Nothing of it was filed; chat turns and suggestions are guarded the same way.
    assert await services.cases.list() == []
    turn = json.dumps({"user": "web-1", "text": "你好"}).encode()
    assert (await post({"Content-Type": "text/plain"}, turn, "/api/v1/messages")).status_code \
        == 400
    assert (await post({"Content-Type": "text/plain"}, json.dumps({"text": "路灯不亮"}).encode(),
                       "/api/v1/suggest")).status_code == 400
    r = await client.get("/api/v1/grids", headers={"Host": "rebind.evil.example"},
                         scope_base=LOCAL)
    assert r.status_code == 400

    # The real clients: JSON (with a charset, or a +json type), loopback names and
    # addresses with any port, no Origin.
    ok_hosts = ["localhost", "127.0.0.1:8080", "[::1]:8080", "localhost:9999"]
    for n, host in enumerate(ok_hosts):
        body = json.dumps({**REPORT, "user": f"web-{n}"}).encode()
        r = await post({"Content-Type": "application/json; charset=utf-8", "Host": host}, body)
        assert r.status_code == 201, (host, await r.get_data(True))
    r = await client.post("/api/v1/messages", json={"user": "u", "text": "帮助"},
                          scope_base=LOCAL)
    assert r.status_code == 200
    r = await post({"Content-Type": "application/merge-patch+json"},
                   json.dumps({"user": "u", "text": "帮助"}).encode(), "/api/v1/messages")
    assert r.status_code == 200


async def test_allowed_origins_and_hosts_come_from_config(services: Services) -> None:
    client = _with_api(services, allowed_origins=["https://widget.example.org"],
                       allowed_hosts=["gridbot.example.org", ".city.example.net"])

    async def status(**headers: str) -> int:
        r = await client.post("/api/v1/messages", json={"user": "u", "text": "帮助"},
                              headers=headers, scope_base=LOCAL)
        return r.status_code

    assert await status(Origin="https://widget.example.org") == 200
    assert await status(Origin="https://WIDGET.example.org/") == 200
    assert await status(Origin="https://widget.example.org:8443") == 403
    assert await status(Origin="http://widget.example.org") == 403
    assert await status(Host="gridbot.example.org") == 200
    assert await status(Host="gridbot.example.org:443") == 200
    assert await status(Host="api.city.example.net") == 200
    assert await status(Host="city.example.net") == 200
    assert await status(Host="evilcity.example.net") == 400
    assert await status(Host="gridbot.example.org.evil.example") == 400
    assert await status(Host="localhost:8080") == 200  # loopback names always
    # The configured server.host is allowed without listing it.
    hosted = services.config.model_copy(update={
        "server": services.config.server.model_copy(update={"host": "10.20.30.40"})})
    r = await create_app(hosted, services, background=False).test_client().get(
        "/api/v1/grids", headers={"Host": "10.20.30.40:8080"}, scope_base=LOCAL)
    assert r.status_code == 200


async def test_form_and_multipart_routes_keep_their_formats(services: Services) -> None:
    client = create_app(services.config, services, background=False).test_client()
    # Open311 takes form posts by its standard: not touched (its own error list answers).
    r = await client.post("/open311/v2/requests.json",
                          form={"service_code": "C0102", "lat": "23.0215", "long": "113.1214"},
                          headers={"Origin": "http://elsewhere.example"}, scope_base=LOCAL)
    assert r.status_code == 403
    body = await r.get_json()
    assert isinstance(body, list) and "api_key" in body[0]["description"]
    # The mini-program's photo upload is multipart by design: the guard lets it through
    # (here the mini-program is not configured, so its own 404 answers).
    r = await client.post("/api/mp/reports", form={"text": "路灯不亮"},
                          files={"photos": _photo()}, scope_base=LOCAL)
    assert r.status_code == 404 and "not configured" in (await r.get_json())["error"]
    # …but multipart is no way around the JSON rule elsewhere.
    r = await client.post("/api/mp/reports/reply", form={"text": "1"},
                          files={"photos": _photo()}, scope_base=LOCAL)
    assert r.status_code == 400 and "JSON" in (await r.get_json())["error"]
    r = await client.post("/api/v1/messages", form={"user": "u", "text": "帮助"},
                          files={"photos": _photo()}, scope_base=LOCAL)
    assert r.status_code == 400


def _photo() -> Any:
    from quart.datastructures import FileStorage

    return FileStorage(io.BytesIO(b"\xff\xd8\xff\xe0" + b"0" * 64), filename="p.jpg",
                       content_type="image/jpeg")


# -- D: key scopes -----------------------------------------------------------------------------

async def test_database_keys_work_only_within_their_scopes(services: Services) -> None:
    from bot.apikeys import ApiKeyError, create_key, verify_key

    db = services.db
    open311_info, open311_key = await create_key(db, "fixmystreet")  # the default
    assert open311_info.scopes == ("open311",)
    _, chat_key = await create_key(db, "widget", scopes=["chat"])
    _, suggest_key = await create_key(db, "hotline", scopes=["suggest", "chat"])
    _, admin_key = await create_key(db, "ops", scopes=["admin"])
    with pytest.raises(ApiKeyError, match="unknown scope"):
        await create_key(db, "bad", scopes=["everything"])
    with pytest.raises(ApiKeyError, match="at least one"):
        await create_key(db, "none", scopes=[])

    client = create_app(services.config, services, background=False).test_client()

    async def call(key: str, path: str, body: dict[str, Any]) -> Any:
        return await client.post(path, json=body, headers={"X-API-Key": key},
                                 scope_base=REMOTE)

    chat = ("/api/v1/messages", {"user": "u", "text": "帮助"})
    confirm = ("/api/v1/suggest/confirm", {"text": "路灯不亮", "item_code": "C0301"})
    suggest = ("/api/v1/suggest", {"text": "路灯不亮"})
    # An Open311 integrator's key: not the chat API, not the training data.
    message = await _json_error(await call(open311_key, *chat), 403)
    assert "chat" in message and "open311" in message
    await _json_error(await call(open311_key, *confirm), 403)
    await _json_error(await call(open311_key, *suggest), 403)
    # A chat key: chat only.
    assert (await call(chat_key, *chat)).status_code == 200
    await _json_error(await call(chat_key, *confirm), 403)
    # suggest and admin keys reach what they should.
    assert (await call(suggest_key, *suggest)).status_code == 200
    assert (await call(suggest_key, *confirm)).status_code == 201
    for route in (chat, suggest, confirm):
        assert (await call(admin_key, *route)).status_code in (200, 201)
    await _json_error(await call("gbk_not-a-key", *chat), 401)
    # Open311 filing asks for the open311 scope (adapters/open311.py: verify_key's default).
    assert await verify_key(db, open311_key) is not None
    assert await verify_key(db, chat_key) is None
    assert await verify_key(db, admin_key) is not None
    r = await client.post("/open311/v2/requests.json", form={
        "api_key": chat_key, "service_code": "C0102", "lat": "23.0215", "long": "113.1214",
        "description": "路口的污水井盖不见了"}, scope_base=REMOTE)
    assert r.status_code == 403
    r = await client.post("/open311/v2/requests.json", form={
        "api_key": open311_key, "service_code": "C0102", "lat": "23.0215", "long": "113.1214",
        "description": "路口的污水井盖不见了"}, scope_base=REMOTE)
    assert r.status_code == 200 and (await r.get_json())[0]["service_request_id"]


async def test_configured_keys_keep_full_access_and_non_ascii_keys_are_a_json_401(
        services: Services) -> None:
    client = _with_api(services, keys=["s3cret-0123456789"])
    ok = {"X-API-Key": "s3cret-0123456789"}
    for path, body, status in (("/api/v1/messages", {"user": "u", "text": "帮助"}, 200),
                               ("/api/v1/suggest", {"text": "路灯不亮"}, 200),
                               ("/api/v1/suggest/confirm",
                                {"text": "路灯不亮", "item_code": "C0301"}, 201)):
        r = await client.post(path, json=body, headers=ok, scope_base=REMOTE)
        assert r.status_code == status, path
        # A key with characters outside ASCII (UTF-8 bytes, as a header carries them): a
        # clean 401, never a 500.
        for odd in ("s3cret-\u00c3\u00a9", "\u00e9", "gbk_\u00ff" + "x" * 40):
            r = await client.post(path, json=body, headers={"X-API-Key": odd},
                                  scope_base=REMOTE)
            await _json_error(r, 401)
    # Without configured keys the database path answers the same way.
    plain = create_app(services.config, services, background=False).test_client()
    r = await plain.post("/api/v1/messages", json={"user": "u", "text": "帮助"},
                         headers={"X-API-Key": "gbk_\u00c3\u00a9"}, scope_base=REMOTE)
    await _json_error(r, 401)


# -- D: migration and CLI ----------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_keys_from_before_scopes_keep_open311_and_chat(tmp_path: Path,
                                                             backend: str) -> None:
    from bot.apikeys import find_key, hash_key, verify_key
    from bot.storage import Database, upgrade

    if backend == "postgresql":
        try:
            await asyncio.wait_for(_reset_postgres(POSTGRES_URL), 10)
        except Exception as exc:
            pytest.skip(f"PostgreSQL not reachable: {exc}")
        url = POSTGRES_URL
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/keys.db"
    old_key = "gbk_" + "k" * 43
    await upgrade(url, "0008")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO api_keys (name, prefix, key_hash, active, created_at) "
                "VALUES ('legacy', :prefix, :hash, :active, :now)"),
                {"prefix": old_key[:12], "hash": hash_key(old_key), "active": True,
                 "now": datetime(2026, 11, 1)})
    except Exception:
        await engine.dispose()
        raise
    await upgrade(url)
    try:
        async with engine.begin() as conn:
            rows = dict((await conn.execute(text("SELECT name, scopes FROM api_keys"))).all())
            # A row written without scopes after the upgrade gets the least privilege.
            await conn.execute(text(
                "INSERT INTO api_keys (name, prefix, key_hash, active, created_at) "
                "VALUES ('raw', 'gbk_rawrawra', :hash, :active, CURRENT_TIMESTAMP)"),
                {"hash": "0" * 64, "active": True})
            raw = (await conn.execute(text(
                "SELECT scopes FROM api_keys WHERE name = 'raw'"))).scalar()
    finally:
        await engine.dispose()
    assert rows == {"legacy": "open311,chat"} and raw == "open311"
    db = Database(url)
    try:
        assert (await find_key(db, old_key)).scopes == ("open311", "chat")
        assert await verify_key(db, old_key, scope="open311") is not None
        assert await verify_key(db, old_key, scope="chat") is not None
        assert await verify_key(db, old_key, scope="suggest") is None
    finally:
        await db.close()


def _gridbot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return gridbot("apikeys", *args, env={**os.environ, **env})  # in-process


def test_cli_chooses_shows_and_changes_scopes(tmp_path: Path) -> None:
    env = {"GRIDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/keys.db"}
    helped = _gridbot("add", "--help", env=env)
    assert helped.returncode == 0
    assert "--scope" in helped.stdout and "open311 only" in " ".join(helped.stdout.split())
    assert _gridbot("add", "fixmystreet", env=env).returncode == 0
    added = _gridbot("add", "hotline", "--scope", "suggest", "--scope", "chat", env=env)
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip().startswith("gbk_") and "chat, suggest" in added.stderr
    bad = _gridbot("add", "x", "--scope", "everything", env=env)
    assert bad.returncode == 2 and "unknown scope" in bad.stderr
    listed = json.loads(_gridbot("list", "--json", env=env).stdout)
    assert {r["name"]: r["scopes"] for r in listed} == {
        "fixmystreet": ["open311"], "hotline": ["chat", "suggest"]}
    assert "open311" in _gridbot("list", env=env).stdout
    changed = _gridbot("set-scopes", "fixmystreet", "--scope", "open311", "--scope", "chat",
                       env=env)
    assert changed.returncode == 0 and "open311, chat" in changed.stdout
    assert _gridbot("set-scopes", "nobody", "--scope", "chat", env=env).returncode == 1
    assert _gridbot("set-scopes", "hotline", env=env).returncode == 2  # at least one
    listed = json.loads(_gridbot("list", "--json", env=env).stdout)
    assert {r["name"]: r["scopes"] for r in listed}["fixmystreet"] == ["open311", "chat"]
