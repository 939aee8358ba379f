"""`GET /metrics`: the Prometheus text exposition of the server's metrics, for Prometheus
scraping with the scrape token (suan.control.metrics_token) or a cluster admin's API token as
`Authorization: Bearer TOKEN`; 401 without one.

    app.include_router(metrics_router(services))

What it answers: the event metrics of suan.control.metrics, the gauges of
suan.control.metrics_collector and the server process's own (docs/metrics.md).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from suan.control.api_errors import error_responses
from suan.control.auth import identify
from suan.control.metrics import ControlMetrics
from suan.control.metrics_collector import StoreCollector

SCRAPE_HINT = ("pass the scrape token (<home>/metrics-token, or the server config's "
               "metrics.token or metrics.tokenFile) or a cluster admin's token as "
               "`Authorization: Bearer TOKEN`")


def metrics_router(services: Any) -> APIRouter:
    """The `/metrics` route over `services` (its store, inventory, `metrics` — a
    ControlMetrics, made here when None — and `metrics_token`)."""
    router = APIRouter()
    if services.metrics is None:
        services.metrics = ControlMetrics()
    registry = services.metrics.registry
    if services.store is not None:
        registry.register(StoreCollector(services.store, services.inventory))

    def allowed(token: str) -> bool:
        expected = services.metrics_token
        if expected and hmac.compare_digest(token.encode(), expected.encode()):
            return True
        with services.store.plain_session() as session:
            caller = identify(session, token)
        return caller is not None and caller.admin

    @router.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {"content": {CONTENT_TYPE_LATEST: {}},
                  "description": "Prometheus text format (docs/metrics.md)."},
            **error_responses(401),
        },
    )
    def metrics(authorization: Annotated[str | None, Header()] = None) -> Response:
        """Every metric of this server in Prometheus text format (scrape token or a cluster
        admin's token)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip() or not allowed(token.strip()):
            raise HTTPException(401, f"metrics need a token: {SCRAPE_HINT}",
                                headers={"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
