"""The token routes of the REST API: a user creates, lists, revokes and rotates their own API
tokens; a cluster admin anyone's. A token is shown once, when it is made; listings show its
public id, name, times and state, never the secret.

    POST   /v1/tokens                {"name", "expires_in_s"}  -> 201 {id, ..., "token"}
    GET    /v1/tokens?user=NAME&all=BOOL                       -> {"tokens": [...]}
    DELETE /v1/tokens/{id}                                     -> {"id", "revoked": true}
    POST   /v1/tokens/{id}/rotate    {"expires_in_s"}          -> 201 {id, ..., "token"}

`expires_in_s` is whole seconds (1 s to 10 years); left out it is 90 days for a new token and
the old token's lifetime for a rotated one; `null` means the token never expires. A token id
that is not the caller's is a 404, exactly as one that does not exist.
"""

import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import Field, StrictInt

from suan.control.api_errors import error_responses
from suan.control.auth import (
    DEFAULT_TOKEN_LIFETIME_S,
    MAX_TOKEN_LIFETIME_S,
    Identity,
    TokenNotFound,
    issue_token,
    list_tokens,
    revoke_token,
    rotate_token,
    token_info,
)
from suan.control.bodies import StrictBody
from suan.control.models import TokenRow

TokenId = Annotated[str, Path(min_length=1, max_length=16, pattern=r"^[0-9a-f]+$")]
Lifetime = Annotated[StrictInt | None, Field(ge=1, le=MAX_TOKEN_LIFETIME_S)]


class TokenRequest(StrictBody):
    """A new token for the caller: a name for people, and its lifetime in seconds (left out:
    90 days; null: never expires)."""

    name: str = Field(default="", max_length=200)
    expires_in_s: Lifetime = DEFAULT_TOKEN_LIFETIME_S


class RotateRequest(StrictBody):
    """The replacement's lifetime in seconds (left out: the old token's; null: never)."""

    expires_in_s: Lifetime = None


def _issued(row: TokenRow, secret: str, caller: Identity) -> dict[str, Any]:
    return {**token_info(row, caller), "token": secret}


def token_router(caller_dep: Any, session_dep: Any) -> APIRouter:
    """The token routes, with the app's dependencies for the caller and the request's session
    (Annotated types)."""
    router = APIRouter()

    @router.post("/v1/tokens", status_code=201, responses=error_responses(400, 401, 422))
    def create_token(body: TokenRequest, caller: caller_dep, session: session_dep) -> dict:
        """A new token for the caller, returned once (its secret is never shown again)."""
        now = time.time()
        expires_at = None if body.expires_in_s is None else now + body.expires_in_s
        row, secret = issue_token(session, caller.user, body.name, expires_at, now)
        return _issued(row, secret, caller)

    @router.get("/v1/tokens", responses=error_responses(401, 403, 422))
    def tokens(
        caller: caller_dep,
        session: session_dep,
        user: Annotated[str | None, Query(max_length=63)] = None,
        include_all: Annotated[bool, Query(alias="all")] = False,
    ) -> dict[str, Any]:
        """The caller's tokens; a cluster admin may ask for another `user`'s or `all`."""
        wanted = caller.user if user is None else user
        if (include_all or wanted != caller.user) and not caller.admin:
            raise HTTPException(
                403, f"only a cluster admin lists other users' tokens; {caller.user} is not one"
            )
        rows = list_tokens(session, None if include_all else wanted)
        return {"tokens": [token_info(row, caller) for row in rows]}

    @router.delete("/v1/tokens/{token_id}", responses=error_responses(401, 404, 422))
    def revoke(token_id: TokenId, caller: caller_dep, session: session_dep) -> dict[str, Any]:
        """Revoke a token (the caller's own; any for a cluster admin): it stops working now."""
        try:
            row = revoke_token(session, caller, token_id)
        except TokenNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        return {"id": row.id, "user": row.user, "revoked": True}

    @router.post(
        "/v1/tokens/{token_id}/rotate",
        status_code=201,
        responses=error_responses(400, 401, 404, 422),
    )
    def rotate(
        token_id: TokenId,
        caller: caller_dep,
        session: session_dep,
        body: RotateRequest | None = None,
    ) -> dict[str, Any]:
        """A new token in place of `token_id`, which is revoked in the same transaction."""
        body = body or RotateRequest()
        keep = "expires_in_s" not in body.model_fields_set
        try:
            row, secret = rotate_token(session, caller, token_id, body.expires_in_s, keep)
        except TokenNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        return _issued(row, secret, caller)

    return router
