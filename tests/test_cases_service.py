"""bot/cases/service.py: CaseService wires the parts on one shared context — numbers from
Redis on PostgreSQL only, and one clock that every part reads."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.cases import CaseDraft, ReporterRef
from bot.services import Services


async def test_the_parts_share_one_context_and_one_clock(services: Services) -> None:
    cases = services.cases
    assert cases.numbers.use_redis is (cases.db.dialect == "postgresql")
    assert cases.filing.ctx is cases.lifecycle.ctx is cases.notices.ctx is cases.views.ctx
    assert (cases.db, cases.grids, cases.teams) == (services.db, services.grids,
                                                    services.teams)
    moment = datetime(2030, 3, 4, 2, 0, tzinfo=UTC)
    cases.clock = lambda: moment  # the setter reaches every part: filing reads it
    filing = await cases.file(CaseDraft(text="报刊亭破损", item_code="C0121",
                                        grid_code="440604001030103"), ReporterRef("test", "u"))
    assert filing.case.number.startswith("20300304-")
    stored = await cases.get(filing.case.number)
    assert stored is not None and stored.created_at == moment
    assert cases.local(stored.created_at) == "2030-03-04 10:00"  # the configured zone
