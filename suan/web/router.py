"""Everything the server shows to a browser, as one router the API includes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from suan.web.docs import docs_router


def web_router(title: str) -> APIRouter:
    """The docs pages (suan.web.docs) and the dashboard (suan.web.pages)."""
    router = APIRouter(include_in_schema=False)
    router.include_router(docs_router(title))
    return router


__all__: list[Any] = ["web_router"]
