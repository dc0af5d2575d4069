"""bot/cases/views.py: reading cases and presenting them — labels, local times, a
reporter's own cases, and the public view and timeline (no identity, no internal notes)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.cases import CaseDraft, ReporterRef
from bot.models import Case, CaseEvent, CaseMedia
from bot.services import Services
from bot.texts import t

GRID = "440604001030103"  # 同济社区第3网格
HERE = (23.0215, 113.1214)
AT = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
sqlite_only = pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)


def _case(**values: object) -> Case:
    fields: dict[str, object] = dict(
        number="20261123-0001", status="handled", item_code="C0121", item_name="报刊亭",
        big_class="公用设施", department="区城市管理和综合执法局", current_level="grid",
        assignee=f"grid:{GRID}", urgent=False, text="报刊亭破损，摊主电话13812345678",
        address="同济路1号", lat=HERE[0], lon=HERE[1], grid_code=GRID, created_at=AT,
        response_due=None, handling_due=AT, closed_at=None, rating=None, merged_into=None,
        events=[], media=[])
    fields.update(values)
    return Case(**fields)


def _event(action: str, to: str | None = None, note: str = "", actor: str = "system"
           ) -> CaseEvent:
    return CaseEvent(at=AT, actor=actor, action=action, from_status=None, to_status=to,
                     note=note)


@sqlite_only
def test_labels_and_local_times(services: Services) -> None:
    views = services.cases.views
    assert views.item_label(_case()) == "公用设施 › 报刊亭"
    assert views.local(AT) == "2026-11-23 09:00" and views.local(None) == ""
    assert views.assignee_label(f"grid:{GRID}") == "同济社区第3网格"
    assert views.assignee_label("street:440604001") == "祖庙街道"
    assert views.assignee_label("department:佛山水业集团") == "佛山水业集团"
    assert views.assignee_label("grid:no-such-grid") == "no-such-grid"


@sqlite_only
def test_the_public_timeline_tells_what_happened_in_public_words(services: Services) -> None:
    views = services.cases.views
    case = _case(events=[
        _event("report", "reported"), _event("transition", "dispatched", "派往同济社区"),
        _event("remind", note="【办理提醒】内部"), _event("urge", note="督办：加快"),
        _event("attach", note="附近也有人反映"),
        _event("transition", "handled", "已修复，车牌粤E12345 已通知", actor="worker:3:王五"),
    ])
    timeline = views.public_timeline(case)
    assert [e["action"] for e in timeline] == ["report", "transition", "attach", "transition"]
    assert [e["note"] for e in timeline] == [
        t("public.status.reported"), t("public.status.dispatched"), t("public.attach"),
        t("public.handled_with", note="已修复，车牌粤E***45 已通知")]
    assert "王五" not in str(timeline) and "督办" not in str(timeline)
    assert timeline[1]["status_label"] == t("status.dispatched")
    # The default 办结 note and a merge read as the status and the merge.
    plain = views.public_timeline(_case(events=[_event("transition", "handled",
                                                        t("event.resolved"))]))
    assert plain[0]["note"] == t("public.status.handled")
    merged = views.public_timeline(_case(merged_into="20261123-0009", events=[
        _event("transition", "rejected", "合并")]))
    assert merged[0]["note"] == t("public.merged", number="20261123-0009")


@sqlite_only
def test_a_follower_and_the_public_see_the_status_not_the_report(services: Services) -> None:
    views = services.cases.views
    case = _case(media=[CaseMedia(ref="photo-1", kind="photo")])
    own = views.public_view(case)
    assert own["own"] is True and own["text"] == case.text and own["address"] == "同济路1号"
    assert own["photos"] == 1 and own["grid"]["name"] == "同济社区第3网格"
    assert own["created_at"] == AT.isoformat() and own["response_due"] is None
    case.viewer_owns = False  # what get/for_reporter found: a follower
    follower = views.public_view(case)
    assert follower["own"] is False and follower["text"] is None
    assert follower["address"] == "同济社区第3网格" and follower["photos"] == 0
    public = views.public_view(_case(), with_timeline=False, own=False)
    assert "timeline" not in public and "photos" not in public and public["text"] is None


@sqlite_only
async def test_reading_a_reporters_cases(services: Services) -> None:
    s = services
    me, follower = ReporterRef("test", "me"), ReporterRef("test", "follower")
    numbers = []
    for dlat in (0.0, 0.01, 0.02):
        filing = await s.cases.file(CaseDraft(text="报刊亭破损", item_code="C0121",
                                              grid_code=GRID, lat=HERE[0] + dlat, lon=HERE[1]),
                                    me)
        numbers.append(filing.case.number)
    await s.cases.file(CaseDraft(text="报刊亭坏了", item_code="C0121", grid_code=GRID,
                                 lat=HERE[0], lon=HERE[1]), follower)
    mine = await s.cases.for_reporter(me, limit=2)
    assert [c.number for c in mine] == numbers[:0:-1] and all(c.viewer_owns for c in mine)
    [followed] = await s.cases.for_reporter(follower)
    assert followed.number == numbers[0] and followed.viewer_owns is False
    assert await s.cases.get(numbers[1], follower) is None  # not theirs
    assert await s.cases.get(numbers[1], ReporterRef("wechat", "me")) is None  # other channel
    whole = await s.cases.get(numbers[0])
    assert whole is not None and len(whole.events) == 4  # the trail and the attach
    assert [c.number for c in await s.cases.list(limit=2)] == [numbers[2], numbers[1]]
    assert await s.cases.list(status="closed") == []
