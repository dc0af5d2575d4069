"""The HTTP chat API, through Quart's test client and through a real server process."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.config import PROJECT_ROOT
from bot.services import Services
from shell.app import create_app
from tests.conftest import make_config
from tests.gridbot_cli import gridbot as cli


async def _post(client, body: dict, headers: dict | None = None):
    return await client.post("/api/v1/messages", json=body, headers=headers or {},
                             scope_base={"client": ("127.0.0.1", 5000)})


async def test_full_flow_over_http(services: Services) -> None:
    app = create_app(services.config, services)
    client = app.test_client()
    r = await _post(client, {"user": "web-1", "text": "季华五路18号门口路灯不亮，晚上很黑"})
    assert r.status_code == 200
    body = await r.get_json()
    assert body["case"] is None and body["replies"]
    if "回复序号" in body["replies"][0]["text"]:
        assert [b["value"] for b in body["replies"][0]["buttons"]] == ["1", "2", "3", "换一个"]
        body = await (await _post(client, {"user": "web-1", "text": "1"})).get_json()
    assert "请确认" in body["replies"][0]["text"]
    body = await (await _post(client, {"user": "web-1", "text": "确认"})).get_json()
    case = body["case"]
    assert case["number"] and case["grid"]["name"] == "澜石社区第1网格"
    assert "web-1" not in json.dumps(body, ensure_ascii=False)

    r = await client.get(f"/api/v1/cases/{case['number']}?user=web-1",
                         scope_base={"client": ("127.0.0.1", 5000)})
    assert r.status_code == 200
    view = await r.get_json()
    assert [e["status"] for e in view["timeline"]] == ["reported", "filed", "dispatched"]
    for other in ("?user=web-2", ""):
        r = await client.get(f"/api/v1/cases/{case['number']}{other}",
                             scope_base={"client": ("127.0.0.1", 5000)})
        assert r.status_code == 404


async def test_location_message_and_grids(services: Services) -> None:
    client = create_app(services.config, services).test_client()
    r = await _post(client, {"user": "web-3", "location": {"lat": 23.0215, "lon": 113.1214}})
    assert "位置已收到" in (await r.get_json())["replies"][0]["text"]
    r = await client.get("/api/v1/grids", scope_base={"client": ("127.0.0.1", 5000)})
    fc = await r.get_json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) >= 60


@pytest.mark.parametrize(("body", "status", "fragment"), [
    ({"text": "井盖丢了"}, 400, "user"),
    ({"user": "u", "text": "x", "admin": True}, 400, "admin"),
    ({"user": "u"}, 400, "send text"),
    ({"user": "u", "location": {"lat": 123, "lon": 113}}, 400, "lat"),
    ({"user": "u", "location": {"lat": 23, "lon": 113, "coord": "bd09"}}, 400, "coord"),
    ({"user": "u" * 500, "text": "x"}, 400, "user"),
])
async def test_bad_requests_get_clear_errors(services: Services, body: dict, status: int,
                                             fragment: str) -> None:
    client = create_app(services.config, services).test_client()
    r = await _post(client, body)
    assert r.status_code == status
    assert fragment in (await r.get_json())["error"]


async def test_malformed_json_and_oversized_body(services: Services) -> None:
    client = create_app(services.config, services).test_client()
    r = await client.post("/api/v1/messages", data=b"{nope", headers={
        "Content-Type": "application/json"}, scope_base={"client": ("127.0.0.1", 5000)})
    assert r.status_code == 400 and "JSON" in (await r.get_json())["error"]
    big = json.dumps({"user": "u", "text": "井" * 2_000_000})
    r = await client.post("/api/v1/messages", data=big, headers={
        "Content-Type": "application/json"}, scope_base={"client": ("127.0.0.1", 5000)})
    assert r.status_code == 413


async def test_retried_message_id_is_processed_once(services: Services) -> None:
    client = create_app(services.config, services).test_client()
    body = {"user": "web-4", "text": "楼道里有人给电动车充电", "message_id": "m-1"}
    assert (await _post(client, body)).status_code == 200
    assert (await _post(client, body)).status_code == 409


async def test_api_keys_when_configured_and_loopback_only_without(
    services: Services, tmp_path: Path, model_dir: Path
) -> None:
    open_app = create_app(services.config, services).test_client()
    r = await open_app.post("/api/v1/messages", json={"user": "u", "text": "你好"},
                            scope_base={"client": ("203.0.113.9", 5000)})
    assert r.status_code == 403
    keyed = make_config(tmp_path, model_dir, services.config.database_url,
                        services.config.redis.url, GRIDBOT_API_KEYS="s3cret")
    client = create_app(keyed, services).test_client()
    remote = {"client": ("203.0.113.9", 5000)}
    r = await client.post("/api/v1/messages", json={"user": "u", "text": "你好"},
                          scope_base=remote)
    assert r.status_code == 401
    r = await client.post("/api/v1/messages", json={"user": "u", "text": "你好"},
                          headers={"X-API-Key": "wrong"}, scope_base=remote)
    assert r.status_code == 401
    r = await client.post("/api/v1/messages", json={"user": "u", "text": "你好"},
                          headers={"X-API-Key": "s3cret"}, scope_base=remote)
    assert r.status_code == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_and_chat_as_a_newcomer_would(tmp_path: Path, model_dir: Path) -> None:
    """`gridbot serve` in one process, `gridbot chat` with piped stdin in another."""
    port = _free_port()
    gridbot = str(Path(sys.executable).parent / "gridbot")
    env = {**os.environ,
           "GRIDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/demo.db",
           "GRIDBOT_REDIS_URL": "",
           "GRIDBOT_NLP_MODEL_DIR": str(make_config(tmp_path, model_dir).nlp.model_dir)}
    server = subprocess.Popen([gridbot, "serve", "--port", str(port)], env=env,
                              cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=1) as http:  # one client: each builds an SSL context
            while time.monotonic() < deadline:
                try:
                    if http.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.3)
            else:
                pytest.fail("server did not start: " + server.stdout.read1().decode())
        # "1" picks the first suggestion if the bot offers a choice (harmless otherwise).
        lines = ["我家小区门口的井盖不见了，晚上很危险", "1", "/loc 23.0215,113.1214", "确认",
                 "我的案件"]
        script = "\n".join(lines) + "\n"
        chat = subprocess.run([gridbot, "chat", "--url", f"http://127.0.0.1:{port}",
                               "--user", "newcomer"], input=script, capture_output=True,
                              text=True, env=env, timeout=60)
        assert chat.returncode == 0, chat.stderr
        out = chat.stdout
        assert "案件编号" in out and "同济社区第3网格" in out, out
        number = out.split("案件编号：")[1].split()[0]
        # What the server filed, read back by the CLI (in-process: no third interpreter).
        listed = cli("cases", "show", number, "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        view = json.loads(listed.stdout)
        assert view["number"] == number and view["status"] == "dispatched"
        listed = cli("cases", "list", "--json", env=env)
        assert [c["number"] for c in json.loads(listed.stdout)] == [number]
    finally:
        server.terminate()
        server.wait(timeout=20)


def _listening_sockets(port: int) -> int:
    """IPv4 sockets in LISTEN on `port` on this machine (Linux /proc/net/tcp)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines
               if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A")


@pytest.mark.parametrize("services", ["postgres+redis"], indirect=True)
async def test_serve_with_two_workers_gives_each_its_own_socket(services: Services,
                                                                 tmp_path: Path) -> None:
    """`serve --workers 2`: each worker listens on a socket of its own (SO_REUSEPORT), so
    the kernel spreads new connections over both instead of one worker taking a burst;
    every connection is answered, and SIGTERM to the parent stops the workers cleanly."""
    port = _free_port()
    gridbot = str(Path(sys.executable).parent / "gridbot")
    env = {**os.environ, "GRIDBOT_DATABASE_URL": services.config.database_url,
           "GRIDBOT_REDIS_URL": services.config.redis.url,
           "GRIDBOT_NLP_MODEL_DIR": str(services.config.nlp.model_dir)}
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen([gridbot, "serve", "--port", str(port), "--workers", "2"],
                              env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while _listening_sockets(port) < 2 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert _listening_sockets(port) == 2, (tmp_path / "serve.log").read_text()
        clients = [httpx.AsyncClient() for _ in range(16)]  # a connection each, at once
        try:
            answers = await asyncio.gather(*(c.get(f"http://127.0.0.1:{port}/healthz")
                                             for c in clients))
        finally:
            for c in clients:
                await c.aclose()
        assert [a.status_code for a in answers] == [200] * 16
    finally:
        server.terminate()
        code = server.wait(timeout=30)
        log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()
    assert _listening_sockets(port) == 0


def test_serve_refuses_a_public_address_without_keys(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import shell.server

    def started(*_: object) -> None:  # past the check: fail here rather than serve
        raise AssertionError("serve went on to start on 0.0.0.0 without keys")

    monkeypatch.setattr(shell.server, "upgrade_sync", started)
    monkeypatch.setattr(shell.server, "serve", started)
    # In-process: the refusal is a config check, no server process is needed to see it.
    result = cli("serve", "--host", "0.0.0.0", "--port", "1",
                 env={**os.environ, "GRIDBOT_API_KEYS": ""})
    assert result.returncode == 2, result.stderr
    assert "api.keys" in result.stderr.replace("\n", "")


async def test_one_shot_reports(services: Services) -> None:
    client = create_app(services.config, services).test_client()
    local = {"client": ("127.0.0.1", 5000)}

    async def report(body: dict):
        r = await client.post("/api/v1/reports", json=body, scope_base=local)
        return r.status_code, await r.get_json()

    status, body = await report({"user": "form-1", "text": "小区门口路灯不亮，晚上很黑",
                                 "location": {"lat": 23.0215, "lon": 113.1214},
                                 "report_id": "r-1"})
    assert status == 201 and body["case"]["grid"]["name"] == "同济社区第3网格"
    assert len(body["suggestions"]) == 3 and body["attached"] is False
    assert (await report({"user": "form-1", "text": "小区门口路灯不亮",
                          "location": {"lat": 23.0215, "lon": 113.1214},
                          "report_id": "r-1"}))[0] == 409
    status, body = await report({"user": "form-2", "text": "门口有人乱摆摊",
                                 "address": "季华五路18号", "item_code": "E0501"})
    assert status == 201 and body["case"]["item"]["code"] == "E0501"
    assert body["case"]["address"] == "季华五路18号"
    status, body = await report({"user": "form-3", "text": "路灯坏了", "report_id": "r-3"})
    assert status == 422 and "位置" in body["error"]
    status, _ = await report({"user": "form-3", "text": "季华五路18号路灯坏了",
                              "report_id": "r-3"})
    assert status == 201  # the rejected id was not burned
    assert (await report({"user": "x", "text": "hello", "address": "季华五路18号"}))[0] == 422
    status, body = await report({"user": "x", "text": "路灯坏了", "address": "季华五路18号",
                                 "item_code": "Z9999"})
    assert status == 422 and "Z9999" in body["error"]
    status, body = await report({"user": "x", "text": "路灯坏了",
                                 "location": {"lat": 39.9, "lon": 116.4}})
    assert status == 422 and "网格范围" in body["error"]
