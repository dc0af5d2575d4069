"""The SMS channel: case updates to hotline callers who gave a mobile number and agreed.

Outbound only (no webhook). An outbox row to channel "sms" names an opaque hotline reporter;
the sender looks up their number (bot.sms_consent.phone_for: only while the consent
stands), picks the approved template for the kind of update (adapters/sms/templates.py) and
sends it through the configured provider. The number is never logged (masked) and never
leaves this module but to the provider. A failed send is retried by the outbox; a message
already accepted by the provider is marked in Redis by the row's idempotency key, so a
retry after a lost acknowledgement does not text the caller twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from adapters.sms.provider import SmsProvider, SmsRefused, TemplateSms
from adapters.sms.templates import fill
from bot.config import SmsConfig
from bot.kv import PREFIX
from bot.outbox import Notice, PermanentDeliveryError
from bot.services import Services
from bot.sms_consent import SMS_CHANNEL, masked, phone_for

log = logging.getLogger(__name__)
CHANNEL = SMS_CHANNEL
blueprint = None  # nothing comes in by SMS
SENT_MARK_TTL_S = 7 * 24 * 3600  # longer than the outbox keeps retrying a row


@dataclass
class SmsChannel:
    services: Services
    config: SmsConfig
    provider: SmsProvider

    async def send(self, notice: Notice) -> None:
        """Outbox sender: recipient = the hotline reporter's opaque id."""
        phone = await phone_for(self.services.db, notice.recipient) if notice.recipient else None
        if phone is None:
            raise PermanentDeliveryError("no mobile number with consent for this reporter")
        filled = fill(self.config, notice.payload)
        if filled is None:
            raise PermanentDeliveryError(
                f"no SMS template for {notice.payload.get('say', {}).get('key', '?')}")
        mark = f"{PREFIX}smssent:{notice.idempotency_key}"
        if await self.services.redis.get(mark) is not None:
            return  # accepted before; only the outbox's record of it was lost
        try:
            await self.provider.send(TemplateSms(phone, filled.template_id, filled.params,
                                                 notice.idempotency_key))
        except SmsRefused as exc:
            log.warning("SMS to %s refused: %s", masked(phone), exc)
            raise PermanentDeliveryError(str(exc)) from exc
        await self.services.redis.set(mark, "1", ex=SENT_MARK_TTL_S)


def make_provider(config: SmsConfig) -> SmsProvider:
    if config.provider == "tencent":
        from adapters.sms.tencent import TencentSms  # only deployments that send SMS load it

        return TencentSms(config)
    raise ValueError(f"unknown SMS provider {config.provider!r}")


def configured(config: SmsConfig) -> bool:
    return bool(config.provider and config.sdk_app_id)


async def start(services: Services) -> None:
    cfg = services.config.sms
    if not configured(cfg):
        services.channels.pop(CHANNEL, None)
        return
    channel = SmsChannel(services, cfg, make_provider(cfg))
    services.channels[CHANNEL] = channel
    services.outbox.register(CHANNEL, channel.send)


async def stop(services: Services) -> None:
    channel = services.channels.pop(CHANNEL, None)
    if channel is not None:
        services.outbox.unregister(CHANNEL)
        await channel.provider.close()
