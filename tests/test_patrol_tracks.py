"""Patrol tracks on staff maps, and nowhere else: the console's case page carries the track
of the patrol a case was found on and the dashboard today's tracks, for those who supervise
workers (a grid leader within their area only); the public map, its case pages and Open311
never show a worker's position or name. Through the real app, on both storages."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from bot.cases import CaseDraft, ReporterRef
from bot.services import Services
from bot.staff import add_user
from shell.app import create_app
from tests.test_console import PASSWORD, Console

GRID = "440604001030103"  # 同济社区第3网格
OTHER_STREET = "street:440604002"  # 张槎街道
# An odd walk (its digits are nowhere else) through the grid, and a find on it.
TRACK = [(23.021371, 113.121447), (23.020293, 113.121469), (23.019217, 113.121481),
         (23.018139, 113.121493)]
FIND = (23.0197, 113.1212)
WORKER_NAME = "巡查员甄一"


async def _patrol_and_find(s: Services) -> str:
    """A worker patrols with a live track and reports a find on the way: its number."""
    worker = await s.teams.add_worker(WORKER_NAME, "grid_worker", f"grid:{GRID}", "telegram",
                                      "777001", s.cases.clock())
    await s.patrols.start(worker, s.cases.clock())
    for lat, lon in TRACK[:2]:
        await s.patrols.add_point(worker, lat, lon, s.cases.clock())
    item = next(i for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    filing = await s.cases.file(CaseDraft(
        text="巡查发现路边堆放建筑垃圾", item_code=item.code, grid_code=GRID, lat=FIND[0],
        lon=FIND[1], source="patrol"), ReporterRef("telegram", "777001"),
        attach_duplicates=False)
    for lat, lon in TRACK[2:]:
        await s.patrols.add_point(worker, lat, lon, s.cases.clock() + timedelta(minutes=2))
    await s.patrols.end(worker, s.cases.clock() + timedelta(minutes=5))
    return filing.case.number


def _coordinates() -> list[str]:
    return [f"{lat:.4f}" for lat, _ in TRACK] + [f"{lon:.4f}" for _, lon in TRACK]


@pytest.fixture
async def app(services: Services) -> Any:
    db, grids = services.db, services.grids
    await add_user(db, "sup", PASSWORD, "supervisor", grids=grids)
    await add_user(db, "op", PASSWORD, "operator", grids=grids)
    await add_user(db, "leader", PASSWORD, "grid_leader", f"grid:{GRID}", grids=grids)
    await add_user(db, "elsewhere", PASSWORD, "grid_leader", OTHER_STREET, grids=grids)
    return create_app(services.config, services, background=False)


async def _json(console: Console, path: str) -> Any:
    response = await console.get(path)
    assert response.status_code == 200, path
    return await response.get_json()


async def test_supervisors_see_tracks_on_the_case_page_and_the_dashboard(
        services: Services, app: Any) -> None:
    number = await _patrol_and_find(services)
    sup = Console(app)
    assert (await sup.login("sup")).status_code == 302
    case = await _json(sup, f"/console/api/cases/{number}")
    track = case["track"]
    assert track["worker"] == WORKER_NAME and track["grid"] == GRID
    assert track["points"] == [[lat, lon] for lat, lon in TRACK]
    page = await (await sup.get(f"/console/cases/{number}")).get_data(True)
    assert 'id="case-track"' in page and "巡查轨迹" in page
    today = await _json(sup, "/console/dashboard/patrols.json")
    assert [p["worker"] for p in today["patrols"]] == [WORKER_NAME]
    assert today["patrols"][0]["km"] > 0.3

    # The grid's own leader sees it; a leader of another street, and the hotline operator
    # (who sees every case, but supervises no worker), do not.
    leader = Console(app, "10.1.2.4")
    await leader.login("leader")
    assert len((await _json(leader, "/console/dashboard/patrols.json"))["patrols"]) == 1
    assert (await _json(leader, f"/console/api/cases/{number}"))["track"] is not None
    elsewhere = Console(app, "10.1.2.5")
    await elsewhere.login("elsewhere")
    assert (await _json(elsewhere, "/console/dashboard/patrols.json"))["patrols"] == []
    op = Console(app, "10.1.2.6")
    await op.login("op")
    assert (await _json(op, f"/console/api/cases/{number}"))["track"] is None
    assert (await _json(op, "/console/dashboard/patrols.json"))["patrols"] == []
    assert 'id="case-track"' not in await (await op.get(f"/console/cases/{number}")).get_data(
        True)
    # Nobody logged in: no tracks.
    anonymous = Console(app, "10.1.2.7")
    assert (await anonymous.get("/console/dashboard/patrols.json")).status_code in (302, 401)


async def test_workers_positions_are_never_public(services: Services, app: Any) -> None:
    number = await _patrol_and_find(services)
    client = app.test_client()
    bodies = []
    for path in ("/", f"/?grid={GRID}", f"/cases/{number}", "/open311/v2/requests.json",
                 "/open311/v2/requests.xml", f"/open311/v2/requests/{number}.json",
                 f"/open311/v2/requests/{number}.xml"):
        response = await client.get(path)
        assert response.status_code == 200, path
        bodies.append((path, await response.get_data(as_text=True)))
    for path, body in bodies:
        assert number in body, path  # the case itself is public …
        assert WORKER_NAME not in body, path  # … who found it and where they walked are not
        for coordinate in _coordinates():
            assert coordinate not in body, (path, coordinate)
        assert not re.search(r"patrol|巡查轨迹", body), path


def test_a_long_track_is_thinned_for_the_map_keeping_its_ends() -> None:
    from bot.patrol import MAX_DRAWN_POINTS, _thinned

    walk = [[23.0 + i * 1e-5, 113.0] for i in range(3 * MAX_DRAWN_POINTS + 7)]
    drawn = _thinned(walk)
    assert len(drawn) <= MAX_DRAWN_POINTS + 1
    assert drawn[0] == walk[0] and drawn[-1] == walk[-1]
    assert _thinned(walk[:10]) == walk[:10]
