"""handlers.filing: the one way a report becomes a case (chat 确认, one-shot reports, the
hotline console): a patrol report of an item to verify is held, anything else is filed, and a
chosen item is learned once, however often the same report is retried."""

from __future__ import annotations

from sqlalchemy import select

from bot.cases import CaseDraft, ReporterRef, report_key
from bot.config import PatrolConfig
from bot.models import Case, TrainingExample
from bot.services import Services
from bot.workflow import Status
from handlers.filing import Example, submit

GRID = "440604001030103"  # 同济社区第3网格, 祖庙街道 (the demo district)
ADS = "E0201"  # 非法小广告


def _draft(key: str, spot: int = 0, code: str = ADS) -> CaseDraft:
    return CaseDraft(text="电线杆上贴满了小广告", item_code=code, grid_code=GRID,
                     lat=23.0215 + spot * 0.01, lon=113.1214,
                     report_key=report_key("telegram", "u1", key))


async def _examples(s: Services) -> list[TrainingExample]:
    async with s.db.session() as session:
        return list((await session.execute(select(TrainingExample))).scalars())


async def test_a_report_is_filed_and_its_chosen_item_learned_once(services: Services) -> None:
    s = services
    reporter = ReporterRef("telegram", "u1")
    first = await submit(_draft("r1"), reporter, s, example=Example("chat", "E0202"))
    again = await submit(_draft("r1"), reporter, s, example=Example("chat", "E0202"))
    assert first.case.status == Status.DISPATCHED and not first.replayed
    assert again.replayed and again.case.number == first.case.number
    learned = await _examples(s)
    assert [(e.item_code, e.suggested_code, e.source) for e in learned] == [(ADS, "E0202", "chat")]


async def test_without_an_example_nothing_is_learned(services: Services) -> None:
    await submit(_draft("r2"), ReporterRef("http", "u2"), services)
    assert await _examples(services) == []


async def test_a_patrol_report_to_verify_is_held_and_a_citizen_report_is_not(
        services: Services) -> None:
    s = services
    s.verification.config = PatrolConfig(verify_items=[ADS])
    held = await submit(_draft("p1"), ReporterRef("telegram", "worker"), s, patrol=True)
    filed = await submit(_draft("c1", spot=1), ReporterRef("telegram", "citizen"), s)
    assert held.case.status == Status.REPORTED and held.case.handling_due is None
    assert filed.case.status == Status.DISPATCHED
    async with s.db.session() as session:
        statuses = {c.number: c.status for c in (await session.execute(select(Case))).scalars()}
    assert statuses == {held.case.number: Status.REPORTED, filed.case.number: Status.DISPATCHED}
