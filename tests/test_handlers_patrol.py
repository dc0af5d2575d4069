"""handlers/patrol.py: a grid worker's patrol in chat — start, the live track (or pins on a
channel without live locations), end with its figures, and what is not the patrol's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.messages import InboundMessage, Location
from bot.services import Services
from bot.texts import t
from handlers.patrol import END_WORDS, START_WORDS, from_worker

GRID = "440604001030103"  # 同济社区第3网格
TRACK = [(23.0214, 113.1214), (23.0204, 113.1215), (23.0194, 113.1215)]


def _text(outcome: object) -> str:
    assert outcome is not None
    return "\n".join(r.text for r in outcome.replies)  # type: ignore[attr-defined]


async def _workers(s: Services) -> None:
    now = datetime.now(UTC)
    await s.teams.add_worker("周坚怡", "grid_worker", f"grid:{GRID}", "telegram", "w1", now)
    await s.teams.add_worker("街道员", "street_staff", "street:440604001", "telegram", "w2", now)
    await s.teams.add_worker("叶明贞", "grid_worker", f"grid:{GRID}", "wecom", "w3", now)


def _live(user: str, point: tuple[float, float], live: str, channel: str = "telegram"
          ) -> InboundMessage:
    return InboundMessage(channel, user, location=Location(*point), live=live)


@pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)
async def test_a_patrol_with_a_live_track(services: Services) -> None:
    s = services
    await _workers(s)
    # Live locations before a patrol: offered a start; their updates stay silent.
    early = await from_worker(_live("w1", TRACK[0], "start"), s)
    assert _text(early) == t("patrol.not_started")
    assert early.replies[0].buttons[0].value == START_WORDS[0]  # type: ignore[union-attr]
    assert (await from_worker(_live("w1", TRACK[0], "update"), s)).replies == []  # type: ignore[union-attr]
    started = await from_worker(InboundMessage("telegram", "w1", "开始巡查"), s)
    assert _text(started) == t("patrol.started", grid="同济社区第3网格")  # no pin advice
    for point in TRACK:
        assert (await from_worker(_live("w1", point, "update"), s)).replies == []  # type: ignore[union-attr]
    ended = _text(await from_worker(InboundMessage("telegram", "w1", " /PATROL_END "), s))
    assert ended.startswith("巡查结束") and "0.22 公里" in ended
    assert _text(await from_worker(InboundMessage("telegram", "w1", END_WORDS[0]), s)) == t(
        "patrol.none_open")


@pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)
async def test_pins_on_a_channel_without_live_locations(services: Services) -> None:
    s = services
    await _workers(s)
    # Not on a patrol: a pin is an ordinary location, for the dialog.
    assert await from_worker(_live("w3", TRACK[0], "pin", "wecom"), s) is None
    started = _text(await from_worker(InboundMessage("wecom", "w3", "start patrol"), s))
    assert t("patrol.started_pins") in started
    assert _text(await from_worker(_live("w3", TRACK[1], "pin", "wecom"), s)) == t(
        "patrol.pin_kept")
    # With a report under way the pin is that report's place: the dialog answers.
    await s.dialogs.save("wecom", "w3", {"step": "await_location", "text": "井盖丢了"})
    assert await from_worker(_live("w3", TRACK[2], "pin", "wecom"), s) is None
    worker = await s.teams.worker("wecom", "w3")
    assert worker is not None
    patrol = await s.patrols.current(worker)
    assert patrol is not None
    ended = await s.patrols.end(worker, datetime.now(UTC))
    # Both pins made the track (the one before the start did not): one 111 m leg.
    assert ended is not None and 100 < ended.distance_m < 120


@pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)
async def test_not_the_patrols_business(services: Services) -> None:
    s = services
    await _workers(s)
    assert await from_worker(InboundMessage("telegram", "w1", "路灯不亮"), s) is None
    assert await from_worker(InboundMessage("telegram", "citizen", "开始巡查"), s) is None
    assert await from_worker(_live("citizen", TRACK[0], "start"), s) is None
    # Street staff have no grid to patrol.
    assert _text(await from_worker(InboundMessage("telegram", "w2", "开始巡查"), s)) == t(
        "patrol.grid_workers_only")
