"""考核 on a known month: each part of each row worked out by hand from what the test did,
on both storages; the weights' rules; and `gridbot stats --by …` printing the same rows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.appraisal import Appraisal, parts_of, total_of
from bot.cases import CaseDraft, ReporterRef
from bot.config import APPRAISAL_PARTS, AppraisalConfig, ConfigError, load_config
from bot.models import Worker
from bot.periods import Period
from bot.services import Services
from bot.timers import TimerRunner
from tests.conftest import PROJECT_ROOT, FakeClock

GRID = "440604001030103"  # 同济社区第3网格, 祖庙街道
OTHER_GRID = "440604001030102"  # 同济社区第2网格, the same street
EQUAL = AppraisalConfig(**dict.fromkeys(APPRAISAL_PARTS, 1.0))


async def _month_of_work(s: Services, clock: FakeClock) -> dict[str, Worker]:
    """Worker 甲 patrols GRID, finds a problem and solves it on the spot (rated 5), takes and
    solves a citizen's case in time (rated 3: not satisfied, yet not reopened); a third case
    is never taken and is urged (督办) when its response time runs out. 乙 in the other grid
    is registered and does nothing."""
    item = next(i for i in s.catalogue.items if i.level == "grid" and not i.urgent)
    add = s.teams.add_worker
    jia = await add("甲", "grid_worker", f"grid:{GRID}", "t", "1", clock())
    leader = await add("长", "grid_leader", f"grid:{GRID}", "t", "2", clock())
    yi = await add("乙", "grid_worker", f"grid:{OTHER_GRID}", "t", "3", clock())
    area = s.grids.get(GRID).geometry
    middle = area.representative_point()
    await s.patrols.start(jia, clock())
    for k in range(4):
        clock.advance(minutes=3)
        await s.patrols.add_point(jia, middle.y + 0.0005 * (k - 2), middle.x, clock())
    found = (await s.cases.file(
        CaseDraft(text="路边小广告", item_code=item.code, grid_code=GRID, lat=middle.y,
                  lon=middle.x, media=["before-photo"], source="patrol"),
        ReporterRef("t", "1"), attach_duplicates=False)).case.number
    await s.actions.resolve(found, jia, "即办", media=["after-photo"])
    await s.patrols.end(jia, clock())
    citizen = (await s.cases.file(
        CaseDraft(text="井盖坏了", item_code=item.code, grid_code=GRID, lat=middle.y + 0.0003,
                  lon=middle.x), ReporterRef("http", "c1"), attach_duplicates=False)).case
    await s.actions.accept(citizen.number, jia)
    await s.actions.resolve(citizen.number, jia, "修好了")
    for number, reporter, score in ((found, ReporterRef("t", "1"), 5),
                                    (citizen.number, ReporterRef("http", "c1"), 3)):
        await s.actions.verify(number, leader, fixed=True)
        await s.cases.rate(number, reporter, score)
    late = (await s.cases.file(
        CaseDraft(text="垃圾没人收", item_code=item.code, grid_code=GRID,
                  lat=middle.y - 0.0003, lon=middle.x), ReporterRef("http", "c2"),
        attach_duplicates=False)).case
    assert late.response_due is not None and late.response_due < late.handling_due
    clock.now = late.response_due + timedelta(minutes=1)
    while await TimerRunner(s.cases).run_once():
        pass
    return {"jia": jia, "yi": yi, "leader": leader}


def _by_key(rows: list[dict]) -> dict[str, dict]:
    return {row["key"]: row for row in rows}


async def test_the_appraisal_of_a_known_month(clocked: Services, clock: FakeClock) -> None:
    s = clocked
    registered = clock()
    people = await _month_of_work(s, clock)
    month = Period.month("2026-11", s.cases.tz)
    # A day and an hour after the workers were registered: two started days each.
    now = registered + timedelta(days=1, hours=1)
    appraisal = Appraisal(s.db, s.grids, month.start, month.end, now, EQUAL)

    workers = _by_key(await appraisal.rows("worker"))
    jia = workers[str(people["jia"].id)]
    patrol_share = jia["coverage"]
    assert 0 < patrol_share < 1 and jia["patrols"] == 1 and jia["km"] > 0
    assert jia["worker_days"] == 2 and jia["found_on_patrol"] == 1 and jia["on_the_spot"] == 1
    values = {p: jia["parts"][p]["value"] for p in APPRAISAL_PARTS}
    assert values == {"discovery": 0.5, "on_spot": 0.5, "on_time": 1.0, "closure": 1.0,
                      "satisfaction": 0.5, "urges": 0.0, "coverage": patrol_share}
    scores = {p: jia["parts"][p]["score"] for p in APPRAISAL_PARTS}
    # discovery 0.5 of the 1.0 target; 即办 50% is past the 30% target (capped at 100).
    assert scores == {"discovery": 50.0, "on_spot": 100.0, "on_time": 100.0, "closure": 100.0,
                      "satisfaction": 50.0, "urges": 100.0,
                      "coverage": round(100 * patrol_share, 1)}
    assert jia["score"] == pytest.approx(sum(scores.values()) / 7, abs=0.05)
    # 乙 had two worker-days and did nothing: found 0, covered 0, no cases to judge.
    yi = workers[str(people["yi"].id)]
    assert yi["score"] == 0.0 and yi["parts"]["on_time"]["score"] is None
    assert jia["rank"] < yi["rank"]
    assert str(people["leader"].id) in workers  # the leader verified, worked no case: listed
    assert workers[str(people["leader"].id)]["cases_filed"] == 0

    grids = _by_key(await appraisal.rows("grid"))
    grid = grids[GRID]
    assert grid["name"] == "同济社区第3网格" and grid["cases_filed"] == 3
    assert grid["urges"] == 1 and grid["found_on_patrol"] == 1
    assert grid["worker_days"] == 4  # 甲 and the leader, two days each
    assert grid["parts"]["discovery"]["value"] == 0.25
    assert grid["parts"]["on_spot"]["value"] == round(1 / 3, 4)
    assert grid["parts"]["closure"]["value"] == round(2 / 3, 4)
    assert grid["parts"]["urges"] == {"value": round(1 / 3, 4), "score": 66.7}
    assert grids[OTHER_GRID]["parts"]["coverage"] == {"value": 0.0, "score": 0.0}
    assert grids[OTHER_GRID]["parts"]["closure"]["score"] is None

    streets = await appraisal.rows("street")
    [street] = [r for r in streets if r["key"] == s.grids.at_level(GRID, "street").code]
    assert street["cases_filed"] == 3 and street["worker_days"] == 6
    assert street["parts"]["discovery"]["value"] == round(1 / 6, 4)

    departments = await appraisal.rows("department")
    [department] = departments
    assert department["cases_filed"] == 3 and department["urges"] == 1
    # Departments do not patrol: those parts are left out of their total.
    assert department["parts"]["discovery"]["score"] is None
    assert department["parts"]["coverage"]["score"] is None

    # A grid leader's view: only their grid and its workers.
    narrowed = Appraisal(s.db, s.grids, month.start, month.end, now, EQUAL,
                         grid_codes=frozenset({OTHER_GRID}))
    assert [r["key"] for r in await narrowed.rows("grid")] == [OTHER_GRID]
    assert [r["worker"] for r in await narrowed.rows("worker")] == ["乙"]
    with pytest.raises(ValueError, match="--by"):
        await appraisal.rows("colour")

    # The dashboard's figure: a department account ranks departments only, its own.
    from bot.dashboard import Dashboard, ranked_units, visible_grid_codes
    from bot.models import StaffUser
    from bot.staff import visible_cases

    user = StaffUser(username="dept", display_name="", role="department",
                     scope=f"department:{department['key']}", active=True)
    board = Dashboard(s.db, s.grids, month, now, visible_cases(user, s.grids),
                      visible_grid_codes(user.role, user.scope, s.grids), EQUAL,
                      ranked_units(user.role))
    figure = await board.figure("appraisal")
    assert list(figure["units"]) == ["department"]
    assert [r["key"] for r in figure["units"]["department"]] == [department["key"]]
    everyone = await Dashboard(s.db, s.grids, month, now, appraisal=EQUAL).figure("appraisal")
    assert set(everyone["units"]) == {"worker", "grid", "street", "department"}


def test_weights_are_scaled_and_parts_without_a_figure_are_left_out() -> None:
    from bot.appraisal import _Tally

    tally = _Tally()
    tally.counts.update(filed=4, closed=2, handled=2, on_time=1)
    parts = parts_of(tally, EQUAL, patrols=False)
    assert parts["closure"]["score"] == 50.0 and parts["on_time"]["score"] == 50.0
    assert parts["satisfaction"]["score"] is None and parts["discovery"]["score"] is None
    # Present: on_spot 0, on_time 50, closure 50, urges 100 → mean 50.
    assert total_of(parts, EQUAL) == 50.0
    heavy = AppraisalConfig(**{**dict.fromkeys(APPRAISAL_PARTS, 0.0), "urges": 3.0,
                               "closure": 1.0})
    assert heavy.weights()["urges"] == 0.75
    assert total_of(parts, heavy) == 87.5  # (3 × 100 + 1 × 50) / 4
    assert total_of(parts_of(_Tally(), EQUAL, patrols=False), EQUAL) is None


def test_appraisal_weights_in_config_are_checked(tmp_path) -> None:
    config = load_config(PROJECT_ROOT / "config.toml", environ={})
    assert sum(config.appraisal.weights().values()) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match=r"appraisal\.urges"):
        load_config(PROJECT_ROOT / "config.toml", environ={"GRIDBOT_APPRAISAL_URGES": "-0.1"})
    zero = {f"GRIDBOT_APPRAISAL_{p.upper()}": "0" for p in APPRAISAL_PARTS}
    with pytest.raises(ConfigError, match="at least one appraisal weight"):
        load_config(PROJECT_ROOT / "config.toml", environ=zero)


async def test_gridbot_stats_prints_the_appraisal(clocked: Services, clock: FakeClock) -> None:
    """`gridbot stats --by worker|grid|street|department --month`: the same rows as text and
    JSON; `--by worker` keeps each worker's patrol columns."""
    import json
    import os

    from tests.gridbot_cli import gridbot

    s = clocked
    people = await _month_of_work(s, clock)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBOT_")}
    env["GRIDBOT_DATABASE_URL"] = s.config.database_url
    done = gridbot("stats", "--by", "worker", "--month", "2026-11", "--json", env=env)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["by"] == "worker" and set(figures["weights"]) == set(APPRAISAL_PARTS)
    jia = next(r for r in figures["workers"] if r["key"] == str(people["jia"].id))
    for column in ("worker", "scope", "patrols", "km", "coverage", "left_grid",
                   "found_on_patrol", "on_the_spot"):
        assert column in jia
    assert jia["worker"] == "甲" and jia["found_on_patrol"] == 1 and jia["rank"] == 1
    assert jia["parts"]["on_time"] == {"value": 1.0, "score": 100.0}
    assert "phone" not in done.stdout and "external_id" not in done.stdout

    text = gridbot("stats", "--by", "grid", "--month", "2026-11", env=env)
    assert text.returncode == 0, text.stderr
    assert "同济社区第3网格" in text.stdout and "考核排名" in text.stdout
    grid = json.loads(gridbot("stats", "--by", "grid", "--month", "2026-11", "--json",
                              env=env).stdout)
    assert grid["cases_filed"] == 3 and GRID in grid["groups"]  # the case figures, as before
    assert next(r for r in grid["rows"] if r["key"] == GRID)["urges"] == 1
    for by in ("street", "department"):
        done = gridbot("stats", "--by", by, "--month", "2026-11", "--json", env=env)
        assert done.returncode == 0 and json.loads(done.stdout)["rows"], done.stderr
    empty = json.loads(gridbot("stats", "--by", "grid", "--month", "2026-10", "--json",
                               env=env).stdout)
    assert all(r["cases_filed"] == 0 for r in empty["rows"])
    bad = gridbot("stats", "--month", "2026-13", env=env)
    assert bad.returncode == 2
    both = gridbot("stats", "--month", "2026-11", "--from", "2026-11-01", "--to",
                   "2026-12-01", env=env)
    assert both.returncode == 2


async def test_the_monthly_report_ranks_the_units(clocked: Services, clock: FakeClock,
                                                  tmp_path) -> None:
    """`gridbot report`: a ranking table (考核排名) in the HTML and the PDF, with the weights
    given and each part's score."""
    from shell.reports.monthly import build_report, ranking, render_html, write_report
    from tests.test_dashboard import _pdf_text

    s = clocked
    await _month_of_work(s, clock)
    report = await build_report(s.db, s.grids, "2026-11", s.cases.tz, clock(), EQUAL)
    header, rows = ranking(report)
    assert header[:4] == ["考核对象", "名次", "名称", "总分"] and len(header) == 4 + 7
    units = [row[0] for row in rows]
    assert units.index("街道") < units.index("部门") < units.index("网格") < units.index("网格员")
    jia = next(row for row in rows if row[0] == "网格员" and row[2] == "甲")
    assert jia[1] == 1 and jia[4 + APPRAISAL_PARTS.index("on_time")] == "100"
    html = render_html(report)
    assert "考核排名" in html and "同济社区第3网格" in html and "<td>甲</td>" in html
    if s.db.dialect == "sqlite":  # drawing the PDF reads no database: once is enough
        write_report(report, tmp_path / "report.pdf")
        pdf = _pdf_text(tmp_path / "report.pdf")
        assert "考核排名" in pdf and "同济社区第3网格" in pdf
