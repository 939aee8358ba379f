"""The OpenAPI docs pages, `/docs` (Swagger UI) and `/redoc`, with every script, style sheet and
icon served by this server from the `fastapi-offline` package (which ships the swagger-ui-dist
and redoc bundles): the pages work with no internet.

    GET /docs                       Swagger UI over /openapi.json
    GET /redoc                      ReDoc over /openapi.json
    GET /static/docs/{asset}        swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js,
                                    favicon.png
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

ASSET_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSET_URL = "/static/docs"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}


def docs_router(title: str, openapi_url: str = "/openapi.json") -> APIRouter:
    """The two docs pages and their assets, for an API called `title`."""
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{ASSET_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSET_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSET_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @router.get("/redoc")
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{ASSET_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSET_URL}/favicon.png",
            with_google_fonts=False,
        )

    @router.get(ASSET_URL + "/{asset}")
    def asset(asset: str) -> FileResponse:
        if asset not in ASSETS:
            raise HTTPException(404, f"no docs asset {asset!r}")
        return FileResponse(
            ASSET_DIR / asset,
            media_type=ASSETS[asset],
            headers={"Cache-Control": "public, max-age=86400"},
        )

    return router
