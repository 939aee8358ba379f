"""Everything the server shows to a browser, as one router the API includes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from suan.web.docs import docs_router
from suan.web.pages import web_pages


def web_router(title: str, services: Any, session_dep: Any, visible_job: Any) -> APIRouter:
    """The docs pages (suan.web.docs) and the dashboard (suan.web.pages), over the API's
    services, per-request store session and visibility rule for jobs."""
    router = APIRouter(include_in_schema=False)
    router.include_router(docs_router(title))
    router.include_router(web_pages(services, session_dep, visible_job))
    return router
