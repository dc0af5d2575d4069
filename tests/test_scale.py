"""The mechanisms behind the city-scale filing path (benchmarks/city_day.py): per-day numbers
from Redis on PostgreSQL (concurrent, across processes, after Redis lost or rewound its
counter), the one-statement filing writing exactly what the transitions write, and the
classifier's fast scorer giving the scikit-learn pipeline's scores."""

from __future__ import annotations

import asyncio
import pickle
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from bot.cases import CaseDraft, ReporterRef
from bot.cases.drafts import near_box
from bot.cases.filing_pg import open_points_near
from bot.catalogue import load_catalogue
from bot.changes import subscribe
from bot.config import PROJECT_ROOT
from bot.kv import PREFIX
from bot.models import Case, CaseEvent, CaseMedia, CaseTimer, OutboxMessage, Reporter
from bot.services import Services, build_services
from nlp.classifier import LinearTfidfScorer, TextClassifier
from nlp.model_store import ModelStore
from training.corpus import read_seed_corpus

DEMO_GRID = "440604001030103"  # 同济社区第3网格: its team room is a Telegram group


def _draft(services: Services, n: int = 0, media: list[str] | None = None) -> CaseDraft:
    code = next(i.code for i in services.catalogue.items if i.level == "grid")
    # ~1 km apart, so no report joins another as a duplicate
    return CaseDraft(text=f"井盖缺失 {n}", item_code=code, grid_code=DEMO_GRID,
                     lat=22.0 + n * 0.01, lon=113.1214, media=media or [])


def _day_and_value(number: str) -> tuple[str, int]:
    day, _, value = number.partition("-")
    return day, int(value)


async def test_a_filed_case_has_the_rows_its_transitions_write(services: Services) -> None:
    s = services
    filing = await s.cases.file(_draft(s, media=["photo-1", "photo-2"]),
                                ReporterRef("http", "scale-1", phone="13800000000"))
    case = filing.case
    assert not filing.attached and case.status == "dispatched" and case.id is not None
    async with s.db.session() as session:
        stored = (await session.execute(select(Case).where(Case.id == case.id))).scalar_one()
        reporter = await session.get(Reporter, stored.reporter_id)
        events = list((await session.execute(select(CaseEvent).where(
            CaseEvent.case_id == case.id).order_by(CaseEvent.id))).scalars())
        timers = list((await session.execute(select(CaseTimer).where(
            CaseTimer.case_id == case.id).order_by(CaseTimer.id))).scalars())
        cards = list((await session.execute(select(OutboxMessage).where(
            OutboxMessage.case_id == case.id))).scalars())
        media = list((await session.execute(select(CaseMedia.ref).where(
            CaseMedia.case_id == case.id).order_by(CaseMedia.id))).scalars())
    assert (reporter.channel, reporter.external_id, reporter.phone) == (
        "http", "scale-1", "13800000000")
    assert stored.number == case.number and stored.assignee == f"grid:{DEMO_GRID}"
    assert stored.created_at == case.created_at and stored.handling_due == case.handling_due
    assert [(e.actor, e.action, e.from_status, e.to_status) for e in events] == [
        ("citizen", "report", None, "reported"),
        ("system", "transition", "reported", "filed"),
        ("system", "transition", "filed", "dispatched"),
    ]
    assert all(e.at == case.created_at for e in events) and events[2].note
    calendar, start = services.cases.calendar, case.created_at
    working = services.catalogue.get(case.item_code).handling.working
    assert [(t.kind, t.level, t.due_at, t.done_at) for t in timers] == [
        ("respond", "grid", case.response_due, None),
        ("remind", "grid", calendar.share_of(start, case.handling_due, 0.5, working), None),
        ("remind_final", "grid", calendar.share_of(start, case.handling_due, 0.8, working),
         None),
        ("escalate", "grid", case.handling_due, None),
    ]
    assert len(cards) == 1  # the team's card; the reporter is told in the reply instead
    card = cards[0]
    assert card.recipient.startswith("-100") and card.status == "pending"
    # The team's card carries what the channels show with it: the photos, the point, the
    # address (never who reported).
    assert card.payload == {"case": case.number, "status": "dispatched", "kind": "card",
                            "level": case.current_level, "photos": media,
                            "point": [case.lat, case.lon], "address": case.address}
    assert card.idempotency_key.startswith(f"{case.number}:card:{card.channel}:")
    assert card.text == s.cases.card_text(case) and "13800000000" not in card.text
    assert media == ["photo-1", "photo-2"]
    # The reporter's view and the timeline read back as before.
    view = s.cases.public_view(await s.cases.get(case.number))
    assert [e["status"] for e in view["timeline"]] == [
        "reported", "filed", "dispatched"] and view["photos"] == 2


async def test_numbers_are_unique_and_in_sequence_under_concurrency(services: Services) -> None:
    """Two server processes (two Services on one database and Redis) filing at once."""
    s = services
    other = await build_services(s.config, s.cases.clock)
    try:
        filings = await asyncio.gather(*(
            (s if n % 2 else other).cases.file(_draft(s, n), ReporterRef("http", f"c{n % 7}"))
            for n in range(40)))
    finally:
        await other.close()
    numbers = [f.case.number for f in filings]
    days = {_day_and_value(n)[0] for n in numbers}
    assert len(set(numbers)) == 40 and len(days) == 1
    assert sorted(_day_and_value(n)[1] for n in numbers) == list(range(1, 41))
    async with s.db.session() as session:
        reporters = (await session.execute(select(Reporter.external_id))).scalars().all()
    assert sorted(reporters) == sorted(f"c{n}" for n in range(7))  # one row per person


async def test_numbering_recovers_when_redis_loses_or_rewinds_the_counter(
    services: Services,
) -> None:
    s = services
    if s.db.dialect != "postgresql":
        pytest.skip("SQLite numbers from its counter row; Redis is not involved")
    first = [(await s.cases.file(_draft(s, n), ReporterRef("http", "r"))).case.number
             for n in range(3)]
    day = _day_and_value(first[0])[0]
    assert [_day_and_value(n)[1] for n in first] == [1, 2, 3]
    key = f"{PREFIX}caseno:{s.config.cases.number_prefix}{day}"
    await s.redis.delete(key)  # Redis restarted empty: the database knows better
    after_loss = (await s.cases.file(_draft(s, 3), ReporterRef("http", "r"))).case.number
    assert _day_and_value(after_loss) == (day, 4)
    await s.redis.set(key, 2)  # restored from an old snapshot: the next number clashes
    after_rewind = (await s.cases.file(_draft(s, 4), ReporterRef("http", "r"))).case.number
    assert _day_and_value(after_rewind)[0] == day and _day_and_value(after_rewind)[1] > 4
    async with s.db.session() as session:
        numbers = (await session.execute(select(Case.number))).scalars().all()
    assert len(numbers) == len(set(numbers)) == 5


def test_fast_scorer_gives_the_pipelines_scores(model_dir: Path) -> None:
    model = TextClassifier.load(ModelStore(model_dir).current_dir())
    scorer = LinearTfidfScorer.build(model.pipeline)
    assert scorer is not None, "the catalogue pipeline should take the fast path"
    texts, _ = read_seed_corpus(PROJECT_ROOT / "data/seed_corpus",
                                load_catalogue(PROJECT_ROOT / "data/catalogue.csv"))
    prepared = [model.prepare(t) for t in texts[:400]] + ["", "？？", "abc 123"]
    expected = model.pipeline.decision_function(prepared)
    fast = np.vstack([scorer.decision(t) for t in prepared])
    assert np.abs(expected - fast).max() < 1e-9
    assert (np.argsort(-expected, axis=1)[:, :3] == np.argsort(-fast, axis=1)[:, :3]).all()
    # rank() takes the fast path and agrees with the batch (scikit-learn) path
    one_by_one = [model.rank(t, k=3) for t in texts[:50]]
    assert [[x.code for x in r] for r in one_by_one] == [
        [x.code for x in r] for r in model.rank_many(texts[:50] * 2, k=3)[:50]]
    # the scorer is a cache, never part of the saved model
    assert "_fast" in model.__dict__ and "_fast" not in pickle.loads(pickle.dumps(model)).__dict__


async def test_a_filed_case_is_announced_to_the_live_console(services: Services) -> None:
    """The PostgreSQL filing bypasses the ORM flush that bot/changes.py listens to, so it
    hands the case id over itself; both back ends must announce a new case."""
    s = services
    stream = subscribe(s.redis, idle_s=1)

    async def first_notice() -> dict | None:
        async for notice in stream:  # None: a quiet second (or the subscription's reply)
            if notice is not None:
                return notice
        return None

    listening = asyncio.ensure_future(first_notice())
    await asyncio.sleep(0.3)  # subscribed before the filing commits
    case = (await s.cases.file(_draft(s), ReporterRef("http", "live"))).case
    notice = await asyncio.wait_for(listening, 10)
    await stream.aclose()
    assert notice is not None and notice["number"] == case.number
    assert notice["status"] == "dispatched" and notice["grid"] == DEMO_GRID


async def test_the_duplicate_read_before_filing_finds_what_sqlalchemy_finds(
    services: Services,
) -> None:
    """On PostgreSQL the plain read before a filing runs on the driver (bot/cases/filing_pg.py):
    it must pick the same open cases of the item, in the same box and window, as the
    SQLAlchemy filter the locked transaction uses."""
    s = services
    if s.db.autocommit_engine is None:
        pytest.skip("SQLite files in one transaction: no plain read before it")
    radius = s.config.cases.duplicate_radius_m
    assert radius > 0
    code, other = [i.code for i in s.catalogue.items if i.level == "grid"][:2]
    lat, lon = 22.0, 113.1214

    async def file(item: str, d_lat: float, d_lon: float = 0.0) -> Case:
        draft = CaseDraft(text="井盖缺失", item_code=item, grid_code=DEMO_GRID,
                          lat=lat + d_lat, lon=lon + d_lon)
        return (await s.cases.file(draft, ReporterRef("http", "near"),
                                   attach_duplicates=False)).case

    here = await file(code, 0.0)
    corner = await file(code, 0.0008, 0.0009)  # in the box, ~125 m: the distance decides
    closed = await file(code, 0.0003)
    old = await file(code, -0.0003)
    await file(other, 0.0)  # another item
    await file(code, 0.002)  # ~220 m north: outside the box
    async with s.db.session() as session, session.begin():
        (await session.get(Case, closed.id)).status = "closed"
        (await session.get(Case, old.id)).created_at = s.cases.clock() - timedelta(
            hours=s.config.cases.duplicate_window_h + 1)

    now = s.cases.clock()
    draft = CaseDraft(text="又看到了", item_code=code, grid_code=DEMO_GRID, lat=lat, lon=lon)
    where = s.cases.filing._nearby_filter(draft, now)
    assert where is not None
    async with s.db.autocommit_engine.connect() as conn:
        on_driver = await open_points_near(
            conn, code, now - timedelta(hours=s.config.cases.duplicate_window_h),
            near_box(lat, lon, radius))
        through_orm = (await conn.execute(select(Case.lat, Case.lon).where(*where))).all()
    assert on_driver is not None
    assert sorted(on_driver) == sorted(tuple(row) for row in through_orm) == sorted(
        [(here.lat, here.lon), (corner.lat, corner.lon)])
