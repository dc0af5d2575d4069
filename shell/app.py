"""The Quart application factory."""

from __future__ import annotations

import asyncio
import logging

from quart import Quart, Response, jsonify

from adapters import app_state, channels, guard
from adapters.console import console
from adapters.console.vendor import vendor
from adapters.http_api import api
from adapters.open311 import open311
from adapters.openapi import openapi_blueprint
from adapters.public_map import public_map
from adapters.suggest_api import suggest_api
from bot.config import Config
from bot.services import Services, build_services

log = logging.getLogger(__name__)


def create_app(config: Config, services: Services | None = None,
               background: bool = True) -> Quart:
    """`background`: run the outbox and timer runners in this process (tests drive them)."""
    app = Quart("gridbot")
    state = app_state.install(app, config, services)
    app.config["MAX_CONTENT_LENGTH"] = config.server.max_body_bytes
    app.register_blueprint(api)
    app.register_blueprint(suggest_api)
    app.register_blueprint(console)  # /console: the staff console
    app.register_blueprint(vendor)  # /console/vendor: ECharts and Leaflet, served locally
    for blueprint in channels.blueprints():
        app.register_blueprint(blueprint)
    app.register_blueprint(openapi_blueprint)  # GET /api/v1/openapi.json
    app.register_blueprint(open311)  # /open311/v2: Open311 GeoReport v2
    app.register_blueprint(public_map)  # /: the public map, no login
    guard.install(app)  # rate limits and the API's security headers

    @app.before_serving
    async def _start() -> None:
        if state.services is None:
            state.services = await build_services(config)
            state.owns_services = True
        services = state.services
        # Load the model now: the first suggestion must not wait seconds for it.
        try:
            await asyncio.to_thread(services.models.get)
        except FileNotFoundError:
            log.warning("no model yet: run `gridbot train`; reports cannot be classified")
        await channels.start_all(services)
        if background:
            # Quart sets shutdown_event first and then waits for background tasks: the
            # loops finish their pass and stop, instead of being cancelled after 5 s.
            app.add_background_task(services.outbox.run_forever, app.shutdown_event)
            app.add_background_task(services.timers.run_forever, app.shutdown_event)
            app.add_background_task(services.alerts.run_forever, app.shutdown_event)
            app.add_background_task(services.digest.run_forever, app.shutdown_event)
            app.add_background_task(services.duty.run_forever, app.shutdown_event)

    @app.after_serving
    async def _stop() -> None:
        if state.services is None:
            return
        await channels.stop_all(state.services)
        if state.owns_services:
            await state.services.close()

    @app.get("/healthz")
    async def healthz() -> Response:
        return jsonify({"ok": True})

    @app.get("/favicon.ico")
    async def favicon() -> Response:
        """Browsers ask for it on every console page: no content, not a 404 in the log."""
        return Response(b"", status=204)

    @app.errorhandler(413)
    async def too_large(_error: Exception) -> Response:
        response = jsonify({"error": "request body too large"})
        response.status_code = 413
        return response

    return app
