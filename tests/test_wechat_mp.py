"""The mini-program API: code2session login through wechatpy against the local fake WeChat
API, signed session tokens, reports through the chat dialog, own cases only, ratings."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapters import wechat_mp
from bot.cases import ReporterRef
from bot.config import PROJECT_ROOT, WechatConfig
from bot.coords import wgs84_to_gcj02
from bot.services import Services
from bot.workflow import Status
from shell.app import create_app
from tests.fixtures.wechat.fake_api import JPEG, PNG, FakeWeChat

PIN = wgs84_to_gcj02(23.0215, 113.1214)  # 同济社区第3网格, as wx.getLocation gives it


async def connect(services: Services, fake: FakeWeChat, tmp_path: Path) -> Any:
    services.config.wechat = WechatConfig(
        mp_app_id="wxmp0123456789ab", mp_app_secret="mp-secret", api_base_url=fake.base_url,
        session_secret="test-session-secret", mp_subscribe_template_id="SUB-status")
    await wechat_mp.start(services)
    mp = wechat_mp.channel_for(services)
    assert mp is not None
    mp.media_dir = tmp_path / "media"
    return create_app(services.config, services, background=False).test_client()


async def login(client: Any, code: str) -> dict[str, str]:
    r = await client.post("/api/mp/login", json={"code": code})
    assert r.status_code == 200, await r.get_data(as_text=True)
    return {"Authorization": f"Bearer {(await r.get_json())['token']}"}


async def file_report(client: Any, auth: dict[str, str]) -> dict[str, Any]:
    r = await client.post("/api/mp/reports", headers=auth, json={
        "text": "我家小区门口的井盖不见了，晚上很危险",
        "location": {"lat": PIN[0], "lon": PIN[1]}, "confirm": True})
    assert r.status_code == 200
    body = await r.get_json()
    if body["step"] == "choose_item":  # the model was unsure: pick the first suggestion
        assert [b["value"] for b in body["replies"][-1]["buttons"]][:1] == ["1"]
        r = await client.post("/api/mp/reports/reply", headers=auth, json={"text": "1"})
        body = await r.get_json()
        assert body["step"] == "confirm"
        r = await client.post("/api/mp/reports/reply", headers=auth, json={"text": "确认"})
        body = await r.get_json()
    assert body["case"] is not None and body["step"] is None, body
    return body["case"]


async def test_login_report_list_show(services: Services, fake_api: FakeWeChat,
                                      tmp_path: Path) -> None:
    client = await connect(services, fake_api, tmp_path)
    auth = await login(client, "code-alice")
    assert fake_api.sent("/sns/jscode2session")[0].query["js_code"] == "code-alice"
    case = await file_report(client, auth)
    assert case["grid"]["code"] == "440604001030103"
    stored = await services.cases.get(case["number"], ReporterRef("mp", "mp-code-alice"))
    assert stored is not None and stored.status == Status.DISPATCHED

    listed = await (await client.get("/api/mp/cases", headers=auth)).get_json()
    assert [c["number"] for c in listed["cases"]] == [case["number"]]
    r = await client.get(f"/api/mp/cases/{case['number']}", headers=auth)
    view = await r.get_json()
    assert [e["status"] for e in view["timeline"]] == ["reported", "filed", "dispatched"]
    assert "mp-code-alice" not in json.dumps(view)

    other = await login(client, "code-bob")  # someone else's case is not there for Bob
    assert (await client.get(f"/api/mp/cases/{case['number']}", headers=other)).status_code \
        == 404
    assert (await (await client.get("/api/mp/cases", headers=other)).get_json())["cases"] == []


async def test_tokens_are_required_signed_and_expire(
    services: Services, fake_api: FakeWeChat, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await connect(services, fake_api, tmp_path)
    r = await client.post("/api/mp/login", json={"code": "bad-code"})
    assert r.status_code == 401 and "40029" in (await r.get_json())["error"]
    assert (await client.post("/api/mp/login", json={})).status_code == 400
    auth = await login(client, "code-carol")
    token = auth["Authorization"].split()[1]
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": token},
                    {"Authorization": f"Bearer {token[:-2]}xx"}):
        assert (await client.get("/api/mp/cases", headers=headers)).status_code == 401
    mp = wechat_mp.channel_for(services)
    real = time.time
    with monkeypatch.context() as m:  # a token made eight days ago (the TTL is seven)
        m.setattr(time, "time", lambda: real() - 8 * 24 * 3600)
        old = mp.token_for("mp-code-carol")
    r = await client.get("/api/mp/cases", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 401
    assert (await client.get("/api/mp/cases", headers=auth)).status_code == 200


async def test_report_with_photos_by_multipart(services: Services, fake_api: FakeWeChat,
                                               tmp_path: Path) -> None:
    from quart.datastructures import FileStorage

    client = await connect(services, fake_api, tmp_path)
    auth = await login(client, "code-dave")
    photo = FileStorage(stream=__import__("io").BytesIO(JPEG), filename="a.jpg",
                        content_type="image/jpeg")
    r = await client.post("/api/mp/reports", headers=auth, files={"photos": photo},
                          form={"text": "季华五路18号门口路灯不亮，晚上很黑",
                                "lat": str(PIN[0]), "lon": str(PIN[1]), "confirm": "1"})
    assert r.status_code == 200, await r.get_data(as_text=True)
    body = await r.get_json()
    if body["step"] == "choose_item":
        await client.post("/api/mp/reports/reply", headers=auth, json={"text": "1"})
        body = await (await client.post("/api/mp/reports/reply", headers=auth,
                                        json={"text": "确认"})).get_json()
    case = await services.cases.get(body["case"]["number"])
    [media] = case.media
    assert (tmp_path / media.ref.removeprefix("var/")).read_bytes() == JPEG
    bad = FileStorage(stream=__import__("io").BytesIO(b"MZ"), filename="x.exe",
                      content_type="application/octet-stream")
    r = await client.post("/api/mp/reports", headers=auth, files={"photos": bad},
                          form={"text": "路灯不亮"})
    assert r.status_code == 400


async def test_rating_own_closed_case(services: Services, fake_api: FakeWeChat,
                                      tmp_path: Path) -> None:
    client = await connect(services, fake_api, tmp_path)
    auth = await login(client, "code-erin")
    number = (await file_report(client, auth))["number"]
    url = f"/api/mp/cases/{number}/rating"
    assert (await client.post(url, headers=auth, json={"score": 5})).status_code == 409
    for status in (Status.HANDLING, Status.HANDLED, Status.VERIFIED, Status.CLOSED):
        await services.cases.transition(number, status, "test")
    assert (await client.post(url, headers=auth, json={"score": 9})).status_code == 400
    other = await login(client, "code-frank")
    assert (await client.post(url, headers=other, json={"score": 1})).status_code == 404
    r = await client.post(url, headers=auth, json={"score": 5, "note": "很快"})
    assert r.status_code == 200 and (await r.get_json())["rating"] == 5


async def test_status_updates_by_subscribe_message_only_with_a_grant(
    services: Services, fake_api: FakeWeChat, tmp_path: Path
) -> None:
    client = await connect(services, fake_api, tmp_path)
    auth = await login(client, "code-gina")
    number = (await file_report(client, auth))["number"]
    await services.cases.transition(number, Status.HANDLING, "test")
    assert await services.outbox.run_once() == 0  # no grant: nothing pushed
    r = await client.post("/api/mp/subscriptions", headers=auth,
                          json={"template_id": "SUB-status", "accepted": 1})
    assert (await r.get_json())["grants"] == 1
    await services.cases.transition(number, Status.HANDLED, "test")
    assert await services.outbox.run_once() == 1
    [sent] = fake_api.sent("/cgi-bin/message/subscribe/send")
    assert sent.body["touser"] == "mp-code-gina" and sent.body["template_id"] == "SUB-status"
    assert sent.body["data"]["character_string1"]["value"] == number


async def test_openapi_document_covers_the_routes(services: Services, fake_api: FakeWeChat,
                                                  tmp_path: Path) -> None:
    client = await connect(services, fake_api, tmp_path)
    r = await client.get("/api/openapi.json")
    doc = json.loads(await r.get_data(as_text=True))
    assert doc["openapi"].startswith("3.")
    app = create_app(services.config, services, background=False)
    routes = {re.sub(r"<(\w+)>", r"{\1}", rule.rule) for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/api/mp/")}
    assert routes == set(doc["paths"])
    for path_item in doc["paths"].values():  # every $ref resolves
        for ref in _refs(path_item):
            assert ref.removeprefix("#/components/schemas/") in doc["components"]["schemas"]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_gridbot_qrcode(fake_api: FakeWeChat, tmp_path: Path) -> None:
    from shell.cli import app

    out = tmp_path / "tongji.png"
    env = {"GRIDBOT_WECHAT_MP_APP_ID": "wxmp0123456789ab",
           "GRIDBOT_WECHAT_MP_APP_SECRET": "mp-secret",
           "GRIDBOT_WECHAT_API_BASE_URL": fake_api.base_url, "GRIDBOT_REDIS_URL": ""}
    result = CliRunner().invoke(app, ["qrcode", "--community", "440604001030", "--out",
                                      str(out), "--config", str(PROJECT_ROOT / "config.toml")],
                                env=env)
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == PNG
    [call] = fake_api.sent("/wxa/getwxacodeunlimit")
    assert call.body["scene"] == "440604001030"


async def test_report_by_address_in_one_call(services: Services, fake_api: FakeWeChat,
                                             tmp_path: Path) -> None:
    client = await connect(services, fake_api, tmp_path)
    auth = await login(client, "code-hana")
    r = await client.post("/api/mp/reports", headers=auth, json={
        "text": "门口路灯不亮，晚上很黑", "address": "季华五路18号", "confirm": True})
    body = await r.get_json()
    if body["step"] == "choose_item":
        await client.post("/api/mp/reports/reply", headers=auth, json={"text": "1"})
        body = await (await client.post("/api/mp/reports/reply", headers=auth,
                                        json={"text": "确认"})).get_json()
    assert body["case"]["grid"]["name"] == "澜石社区第1网格", body
    r = await client.post("/api/mp/reports", headers=auth, json={"text": ""})
    assert r.status_code == 400 and "text" in (await r.get_json())["error"]


async def _waiting_report(client: Any, auth: dict[str, str], text: str) -> dict[str, Any]:
    """A report brought to its confirmation (the first suggestion when the model asks)."""
    r = await client.post("/api/mp/reports", headers=auth, json={
        "text": text, "location": {"lat": PIN[0], "lon": PIN[1]}})
    body = await r.get_json()
    if body["step"] == "choose_item":
        body = await (await client.post("/api/mp/reports/reply", headers=auth,
                                        json={"text": "1"})).get_json()
    assert body["step"] == "confirm", body
    return body


async def test_nearby_open_cases_before_filing_and_follow_one(
    services: Services, fake_api: FakeWeChat, tmp_path: Path
) -> None:
    client = await connect(services, fake_api, tmp_path)
    alice = await login(client, "code-ivy")
    case = await file_report(client, alice)
    bob = await login(client, "code-jack")
    # Nothing waits for Bob's confirmation yet: nothing to compare with.
    r = await client.get("/api/mp/reports/nearby", headers=bob)
    assert (await r.get_json())["cases"] == []
    await _waiting_report(client, bob, "这里有个井盖没了，很危险")
    near = (await (await client.get("/api/mp/reports/nearby", headers=bob)).get_json())["cases"]
    assert [c["number"] for c in near] == [case["number"]]
    assert near[0]["distance_m"] == 0 and near[0]["item"]["code"] == case["item"]["code"]
    # Public words only: not Alice's text, address or identity.
    assert "晚上很危险" not in json.dumps(near, ensure_ascii=False)
    assert "mp-code-ivy" not in json.dumps(near) and "address" not in near[0]

    r = await client.post("/api/mp/reports/follow", headers=bob, json={"number": "nope"})
    assert r.status_code == 409
    r = await client.post("/api/mp/reports/follow", headers=bob,
                          json={"number": case["number"]})
    assert r.status_code == 200, await r.get_data(as_text=True)
    body = await r.get_json()
    assert body["followed"] and body["case"]["own"] is False and body["case"]["text"] is None
    assert await services.cases.list() and len(await services.cases.list()) == 1
    mine = (await (await client.get("/api/mp/cases", headers=bob)).get_json())["cases"]
    assert [(c["number"], c["own"]) for c in mine] == [(case["number"], False)]
    # The report is gone from the dialog: following again has nothing to join.
    r = await client.post("/api/mp/reports/follow", headers=bob,
                          json={"number": case["number"]})
    assert r.status_code == 409
    # Bob may not rate Alice's case once closed.
    for status in (Status.HANDLING, Status.HANDLED, Status.VERIFIED, Status.CLOSED):
        await services.cases.transition(case["number"], status, "test")
    r = await client.post(f"/api/mp/cases/{case['number']}/rating", headers=bob,
                          json={"score": 1})
    assert r.status_code == 404  # (only the first reporter rates)
    # A closed case is no longer offered.
    await _waiting_report(client, bob, "井盖又没了")
    near = (await (await client.get("/api/mp/reports/nearby", headers=bob)).get_json())["cases"]
    assert near == []


async def test_more_photos_for_the_report_under_way(services: Services, fake_api: FakeWeChat,
                                                    tmp_path: Path) -> None:
    from quart.datastructures import FileStorage

    def photo() -> FileStorage:
        return FileStorage(stream=io.BytesIO(JPEG), filename="b.jpg", content_type="image/jpeg")

    client = await connect(services, fake_api, tmp_path)
    auth = await login(client, "code-kim")
    r = await client.post("/api/mp/reports/photos", headers=auth, files={"photos": photo()})
    assert r.status_code == 409  # no report under way
    await _waiting_report(client, auth, "路边的井盖不见了")
    r = await client.post("/api/mp/reports/photos", headers=auth, files={"photos": photo()})
    assert r.status_code == 200 and (await r.get_json()) == {"photos": 1, "step": "confirm"}
    r = await client.post("/api/mp/reports/reply", headers=auth, json={"text": "确认"})
    number = (await r.get_json())["case"]["number"]
    stored = await services.cases.get(number)
    assert stored is not None and len(stored.media) == 1


async def test_community_from_the_qr_scene(services: Services, fake_api: FakeWeChat,
                                           tmp_path: Path) -> None:
    client = await connect(services, fake_api, tmp_path)
    auth = await login(client, "code-lee")
    r = await client.get("/api/mp/communities/4406040010301", headers=auth)
    body = await r.get_json()
    assert body["name"] == "同济社区" and body["level"] == "community"
    lat, lon = body["center"]["lat"], body["center"]["lon"]
    area = services.grids.get(services.grids.locate(lat, lon, "gcj02").code)  # type: ignore[union-attr]
    assert area is not None and area.parent == "4406040010301"
    assert (await client.get("/api/mp/communities/nope", headers=auth)).status_code == 404
    assert (await client.get("/api/mp/communities/4406040010301")).status_code == 401
