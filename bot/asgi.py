"""ASGI entry point for hypercorn: `hypercorn bot.asgi:app` (config from $GRIDBOT_CONFIG)."""

from bot.app import create_app
from bot.config import load_config

app = create_app(load_config())
