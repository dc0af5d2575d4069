"""Upgrading a database the previous release (schema 0005) filled: the rows survive the
migrations to head and the app works on them (reporter view, worker actions, new filings,
the HTTP API), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import MetaData, func, insert, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.cases import CaseDraft, ReporterRef
from bot.grids import load_geojson
from bot.services import build_services
from bot.storage import upgrade
from shell.app import create_app
from tests.conftest import POSTGRES_URL, REDIS_URL, _reset_postgres, _reset_redis, make_config

PREVIOUS = "0005"
GRID = "440604001030103"
NOW = datetime(2026, 11, 20, 2, 0)  # naive UTC, as the database columns hold it


def _rows(item: dict[str, str]) -> dict[str, list[dict[str, object]]]:
    """What 0005's gridbot wrote for one reporter with a phone number, one dispatched case
    with its events, timers, a photo, an attached duplicate report, an outbox card, a
    worker, a bound group and a staff-confirmed training example."""
    due = NOW + timedelta(days=2)
    return {
        "reporters": [
            {"id": 1, "channel": "http", "external_id": "old-user", "phone": "13800138000",
             "created_at": NOW},
            {"id": 2, "channel": "wechat", "external_id": "o-old-2", "phone": None,
             "created_at": NOW}],
        "cases": [{
            "id": 1, "number": "20261120-0007", "status": "dispatched", "item_code": item["code"],
            "item_name": item["name"], "big_class": item["big_class"],
            "department": item["department"], "handling_level": "grid", "current_level": "grid",
            "assignee": f"grid:{GRID}", "urgent": False, "text": "楼下垃圾三天没人清运",
            "address": "季华五路18号", "lat": 23.0215, "lon": 113.1214, "grid_code": GRID,
            "channel": "http", "reporter_id": 1, "classifier_confidence": 0.81,
            "created_at": NOW, "updated_at": NOW, "response_due": NOW + timedelta(hours=2),
            "handling_due": due, "closed_at": None, "rating": None, "reopen_count": 0,
            "merged_into": None}],
        "case_events": [
            {"id": i + 1, "case_id": 1, "at": NOW, "actor": actor, "action": action,
             "from_status": src, "to_status": dst, "note": ""}
            for i, (actor, action, src, dst) in enumerate([
                ("reporter", "report", None, "reported"), ("system", "file", "reported", "filed"),
                ("system", "dispatch", "filed", "dispatched")])],
        "case_timers": [{"id": 1, "case_id": 1, "kind": "handling", "level": "grid",
                         "due_at": due, "created_at": NOW, "done_at": None,
                         "outcome": "pending"}],
        "case_media": [{"id": 1, "case_id": 1, "kind": "report", "ref": "wechat:MEDIA_1",
                        "added_by": "reporter", "created_at": NOW}],
        "attached_reports": [{"id": 1, "case_id": 1, "reporter_id": 2, "channel": "wechat",
                              "text": "同一堆垃圾", "address": "", "lat": 23.0216,
                              "lon": 113.1215, "grid_code": GRID, "created_at": NOW}],
        "outbox": [{"id": 1, "idempotency_key": "case:1:team:dispatched", "case_id": 1,
                    "channel": "http", "recipient": "reporter:1", "text": "已受理",
                    "payload": {"case": "20261120-0007", "status": "dispatched"},
                    "status": "delivered", "attempts": 1, "next_attempt_at": NOW,
                    "created_at": NOW, "delivered_at": NOW, "last_error": ""}],
        "workers": [{"id": 1, "name": "李静", "role": "grid_worker", "scope": f"grid:{GRID}",
                     "channel": "telegram", "external_id": "tg-li", "active": True,
                     "created_at": NOW}],
        "group_bindings": [{"id": 1, "channel": "telegram", "chat_id": "-1001",
                            "grid_code": GRID, "bound_at": NOW}],
        "case_counters": [{"day": "20261120", "value": 7}],
        "training_examples": [{"id": 1, "text": "路灯不亮", "item_code": item["code"],
                               "source": "hotline", "suggested_code": None,
                               "created_at": NOW}],
    }


async def _fill_previous_release(url: str, grids_file: Path, item: dict[str, str]) -> None:
    await upgrade(url, PREVIOUS)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            metadata = MetaData()
            await conn.run_sync(lambda c: metadata.reflect(c))
            assert (await conn.execute(text("SELECT version_num FROM alembic_version")))\
                .scalar() == PREVIOUS
            areas = [{"code": a.code, "name": a.name, "level": a.level, "parent": a.parent,
                      "geometry": json.dumps(a.geometry.__geo_interface__),
                      "properties": a.properties} for a in load_geojson(grids_file)]
            await conn.execute(insert(metadata.tables["areas"]), areas)
            for name, rows in _rows(item).items():
                await conn.execute(insert(metadata.tables[name]), rows)
            if engine.dialect.name == "postgresql":  # rows came with ids, as a dump would
                for name in ("reporters", "cases", "case_events", "case_timers", "case_media",
                             "attached_reports", "outbox", "workers", "group_bindings",
                             "training_examples"):
                    await conn.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"(SELECT MAX(id) FROM {name}))"))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_upgrade_from_the_previous_release(tmp_path: Path, model_dir: Path,
                                                 backend: str) -> None:
    if backend == "postgresql":
        try:
            await asyncio.wait_for(_reset_postgres(POSTGRES_URL), 10)
            await asyncio.wait_for(_reset_redis(REDIS_URL), 5)
        except Exception as exc:
            pytest.skip(f"PostgreSQL/Redis not reachable: {exc}")
        config = make_config(tmp_path, model_dir, POSTGRES_URL, REDIS_URL)
    else:
        config = make_config(tmp_path, model_dir)
    from bot.catalogue import load_catalogue

    catalogue = load_catalogue(config.path(config.catalogue.file))
    grid_item = next(i for i in catalogue.items if i.level == "grid" and not i.urgent)
    item = {"code": grid_item.code, "name": grid_item.name, "big_class": grid_item.big_class,
            "department": grid_item.department}
    await _fill_previous_release(config.database_url, config.path(config.grids.file), item)

    clock = lambda: datetime(2026, 11, 20, 3, 0, tzinfo=UTC)  # noqa: E731 - a fixed clock
    s = await build_services(config, clock)  # upgrades to head, as a server start does
    try:
        async with s.db.engine.connect() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version")))\
                .scalar()
            counts = {name: (await conn.execute(select(func.count()).select_from(
                text(name)))).scalar() for name in _rows(item)}
        from shell.ops.backup import head_revision

        assert version == head_revision(config.database_url) != PREVIOUS
        assert counts == {name: len(rows) for name, rows in _rows(item).items()}

        # The reporter (and the one attached) see the case, with its timeline, as before.
        case = await s.cases.get("20261120-0007", ReporterRef("http", "old-user"))
        assert case is not None
        view = s.cases.public_view(case)
        assert [e["status"] for e in view["timeline"]] == ["reported", "filed", "dispatched"]
        assert view["created_at"].startswith("2026-11-20T02:00:00")
        assert "13800138000" not in json.dumps(view, ensure_ascii=False)
        assert await s.cases.get("20261120-0007", ReporterRef("wechat", "o-old-2"))
        # The old worker acts on the old case; a new filing continues the day's numbers.
        worker = await s.teams.worker("telegram", "tg-li")
        assert worker is not None
        assert (await s.actions.accept("20261120-0007", worker)).status == "handling"
        filing = await s.cases.file(CaseDraft(text="路灯不亮", item_code=grid_item.code,
                                              grid_code=GRID, lat=23.05, lon=113.10),
                                    ReporterRef("http", "new-user"))
        assert filing.case.number.startswith("20261120-") and \
            int(filing.case.number.split("-")[1]) > 7
        # And the HTTP API serves the old case to its reporter only.
        client = create_app(config, s, background=False).test_client()
        loopback = {"client": ("127.0.0.1", 5000)}
        r = await client.get("/api/v1/cases/20261120-0007?user=old-user", scope_base=loopback)
        assert r.status_code == 200 and (await r.get_json())["status"] == "handling"
        r = await client.get("/api/v1/cases/20261120-0007?user=someone", scope_base=loopback)
        assert r.status_code == 404
    finally:
        await s.close()
