"""adapters/channels.py: the list of chat channels and the three things asked of each."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest
from quart import Blueprint

from adapters import channels
from bot.services import Services
from tests.fixtures.sms.fake_tencent import FakeTencentSms
from tests.test_sms import SECRET_ID, SECRET_KEY, TEMPLATES, sms_config


def test_each_listed_channel_offers_a_blueprint_slot_and_an_async_start() -> None:
    modules = channels.modules()
    assert [m.__name__ for m in modules] == channels.CHANNEL_MODULES
    for module in modules:
        assert hasattr(module, "blueprint"), module.__name__  # None when nothing comes in
        assert inspect.iscoroutinefunction(module.start), module.__name__
        stop = getattr(module, "stop", None)
        assert stop is None or inspect.iscoroutinefunction(stop), module.__name__


def test_blueprints_leave_out_outbound_only_channels() -> None:
    blueprints = channels.blueprints()
    assert all(isinstance(b, Blueprint) for b in blueprints)
    assert [b.name for b in blueprints] == ["telegram", "wechat", "wechat_mp", "wecom"]


@pytest.fixture
def fake_sms() -> Iterator[FakeTencentSms]:
    fake = FakeTencentSms(SECRET_ID, SECRET_KEY, templates=dict(TEMPLATES)).start()
    yield fake
    fake.stop()


@pytest.mark.parametrize("services", ["sqlite+embedded"], indirect=True)
async def test_start_all_starts_only_configured_channels_and_stop_all_ends_them(
        services: Services, fake_sms: FakeTencentSms) -> None:
    polling = set(services.outbox.senders)
    await channels.start_all(services)  # the shipped config: no tokens, nothing starts
    assert services.channels == {} and set(services.outbox.senders) == polling
    services.config.sms = sms_config(fake_sms)
    await channels.start_all(services)
    assert set(services.channels) == {"sms"} and "sms" in services.outbox.senders
    await channels.stop_all(services)
    assert services.channels == {} and set(services.outbox.senders) == polling
