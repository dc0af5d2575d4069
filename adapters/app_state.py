"""One app's gridbot state — its config and services — kept on `app.extensions` (the
Quart/Flask convention), so that two apps in one process (tests, the CLI) never share it."""

from __future__ import annotations

from dataclasses import dataclass

from quart import Quart, current_app

from bot.config import Config
from bot.services import Services

EXTENSION = "gridbot"


@dataclass
class AppState:
    config: Config
    services: Services | None  # built at start-up when the app was made without them
    owns_services: bool = False  # built by the app: closed with it


def install(app: Quart, config: Config, services: Services | None) -> AppState:
    state = AppState(config, services)
    app.extensions[EXTENSION] = state
    return state


def state_of(app: Quart) -> AppState:
    state: AppState = app.extensions[EXTENSION]
    return state


def services() -> Services:
    """The running app's services (inside a request or the app's own tasks)."""
    built = state_of(current_app).services
    if built is None:
        raise RuntimeError("gridbot services are not built yet (the app has not started)")
    return built


def config() -> Config:
    return state_of(current_app).config
