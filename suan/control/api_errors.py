"""How the API answers errors, and how its OpenAPI document declares them.

Every error body is JSON `{"detail": ...}`: a sentence for 401, 403, 404, 409 and 503; for 422
a list of problems, each with `loc` (where, as a list of keys), `msg` and `type`, and for
problems in a spec file also `path` (the dotted path of docs/job-spec.md) and `allowed`.
`ErrorBody` is that shape; `error_responses(...)` declares it for a route's error codes.

Bodies are written as ASCII JSON (`SafeJSONResponse`): text a client sent may hold characters
(lone surrogates) that UTF-8 cannot carry, and echoing them back must not fail.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

_MEANINGS = {
    400: "The request body could not be read (not UTF-8 JSON).",
    401: "No token, or an unknown one.",
    403: "The caller may not do this.",
    404: "No such job.",
    409: "The current state refuses the request.",
    422: "Invalid input: every problem, with where it is and what is allowed.",
    503: "The server could not answer in time; try again.",
}


class SafeJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: valid UTF-8 whatever the content."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False).encode("ascii")


class Problem(BaseModel):
    """One problem of a 422: `loc` and `msg` always; `path` and `allowed` for spec files."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int]
    msg: str
    type: str
    path: str | None = None
    allowed: str | None = None


class ErrorBody(BaseModel):
    """Every error the API answers: a sentence, or (422) the list of problems."""

    detail: str | list[Problem]


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that may answer `codes`, each with an ErrorBody."""
    return {code: {"model": ErrorBody, "description": _MEANINGS[code]} for code in codes}


def install_error_handlers(app: FastAPI) -> None:
    """Answer HTTP errors and request validation errors with SafeJSONResponse bodies."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        headers = getattr(error, "headers", None)
        return SafeJSONResponse(
            status_code=error.status_code,
            content={"detail": jsonable_encoder(error.detail)},
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        return SafeJSONResponse(
            status_code=422, content={"detail": jsonable_encoder(error.errors())}
        )
