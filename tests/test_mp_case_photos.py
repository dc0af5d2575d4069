"""The mini-program's case page: the handler's note and after-photos on the 办结 step, served
by signed links (<image> sends no Authorization header) to the case's own reporter only."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

from PIL import Image
from quart.datastructures import FileStorage

from adapters import wechat_mp
from bot.media_store import downloaded_key, open_store
from bot.services import Services
from tests.fixtures.wechat.fake_api import JPEG, FakeWeChat
from tests.test_wechat_mp import (
    PIN,
    connect,
    file_report,
    login,
)


class _AnyInt:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, int)


ANY_INT = _AnyInt()


def _big_photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1200, 900), (30, 120, 60)).save(out, "JPEG")
    return out.getvalue()


async def _report_with_a_photo(client: Any, auth: dict[str, str]) -> dict[str, Any]:
    photo = FileStorage(stream=io.BytesIO(JPEG), filename="a.jpg", content_type="image/jpeg")
    r = await client.post("/api/mp/reports", headers=auth, files={"photos": photo},
                          form={"text": "我家小区门口的井盖不见了，晚上很危险",
                                "lat": str(PIN[0]), "lon": str(PIN[1]), "confirm": "1"})
    body = await r.get_json()
    if body["step"] == "choose_item":
        await client.post("/api/mp/reports/reply", headers=auth, json={"text": "1"})
        body = await (await client.post("/api/mp/reports/reply", headers=auth,
                                        json={"text": "确认"})).get_json()
    assert body["case"] is not None, body
    return body["case"]


async def _handled_with_photos(services: Services, number: str, grid: str,
                               refs: list[str]) -> None:
    worker = await services.teams.add_worker("王网格员", "grid_worker", f"grid:{grid}",
                                             "wecom", "wc-wang", services.cases.clock())
    await services.actions.accept(number, worker)
    await services.actions.resolve(number, worker, "井盖已经换上新的", refs)


async def test_the_after_photo_is_on_the_handled_step_for_the_reporter_only(
        services: Services, fake_api: FakeWeChat, tmp_path: Path) -> None:
    client = await connect(services, fake_api, tmp_path)
    services.config.media.local_dir = str(tmp_path / "store")
    auth = await login(client, "code-owner")
    case = await _report_with_a_photo(client, auth)
    number = case["number"]

    # Before 办结: no photos on any step.
    detail = await (await client.get(f"/api/mp/cases/{number}", headers=auth)).get_json()
    assert not any("photos" in e for e in detail["timeline"])

    # The worker's after-photos, as WeCom's downloads are kept in the store.
    big = _big_photo()
    store = open_store(services.config)
    await store.put(downloaded_key("wecom", "AFTER-1"), big)
    await store.put(downloaded_key("wecom", "AFTER-2"), JPEG)
    await _handled_with_photos(services, number, case["grid"]["code"],
                               ["wecom:AFTER-1", "wecom:AFTER-2"])

    detail = await (await client.get(f"/api/mp/cases/{number}", headers=auth)).get_json()
    [handled] = [e for e in detail["timeline"] if e["status"] == "handled"]
    assert handled["note"] == "已处置：井盖已经换上新的"
    assert [e for e in detail["timeline"] if e.get("photos")] == [handled]
    first, second = handled["photos"]
    assert first["thumb"] == first["full"] + "?size=thumb"
    assert first["full"].startswith("/api/mp/photos/")

    # The link alone opens it (no Authorization header), full-size or as a thumbnail.
    r = await client.get(first["full"])
    assert r.status_code == 200 and r.content_type == "image/jpeg"
    assert await r.get_data() == big
    r = await client.get(first["thumb"])
    thumb = await r.get_data()
    assert r.status_code == 200 and r.content_type == "image/jpeg" and len(thumb) < len(big)
    assert max(Image.open(io.BytesIO(thumb)).size) <= 320
    assert await (await client.get(second["full"])).get_data() == JPEG

    # A forged link, or a session token used as one, opens nothing.
    token = first["full"].removeprefix("/api/mp/photos/")
    for forged in (token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
                   auth["Authorization"].removeprefix("Bearer ")):
        r = await client.get(f"/api/mp/photos/{forged}")
        assert r.status_code == 404
        assert "照片" in (await r.get_json())["error"]

    # The links name no one (they end up in access logs): no openid inside the signed data.
    payload = token.split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert b"code-owner" not in decoded and json.loads(decoded) == [number, ANY_INT]
    # A signed link to the reporter's own photo is not one the server serves: after-photos only.
    mp = wechat_mp.channel_for(services)
    assert mp is not None
    stored = await services.cases.get(number)
    assert stored is not None
    [own] = [m for m in stored.media if m.added_by == "citizen"]
    assert (await client.get(mp.photo_path(number, own.id))).status_code == 404

    # Another user gets neither the case nor links to its photos.
    stranger = await login(client, "code-stranger")
    assert (await client.get(f"/api/mp/cases/{number}", headers=stranger)).status_code == 404


async def test_a_follower_sees_the_handled_note_but_no_photos(
        services: Services, fake_api: FakeWeChat, tmp_path: Path) -> None:
    client = await connect(services, fake_api, tmp_path)
    services.config.media.local_dir = str(tmp_path / "store")
    owner = await login(client, "code-owner2")
    case = await file_report(client, owner)
    number = case["number"]
    # A neighbour's report of the same thing: 「是这个吗？」 → follow.
    neighbour = await login(client, "code-neighbour")
    r = await client.post("/api/mp/reports", headers=neighbour, json={
        "text": "我家小区门口的井盖不见了，晚上很危险",
        "location": {"lat": case["location"]["lat"], "lon": case["location"]["lon"],
                     "coord": "wgs84"}})
    if (await r.get_json())["step"] == "choose_item":
        await client.post("/api/mp/reports/reply", headers=neighbour, json={"text": "1"})
    r = await client.post("/api/mp/reports/follow", headers=neighbour, json={"number": number})
    assert r.status_code == 200, await r.get_data(as_text=True)

    await open_store(services.config).put(downloaded_key("wecom", "AFTER-3"), JPEG)
    await _handled_with_photos(services, number, case["grid"]["code"], ["wecom:AFTER-3"])
    theirs = await (await client.get(f"/api/mp/cases/{number}", headers=neighbour)).get_json()
    assert theirs["own"] is False
    assert not any("photos" in e for e in theirs["timeline"])
    assert any(e["status"] == "handled" for e in theirs["timeline"])
    mine = await (await client.get(f"/api/mp/cases/{number}", headers=owner)).get_json()
    [handled] = [e for e in mine["timeline"] if e["status"] == "handled"]
    assert len(handled["photos"]) == 1
    link: Any = handled["photos"][0]["full"]
    assert (await client.get(link)).status_code == 200
