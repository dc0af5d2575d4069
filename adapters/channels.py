"""The chat channels gridbot serves. Each module listed here provides:

- `blueprint`: a Quart Blueprint with its webhook routes (or None), and
- `async def start(services: Services) -> None`: called once the services exist, when it
  reads its config section, builds its client and adds its outbox senders
  (`services.outbox.register(channel, send)`; the started channel is kept in
  `services.channels[name]`). A channel whose config is empty (no token)
  starts nothing: its routes answer 404 and its outbox rows wait.
- optionally `async def stop(services: Services) -> None`, called when the server stops.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from quart import Blueprint

from bot.services import Services

CHANNEL_MODULES: list[str] = [
    "adapters.telegram",
    "adapters.wechat",
    "adapters.wechat_mp",
    "adapters.wecom",
    "adapters.sms",
]


def modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in CHANNEL_MODULES]


def blueprints() -> list[Blueprint]:
    return [m.blueprint for m in modules() if getattr(m, "blueprint", None) is not None]


async def start_all(services: Services) -> None:
    for module in modules():
        await module.start(services)


async def stop_all(services: Services) -> None:
    """Let channels that hold clients (Telegram's Application) shut them down cleanly."""
    for module in modules():
        stop = getattr(module, "stop", None)
        if stop is not None:
            await stop(services)
