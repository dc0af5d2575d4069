"""ASGI entry point for hypercorn: `hypercorn shell.asgi:app` (config from $GRIDBOT_CONFIG)."""

from bot.config import load_config
from shell.app import create_app

app = create_app(load_config())
