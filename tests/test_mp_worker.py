"""The mini-program's worker mode: a registered grid worker binds their openid with a
one-time code, reports what they find on patrol (filed with source `patrol`) and closes it
on the spot (即办) with an after-photo — through the real API, on both storages."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from quart.datastructures import FileStorage

from bot.services import Services
from bot.worker_codes import new_worker_code
from bot.workflow import Status
from tests.fixtures.wechat.fake_api import JPEG, FakeWeChat
from tests.test_wechat_mp import PIN, connect, login

GRID = "440604001030103"  # 同济社区第3网格: where PIN is
FIND = "路边墙上贴满了办证小广告，牛皮癣很多"  # 非法小广告: a grid matter, closable on the spot


def _photo() -> FileStorage:
    return FileStorage(stream=io.BytesIO(JPEG), filename="p.jpg", content_type="image/jpeg")


async def _staff(services: Services, grid: str = GRID) -> int:
    worker = await services.teams.add_worker("李巡查", "grid_worker", f"grid:{grid}",
                                             "telegram", "tg-li", services.cases.clock())
    return worker.id


async def _patrol_report(client: Any, auth: dict[str, str]) -> dict[str, Any]:
    r = await client.post("/api/mp/reports", headers=auth, files={"photos": _photo()},
                          form={"text": FIND, "lat": str(PIN[0]), "lon": str(PIN[1]),
                                "confirm": "1"})
    assert r.status_code == 200, await r.get_data(as_text=True)
    body = await r.get_json()
    if body["step"] == "choose_item":
        labels = [b["label"] for b in body["replies"][-1]["buttons"]]
        pick = next(i for i, label in enumerate(labels, 1) if "小广告" in label)
        await client.post("/api/mp/reports/reply", headers=auth, json={"text": str(pick)})
        body = await (await client.post("/api/mp/reports/reply", headers=auth,
                                        json={"text": "确认"})).get_json()
    assert body["case"] is not None, body
    return body["case"]


async def test_a_bound_worker_reports_a_find_and_closes_it_on_the_spot(
        services: Services, fake_api: FakeWeChat, tmp_path: Path) -> None:
    client = await connect(services, fake_api, tmp_path)
    auth = await login(client, "code-worker")
    assert (await (await client.get("/api/mp/worker", headers=auth)).get_json()) == {
        "worker": None}

    code = await new_worker_code(services.db, await _staff(services), services.cases.clock())
    # A Telegram group cannot take a worker's code as its own bind code.
    assert await services.teams.bind(code, "telegram", "-100999", services.cases.clock()) is None
    r = await client.post("/api/mp/worker/bind", headers=auth, json={"code": code.lower()})
    assert r.status_code == 200, await r.get_data(as_text=True)
    assert (await r.get_json())["worker"] == {
        "name": "李巡查", "role": "grid_worker", "area": {"code": GRID, "name": "同济社区第3网格"}}
    assert (await (await client.get("/api/mp/worker", headers=auth)).get_json())["worker"][
        "name"] == "李巡查"
    # The code worked once.
    other = await login(client, "code-other")
    r = await client.post("/api/mp/worker/bind", headers=other, json={"code": code})
    assert r.status_code == 404 and "绑定码" in (await r.get_json())["error"]
    assert (await services.teams.worker("mp", "mp-code-other")) is None

    # What they find is a patrol report, dispatched as usual.
    case = await _patrol_report(client, auth)
    number = case["number"]
    stored = await services.cases.get(number)
    assert stored is not None and stored.source == "patrol"
    assert stored.status == Status.DISPATCHED and stored.handling_level == "grid"

    # 即办 needs the after-photo; a citizen may not close anything.
    url = f"/api/mp/worker/cases/{number}/on-spot"
    r = await client.post(url, headers=auth, files={"before": _photo()}, form={"note": "已清理"})
    assert r.status_code == 400 and "处理后的照片" in (await r.get_json())["error"]
    assert (await client.post(url, headers=auth, form={"note": "已清理"})).status_code == 400
    r = await client.post(url, headers=other, files={"photos": _photo()}, form={"note": "x"})
    assert r.status_code == 403
    r = await client.post(url, headers=auth, files={"photos": _photo()},
                          form={"note": "小广告已铲除"})
    assert r.status_code == 200, await r.get_data(as_text=True)
    assert (await r.get_json())["case"]["status"] == "handled"
    stored = await services.cases.get(number)
    assert stored is not None and stored.status == Status.HANDLED
    assert "on_spot" in [e.action for e in stored.events]
    assert sorted(m.added_by.split(":")[0] for m in stored.media) == ["citizen", "worker"]
    # Twice is refused with the reason, and the photo of the refused request is not kept.
    before = {p.name for p in (tmp_path / "media" / "mp").glob("*")}
    r = await client.post(url, headers=auth, files={"photos": _photo()}, form={"note": "再来"})
    assert r.status_code == 409 and number in (await r.get_json())["error"]
    assert {p.name for p in (tmp_path / "media" / "mp").glob("*")} == before


async def test_a_wrong_or_malformed_code_binds_nobody(
        services: Services, fake_api: FakeWeChat, tmp_path: Path) -> None:
    client = await connect(services, fake_api, tmp_path)
    auth = await login(client, "code-guess")
    for body in ({"code": "DEADBEEF"}, {"code": "x"}, {}):
        r = await client.post("/api/mp/worker/bind", headers=auth, json=body)
        assert r.status_code in (400, 404)
    # A group's bind code is no worker's code either.
    group_code = await services.teams.new_bind_code(GRID)
    r = await client.post("/api/mp/worker/bind", headers=auth, json={"code": group_code})
    assert r.status_code == 404
    assert await services.teams.bind(group_code, "telegram", "-1001", services.cases.clock())
    assert await services.teams.worker("mp", "mp-code-guess") is None
