"""Everything a conversation step needs, built once per server process from the config."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from bot import kv
from bot.actions import WorkerActions
from bot.cases import CaseService, Clock, utcnow
from bot.catalogue import Catalogue, load_catalogue
from bot.config import Config
from bot.grid_store import load_areas, replace_areas
from bot.grids import GridMap, load_geojson
from bot.locator import Locator
from bot.outbox import Notice, OutboxWorker, Sender
from bot.storage import Database, upgrade
from bot.teams import Teams
from bot.timers import TimerRunner
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
    actions: WorkerActions
    outbox: OutboxWorker
    timers: TimerRunner

    async def close(self) -> None:
        await self.redis.aclose()
        await self.db.close()


async def build_services(config: Config, clock: Clock = utcnow) -> Services:
    db = Database(config.database_url)
    await upgrade(db.url)
    areas = await load_areas(db)
    if not areas:  # a fresh database starts with the configured grid file
        areas = load_geojson(config.path(config.grids.file))
        await replace_areas(db, areas)
    grids = GridMap(areas)
    catalogue: Catalogue = load_catalogue(config.path(config.catalogue.file))
    gazetteer = Gazetteer(load_gazetteer(config.path(config.grids.gazetteer)))
    add_words(catalogue.vocabulary() | gazetteer.words())
    redis = kv.connect(config.redis.url)
    store = ModelStore(config.path(config.nlp.model_dir))
    calendar = WorkCalendar(config.calendar, config.cases.timezone)
    teams = Teams(db, grids, redis)
    cases = CaseService(db, catalogue, grids, calendar, config.cases, teams, clock)
    # The HTTP channel's pushes are read back by polling (GET /api/v1/updates): the outbox
    # row is the delivery, so its sender has nothing more to do.
    senders: dict[str, Sender] = {"http": _kept_for_polling}
    return Services(
        config=config,
        db=db,
        redis=redis,
        catalogue=catalogue,
        grids=grids,
        gazetteer=gazetteer,
        locator=Locator(grids, gazetteer),
        models=ModelHolder(store, config.nlp.confidence_threshold,
                           max_chars=config.nlp.max_text_chars),
        cases=cases,
        dialogs=kv.DialogStore(redis, config.redis.dialog_ttl_s),
        dedupe=kv.Deduper(redis, config.redis.dedupe_ttl_s),
        teams=teams,
        actions=WorkerActions(cases, teams),
        outbox=OutboxWorker(db, senders, clock),
        timers=TimerRunner(cases, clock),
    )


async def _kept_for_polling(notice: Notice) -> None:
    return None
