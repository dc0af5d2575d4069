"""What an SMS provider does for gridbot: send one approved template with its parameters to
one mobile number, and say which of the configured templates it can use. Providers differ
in SDK and error codes; the channel (adapters/sms/__init__.py) sees only this."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class TemplateSms:
    phone: str  # E.164, +8613812345678
    template_id: str
    params: list[str]  # in the template's order
    context: str  # echoed back by the provider: the outbox row's idempotency key


class SmsRefused(Exception):
    """The provider will not send this message as it is (a wrong number, a blocked one, an
    unapproved template): retrying the same request will not help."""


class SmsProvider(Protocol):
    async def send(self, message: TemplateSms) -> None:
        """Send, or raise SmsRefused (permanent) or any other error (worth a retry)."""

    async def approved(self, template_ids: list[str]) -> set[str]:
        """Which of these templates the provider has approved for sending."""

    async def close(self) -> None: ...
