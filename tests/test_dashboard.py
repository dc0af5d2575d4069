"""The dashboard's figures, their CSV export, access scoping and the monthly report — on a
known set of cases filed through the real CaseService, on both storage set-ups."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.cases import CaseDraft, ReporterRef
from bot.dashboard import Dashboard, Period, PeriodError, table, visible_grid_codes
from bot.models import StaffAudit, StaffUser
from bot.services import Services
from bot.staff import add_user, visible_cases
from tests.conftest import FakeClock

TZ = ZoneInfo("Asia/Shanghai")
G1 = "440604001010101"  # 东华社区第1网格, street 440604001
G2 = "440604004030301"  # 南庄村第1网格, street 440604004


@dataclass
class Known:
    """Four cases filed on Monday 23 Nov 2026 (local): a closed on the spot, b accepted,
    c (a district matter) past its deadline, d (a street matter) open and in time."""

    a: str
    b: str
    c: str
    d: str
    grid_item: str
    other_item: str
    district_item: str
    street_item: str
    district_department: str


def _spot(s: Services, code: str, nudge: float = 0.0) -> tuple[float, float]:
    point = s.grids.get(code).geometry.representative_point()
    return point.y + nudge, point.x


async def file_known_cases(s: Services, clock: FakeClock) -> Known:
    items = [i for i in s.catalogue.items if not i.urgent]
    grid_item = next(i for i in items if i.level == "grid")
    other = next(i for i in items if i.level == "grid" and i.big_class != grid_item.big_class)
    district = next(i for i in items if i.level == "district"
                    and i.department != grid_item.department)
    street = next(i for i in items if i.level == "street")
    numbers = []
    plan = [(grid_item, G1, 0.0), (other, G1, 0.002), (district, G2, 0.0), (street, G2, 0.002)]
    for n, (item, grid, nudge) in enumerate(plan):
        lat, lon = _spot(s, grid, nudge)
        filing = await s.cases.file(
            CaseDraft(text=f"测试 {n}，电话13800138000", item_code=item.code, grid_code=grid,
                      lat=lat, lon=lon),
            ReporterRef("http", f"reporter-{n}", phone="13800138000"))
        assert not filing.attached
        numbers.append(filing.case.number)
    a, b, c, d = numbers
    worker = await s.teams.add_worker("甲", "grid_worker", f"grid:{G1}", "t", "1", clock())
    leader = await s.teams.add_worker("长", "grid_leader", f"grid:{G1}", "t", "2", clock())
    await s.actions.resolve(a, worker, "即办")
    await s.actions.verify(a, leader, fixed=True)
    await s.cases.rate(a, ReporterRef("http", "reporter-0"), 5)
    await s.actions.accept(b, worker)
    # One hour past c's deadline (two working days); the others have three.
    clock.now = (await s.cases.get(c)).handling_due + timedelta(hours=1)
    return Known(a, b, c, d, grid_item.code, other.code, district.code, street.code,
                 district.department)


def _user(role: str, scope: str = "") -> StaffUser:
    return StaffUser(username=f"u-{role}", display_name="", role=role, scope=scope,
                     active=True)


def _dashboard(s: Services, clock: FakeClock, user: StaffUser | None = None) -> Dashboard:
    period = Period.month("2026-11", TZ)
    if user is None:
        return Dashboard(s.db, s.grids, period, clock())
    return Dashboard(s.db, s.grids, period, clock(), visible_cases(user, s.grids),
                     visible_grid_codes(user.role, user.scope, s.grids))


async def test_figures_on_a_known_set_of_cases(clocked: Services, clock: FakeClock) -> None:
    s = clocked
    known = await file_known_cases(s, clock)
    figures = await _dashboard(s, clock).all()

    summary = figures["summary"]
    assert (summary["from"], summary["to"]) == ("2026-11-01", "2026-11-30")
    assert summary["cases_filed"] == 4 and summary["closed"] == 1
    assert summary["closure_rate"] == 0.25 and summary["on_the_spot_share"] == 0.25
    assert summary["on_time_rate"] == 1.0 and summary["satisfaction_rate"] == 1.0
    assert summary["solved_at"] == {"grid": 1.0, "street": 0.0, "district": 0.0}
    assert summary["open_now"] == 3 and summary["overdue_now"] == 1

    days = {d["date"]: d for d in figures["daily"]["days"]}
    assert len(days) == 30 and days["2026-11-23"] == {"date": "2026-11-23", "filed": 4,
                                                      "closed": 1}
    assert sum(d["filed"] for d in days.values()) == 4

    big = {r["big_class"]: r for r in figures["categories"]["big_classes"]}
    grid_item = s.catalogue.get(known.grid_item)
    other = s.catalogue.get(known.other_item)
    assert big[other.big_class]["cases"] >= 1
    assert sum(r["cases"] for r in big.values()) == 4
    assert round(sum(r["share"] for r in big.values()), 4) == 1.0
    items = {r["item_code"]: r for r in figures["items"]["items"]}
    assert items[known.grid_item]["cases"] == 1 and items[known.grid_item]["share"] == 0.25
    assert items[known.grid_item]["item"] == grid_item.name

    overdue = figures["overdue"]["cases"]
    assert [c["number"] for c in overdue] == [known.c]
    assert overdue[0]["hours_overdue"] == 1.0
    assert overdue[0]["department"] == known.district_department
    assert overdue[0]["grid"] == s.grids.get(G2).name

    ranked = figures["departments"]["departments"]
    assert ranked[0]["department"] == grid_item.department and ranked[0]["on_time_rate"] == 1.0
    assert [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1))
    assert all(r["on_time_rate"] is None for r in ranked[1:])

    grids = {f["properties"]["code"]: f["properties"] for f in figures["grids"]["features"]}
    assert len(grids) == len(s.grids.grids)
    assert (grids[G1]["open"], grids[G1]["overdue"], grids[G1]["overdue_rate"],
            grids[G1]["filed"]) == (1, 0, 0.0, 2)
    assert grids[G1]["name"] == s.grids.get(G1).name and grids[G1]["street"]
    assert (grids[G2]["open"], grids[G2]["overdue"], grids[G2]["overdue_rate"]) == (2, 1, 0.5)
    points = figures["points"]["points"]
    assert {p["number"] for p in points} == {known.b, known.c, known.d}
    assert next(p for p in points if p["number"] == known.c)["overdue"] is True
    # Points are WGS-84 as stored, inside the polygon of their grid.
    lat, _lon = _spot(s, G2)
    assert next(p for p in points if p["number"] == known.c)["lat"] == round(lat, 6)
    assert s.grids.locate(points[0]["lat"], points[0]["lon"]).code == points[0]["grid_code"]

    # Nothing about the reporter leaves, not even the text they wrote.
    text = repr(figures)
    assert "13800138000" not in text and "reporter-" not in text and "测试" not in text


async def test_figures_follow_the_accounts_scope(clocked: Services, clock: FakeClock) -> None:
    s = clocked
    known = await file_known_cases(s, clock)
    department = await _dashboard(
        s, clock, _user("department", f"department:{known.district_department}")).all()
    assert department["summary"]["cases_filed"] == 1
    assert [c["number"] for c in department["overdue"]["cases"]] == [known.c]
    assert {p["number"] for p in department["points"]["points"]} == {known.c}
    assert [r["department"] for r in department["departments"]["departments"]] == [
        known.district_department]

    leader = await _dashboard(s, clock, _user("grid_leader", "street:440604001")).all()
    assert leader["summary"]["cases_filed"] == 2 and leader["overdue"]["cases"] == []
    codes = {f["properties"]["code"] for f in leader["grids"]["features"]}
    assert G1 in codes and G2 not in codes
    assert all(s.grids.at_level(c, "street").code == "440604001" for c in codes)

    nobody = await _dashboard(s, clock, StaffUser(username="x", role="supervisor", scope="",
                                                  active=False)).all()
    assert nobody["summary"]["cases_filed"] == 0 and nobody["points"]["points"] == []


def test_periods_are_local_calendar_days() -> None:
    november = Period.month("2026-11", TZ)
    assert november.start == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert november.end == datetime(2026, 11, 30, 16, tzinfo=UTC)
    december = Period.month("2026-12", TZ)
    assert december.end == datetime(2026, 12, 31, 16, tzinfo=UTC)
    week = Period.last_days(7, datetime(2026, 11, 23, 1, tzinfo=UTC), TZ)
    assert (week.first_day.isoformat(), week.last_day.isoformat()) == ("2026-11-17",
                                                                      "2026-11-23")
    for bad in ("2026-13", "november", "2026/11", ""):
        with pytest.raises(PeriodError, match="2026-11"):
            Period.month(bad, TZ)


async def test_tables_carry_the_figures(clocked: Services, clock: FakeClock) -> None:
    s = clocked
    known = await file_known_cases(s, clock)
    figures = await _dashboard(s, clock).all()
    for name, data in figures.items():
        header, rows = table(name, data)
        assert header and all(len(r) == len(header) for r in rows), name
        buffer = io.StringIO()
        csv.writer(buffer).writerows([header, *rows])
        parsed = list(csv.reader(io.StringIO(buffer.getvalue())))
        assert parsed[0] == header and len(parsed) == len(rows) + 1
    _header, rows = table("overdue", figures["overdue"])
    assert rows[0][0] == known.c and rows[0][-1] == 1.0
    summary = dict(table("summary", figures["summary"])[1])
    assert "25.0%" in summary.values() and 4 in summary.values()


# -- the console's JSON and CSV ------------------------------------------------------------

PASSWORD = "dashboard-pass-1"


async def _signed_in(app, username: str):
    """A Quart test client signed in through the login form (cookies kept)."""
    client = app.test_client()
    page = await client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.get_data(True))
    assert token is not None
    r = await client.post("/console/login", form={
        "username": username, "password": PASSWORD, "csrf_token": token.group(1)})
    assert r.status_code == 302, await r.get_data(True)
    return client


def _parse_csv(body: bytes) -> list[list[str]]:
    assert body.startswith("\ufeff".encode())  # the BOM: Excel reads UTF-8 Chinese right
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


async def test_console_json_and_csv_match_and_follow_scope(clocked: Services,
                                                           clock: FakeClock) -> None:
    from shell.app import create_app

    s = clocked
    known = await file_known_cases(s, clock)
    await add_user(s.db, "boss", PASSWORD, "supervisor", grids=s.grids)
    await add_user(s.db, "fire", PASSWORD, "department",
                   f"department:{known.district_department}", grids=s.grids)
    await add_user(s.db, "east", PASSWORD, "grid_leader", "street:440604001", grids=s.grids)
    app = create_app(s.config, s, background=False)

    anonymous = app.test_client()
    assert (await anonymous.get("/console/dashboard/api/all.json")).status_code == 401
    assert (await anonymous.get("/console/dashboard/api/daily.csv")).status_code == 401
    assert (await anonymous.get("/console/dashboard")).status_code == 302  # to the login

    boss = await _signed_in(app, "boss")
    page = await boss.get("/console/dashboard")
    assert page.status_code == 200
    html = await page.get_data(True)
    assert "/console/vendor/echarts/echarts.min.js" in html and 'id="map"' in html
    assert "<script>" not in html  # the CSP allows no inline scripts

    r = await boss.get("/console/dashboard/api/all.json?period=2026-11")
    assert r.status_code == 200
    figures = (await r.get_json())["figures"]
    assert figures["summary"]["cases_filed"] == 4
    for name in ("daily", "overdue", "departments", "items", "grids"):
        r = await boss.get(f"/console/dashboard/api/{name}.csv?period=2026-11")
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
        assert f"gridbot-{name}-2026-11-01_2026-11-30.csv" in r.headers["Content-Disposition"]
        rows = _parse_csv(await r.get_data())
        header, expected = table(name, figures[name])
        assert rows[0] == header
        assert rows[1:] == [[str(c) for c in row] for row in expected]
    daily = _parse_csv(await (await boss.get(
        "/console/dashboard/api/daily.csv?period=2026-11")).get_data())
    assert ["2026-11-23", "4", "1"] in daily
    one = await (await boss.get("/console/dashboard/api/overdue.json?period=2026-11")).get_json()
    assert one["figure"] == figures["overdue"]
    # A refresh leaves the outlines out; the counts are the same.
    light = (await (await boss.get(
        "/console/dashboard/api/all.json?period=2026-11&geometry=0")).get_json())["figures"]
    assert all(f["geometry"] is None for f in light["grids"]["features"])
    assert [f["properties"] for f in light["grids"]["features"]] == [
        f["properties"] for f in figures["grids"]["features"]]
    assert figures["grids"]["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")

    # Bad requests get a clear error, not a trace.
    r = await boss.get("/console/dashboard/api/all.json?period=2026-13")
    assert r.status_code == 400 and "2026-11" in (await r.get_json())["error"]
    for far in ("9999-12", "0001-01"):  # years that overflow were a 500
        r = await boss.get(f"/console/dashboard/api/summary.json?period={far}")
        assert r.status_code == 400 and "error" in await r.get_json()
    assert (await boss.get("/console/dashboard/api/secrets.json")).status_code == 404
    assert (await boss.get("/console/dashboard/api/all.csv")).status_code == 404

    fire = await _signed_in(app, "fire")
    mine = (await (await fire.get(
        "/console/dashboard/api/all.json?period=2026-11")).get_json())["figures"]
    assert mine["summary"]["cases_filed"] == 1
    assert [c["number"] for c in mine["overdue"]["cases"]] == [known.c]
    rows = _parse_csv(await (await fire.get(
        "/console/dashboard/api/points.csv?period=2026-11")).get_data())
    assert [r[0] for r in rows[1:]] == [known.c]

    east = await _signed_in(app, "east")
    theirs = (await (await east.get(
        "/console/dashboard/api/grids.json?period=2026-11")).get_json())["figure"]
    codes = {f["properties"]["code"] for f in theirs["features"]}
    assert G1 in codes and G2 not in codes

    # Every export is in the staff audit log.
    async with s.db.session() as session:
        exports = (await session.execute(select(StaffAudit.username, StaffAudit.target).where(
            StaffAudit.action == "dashboard_export"))).all()
    assert ("boss", "daily") in exports and ("fire", "points") in exports


async def test_vendor_files_are_served_locally(clocked: Services, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.console import vendor
    from shell.app import create_app

    app = create_app(clocked.config, clocked, background=False)
    client = app.test_client()
    if vendor.missing():
        pytest.fail(f"frontend packages not installed ({vendor.missing()}): ./run installs them")
    r = await client.get("/console/vendor/echarts/echarts.min.js")
    assert r.status_code == 200 and "javascript" in r.headers["Content-Type"]
    assert b"echarts" in (await r.get_data())[:2000]
    r = await client.get("/console/vendor/leaflet/leaflet.css")
    assert r.status_code == 200 and b".leaflet-container" in await r.get_data()
    assert (await client.get("/console/vendor/leaflet/images/marker-icon.png")).status_code == 200
    # Only the listed files: not the rest of node_modules, and no way out of it.
    for path in ("echarts/package.json", "leaflet/dist/leaflet-src.js", "../package.json",
                 "..%2F..%2Fconfig.toml"):
        assert (await client.get(f"/console/vendor/{path}")).status_code == 404
    # Not installed: a clear page saying how to install, not a bare 404.
    monkeypatch.setattr(vendor, "NODE_MODULES", tmp_path)
    r = await client.get("/console/vendor/leaflet/leaflet.js")
    assert r.status_code == 503 and "npm ci" in await r.get_data(True)
    assert vendor.missing(tmp_path) == list(vendor.FILES.values())


# -- the monthly report ------------------------------------------------------------------------

def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


async def test_report_command_writes_html_and_pdf_with_the_months_numbers(
        clocked: Services, clock: FakeClock, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from shell.cli import app as cli
    from shell.reports.monthly import build_report, cjk_font, render_html

    s = clocked
    known = await file_known_cases(s, clock)
    assert cjk_font() is not None, "no CJK font: ./run installs fonts-wqy-zenhei"
    report = await build_report(s.db, s.grids, "2026-11", TZ, clock())
    monkeypatch.setenv("GRIDBOT_DATABASE_URL", s.config.database_url)
    runner = CliRunner()
    outputs = {}
    for suffix in ("html", "pdf"):
        out = tmp_path / f"report-2026-11.{suffix}"
        result = await asyncio.to_thread(
            runner.invoke, cli, ["report", "--month", "2026-11", "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert out.is_file() and not list(tmp_path.glob(".*.partial"))
        outputs[suffix] = out
    html = outputs["html"].read_text(encoding="utf-8")
    pdf = _pdf_text(outputs["pdf"])
    summary = report.summary
    for text in (html, pdf):
        assert "网格化城市管理月报（2026-11）" in text
        assert "2026-11-01" in text and "2026-11-30" in text
        assert f"本月共受理案件 {summary['cases_filed']} 件" in text
        assert "办结率 25.0%" in text and "即办率 25.0%" in text
        assert s.catalogue.get(known.district_item).department in text  # the ranking
        assert "13800138000" not in text and "reporter-" not in text
    # The command reads the real clock, before these cases' test-clock deadline; written
    # at the test clock's time, the overdue case is in the table (the PDF of such a report,
    # and of an empty month: the test below, once — drawing a PDF reads no database).
    html_as_of = render_html(report)
    assert known.c in html_as_of and "1.0" in html_as_of
    empty = await build_report(s.db, s.grids, "2026-10", TZ, clock())
    assert empty.summary["cases_filed"] == 0
    # Self-contained: the charts are embedded, nothing is fetched.
    assert html.count("data:image/png;base64,") == 6
    assert "http://" not in html and "https://" not in html
    assert outputs["pdf"].read_bytes().startswith(b"%PDF")

    bad = await asyncio.to_thread(runner.invoke, cli, [
        "report", "--month", "2026-13", "--out", str(tmp_path / "x.pdf")])
    assert bad.exit_code == 2 and not (tmp_path / "x.pdf").exists()
    bad = await asyncio.to_thread(runner.invoke, cli, [
        "report", "--month", "2026-11", "--out", str(tmp_path / "x.docx")])
    assert bad.exit_code == 2 and ".pdf" in bad.output


@pytest.mark.parametrize("clocked", ["sqlite+embedded"], indirect=True)
async def test_report_pdf_as_of_its_time_and_of_an_empty_month(
        clocked: Services, clock: FakeClock, tmp_path: Path) -> None:
    """The PDF of a report built at the test clock's time has the overdue case in its
    table, as the HTML has; a month with no cases still makes one (charts say there is no
    data). One storage: both build these reports in the test above, the drawing is the same."""
    from shell.reports.monthly import build_report, render_html, write_report

    s = clocked
    known = await file_known_cases(s, clock)
    report = await build_report(s.db, s.grids, "2026-11", TZ, clock())
    write_report(report, tmp_path / "as-of.pdf")
    for text in (render_html(report), _pdf_text(tmp_path / "as-of.pdf")):
        assert known.c in text and "1.0" in text
    empty = await build_report(s.db, s.grids, "2026-10", TZ, clock())
    assert empty.summary["cases_filed"] == 0
    write_report(empty, tmp_path / "empty.pdf")
    assert "2026-10-31" in _pdf_text(tmp_path / "empty.pdf")


def test_csv_cells_never_run_as_excel_formulas() -> None:
    from adapters.console.dashboard import to_csv

    text = to_csv(["网格", "数值"], [["=HYPERLINK(\"x\")", -3], ["+1", "@SUM(A1)"],
                                     ["东华社区第1网格", 0.5]])
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows == [["网格", "数值"], ["'=HYPERLINK(\"x\")", "-3"], ["'+1", "'@SUM(A1)"],
                    ["东华社区第1网格", "0.5"]]
