"""Everything a conversation step needs, built once per server process from the config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from bot import changes, kv
from bot.actions import WorkerActions
from bot.alerts import AreaAlerts
from bot.cases import CaseService, Clock, utcnow
from bot.catalogue import Catalogue, load_catalogue
from bot.config import Config
from bot.contacts import ContactWindows
from bot.digest import WeeklyDigest
from bot.duty import DutyLists
from bot.grid_store import load_areas, seed_areas
from bot.grids import GridMap, load_geojson
from bot.locator import Locator
from bot.outbox import Notice, OutboxWorker, Sender
from bot.patrol import Patrols
from bot.staff import dummy_hash, use_password_cost
from bot.storage import Database, upgrade
from bot.teams import Teams
from bot.timers import TimerRunner
from bot.verify import TIMER_KIND as VERIFY_TIMER
from bot.verify import PatrolVerification
from bot.worktime import WorkCalendar
from nlp.model_store import ModelHolder, ModelStore
from nlp.places import Gazetteer, load_gazetteer
from nlp.segment import add_words


@dataclass
class Services:
    config: Config
    db: Database
    redis: aioredis.Redis
    catalogue: Catalogue
    grids: GridMap
    gazetteer: Gazetteer
    locator: Locator
    models: ModelHolder
    cases: CaseService
    dialogs: kv.DialogStore
    dedupe: kv.Deduper
    teams: Teams
    contacts: ContactWindows
    patrols: Patrols
    verification: PatrolVerification  # 核实 of patrol reports before filing
    duty: DutyLists  # each grid's patrol plan, and the 督办 of a missed one
    alerts: AreaAlerts
    digest: WeeklyDigest
    actions: WorkerActions
    outbox: OutboxWorker
    timers: TimerRunner
    # The started channels (telegram, wechat, …), by name: state of this app's services,
    # not module globals shared by every app in the process.
    channels: dict[str, Any] = field(default_factory=dict)

    async def close(self) -> None:
        # Let the change notices of the last commits go out before their Redis closes.
        publisher = getattr(self.db, "change_publisher", None)
        if publisher is not None:
            await publisher.close()
        await self.redis.aclose()
        await self.db.close()


async def build_services(config: Config, clock: Clock = utcnow) -> Services:
    use_password_cost(config.console)
    dummy_hash()  # made now, not on a server's event loop at the first unknown-user login
    db = Database(config.database_url)
    await upgrade(db.url)
    areas = await load_areas(db)
    if not areas:  # a fresh database starts with the configured grid file
        areas = load_geojson(config.path(config.grids.file))
        if not await seed_areas(db, areas):  # a sibling process seeded it meanwhile
            areas = await load_areas(db)
    grids = GridMap(areas)
    catalogue: Catalogue = load_catalogue(config.path(config.catalogue.file)).with_departments(
        config.triage.departments)
    gazetteer = Gazetteer(load_gazetteer(config.path(config.grids.gazetteer)))
    add_words(catalogue.vocabulary() | gazetteer.words())
    redis = kv.connect(config.redis.url)
    changes.install(db, redis)  # every committed case change → Redis pub/sub (live console)
    store = ModelStore(config.path(config.nlp.model_dir))
    calendar = WorkCalendar(config.calendar, config.cases.timezone)
    # Workers may belong to any department a case can reach: the catalogue's and the
    # district departments cases are escalated to.
    departments = {item.department for item in catalogue.items} | {
        config.cases.district_default, *config.cases.district_departments.values()}
    teams = Teams(db, grids, redis, frozenset(departments))
    cases = CaseService(db, catalogue, grids, calendar, config.cases, teams, clock)
    locator = Locator(grids, gazetteer)
    verification = PatrolVerification(cases, teams, config.patrol)
    # Channels whose notices are read where they are stored: the HTTP API (GET
    # /api/v1/updates), Open311 (GeoReport v2 has no push: clients poll GET requests) and the
    # console (staff see urge notices in the case timeline). The outbox row is the delivery.
    senders: dict[str, Sender] = {channel: _kept_for_polling
                                  for channel in ("http", "open311", "console")}
    return Services(
        config=config,
        db=db,
        redis=redis,
        catalogue=catalogue,
        grids=grids,
        gazetteer=gazetteer,
        locator=locator,
        models=ModelHolder(store, config.nlp.confidence_threshold,
                           max_chars=config.nlp.max_text_chars),
        cases=cases,
        dialogs=kv.DialogStore(redis, config.redis.dialog_ttl_s),
        dedupe=kv.Deduper(redis, config.redis.dedupe_ttl_s),
        teams=teams,
        contacts=ContactWindows(db),
        patrols=Patrols(db, grids, config.patrol.place_reach_m),
        verification=verification,
        duty=DutyLists(cases, config.patrol, gazetteer),
        alerts=AreaAlerts(cases, locator, config.alerts),
        digest=WeeklyDigest(cases, config.alerts, gazetteer),
        actions=WorkerActions(cases, teams),
        outbox=OutboxWorker(db, senders, clock),
        timers=TimerRunner(cases, clock, {VERIFY_TIMER: verification.fire_timer}),
    )


async def _kept_for_polling(notice: Notice) -> None:
    return None
