"""adapters/console/pages.py: what the console pages compute before any HTTP — the caller's
phone as staff see it, phones as typed, time limits read out, who did what on the trail,
which actions a role has, where a case may be dispatched, and one queue row."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from adapters.console.pages import (
    HANDLERS,
    _actor_label,
    allowed_actions,
    channel_label,
    clean_phone,
    console_texts,
    dispatch_targets,
    limit_text,
    mask_phone,
    row_view,
)
from bot.cases import CaseDraft, ReporterRef
from bot.catalogue import TimeLimit
from bot.models import Case
from bot.services import Services
from bot.texts import t
from bot.workflow import ACTIONS

GRID = "440604001030103"  # 同济社区第3网格 · 同济社区 · 祖庙街道 · 禅城区
sqlite_only = pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)


@pytest.mark.parametrize(("phone", "shown"), [
    (None, ""), ("", ""),
    ("13812345678", "138****5678"),
    ("+8613812345678", "+86*******5678"),
    ("075783300000", "075*****0000"),  # a landline with its area code
    ("83300000", "****0000"),  # a local landline: never 7 of its 8 digits (was 833*0000)
    ("12345", "1***5"),
])
def test_a_phone_is_masked_enough_that_it_cannot_be_dialled(phone: str | None,
                                                           shown: str) -> None:
    assert mask_phone(phone) == shown


def test_a_typed_phone_is_cleaned_or_refused() -> None:
    assert clean_phone(" 138-1234 5678 ") == "13812345678"
    assert clean_phone("（0757）8330-0000") == "075783300000"
    assert clean_phone("+86 138 1234 5678") == "+8613812345678"
    assert clean_phone("") == "" and clean_phone(None) == ""  # type: ignore[arg-type]
    for bad in ("1234", "138abc45678", "1" * 21, "++8613812345678"):
        with pytest.raises(ValueError, match=re.escape(t("console.bad_phone"))):
            clean_phone(bad)


def test_words_staff_read() -> None:
    assert limit_text(TimeLimit(4, "wh")) == t("console.unit_wh", n=4) == "4 个工作小时"
    assert channel_label("wechat") == "微信公众号" and channel_label("carrier-pigeon") == (
        "carrier-pigeon")
    assert _actor_label("worker:12:王五") == "王五"
    assert _actor_label("worker:12") == t("console.actor_worker")
    assert _actor_label("staff:接线员小李") == "接线员小李"
    assert _actor_label("citizen") == t("console.actor_citizen")  # reporters stay anonymous
    assert _actor_label("system") == t("console.actor_system")
    assert _actor_label("test") == "test"
    texts = console_texts()
    assert texts and all(k.startswith(("console.", "status.")) for k in texts)
    assert "status.closed" in texts and "help" not in texts


def test_each_role_is_offered_what_the_action_table_gives_it() -> None:
    def offered(role: str, status: str, level: str = "street") -> list[str]:
        return allowed_actions(role, Case(status=status, current_level=level))

    assert offered("department", "dispatched") == ["accept", "resolve", "give_back"]
    assert offered("dispatcher", "dispatched") == [
        "dispatch", "urge", "reject", "merge", "split"]
    assert offered("grid_leader", "handled") == ["verify", "verify_fail"]
    assert offered("operator", "dispatched") == []  # intake only
    # At the district there is no level above to hand up or give back to.
    assert "give_back" not in offered("department", "handling", "district")
    assert offered("supervisor", "closed") == []
    # Every action with console roles has a handler (the module asserts it when loaded).
    assert set(HANDLERS) == {a.name for a in ACTIONS.values() if a.roles}


@sqlite_only
async def test_dispatch_targets_and_a_queue_row(services: Services) -> None:
    s = services
    filing = await s.cases.file(CaseDraft(text="路灯不亮" * 30, item_code="C0118", grid_code=GRID),
                                ReporterRef("hotline", "call-1"))
    case = filing.case
    targets = dispatch_targets(s, case)
    assert [code for code, _ in targets[:3]] == [
        f"grid:{GRID}", "street:440604001", "district:440604"]
    assert targets[1][1] == f"{t('console.level_street')} · 祖庙街道"
    # The case's own department first, then every other the catalogue names, once each.
    departments = [code for code, _ in targets[3:]]
    assert departments[0] == f"department:{case.department}"
    assert len(departments) == len(set(departments)) == len(
        {i.department for i in s.catalogue.items})
    row = row_view(s, case)
    assert (row["number"], row["grid_name"], row["channel_label"]) == (
        case.number, "同济社区第3网格", "热线")
    assert len(row["text"]) == 80 and row["overdue"] is False
    assert row_view(s, case, case.handling_due + timedelta(minutes=1))["overdue"] is True
