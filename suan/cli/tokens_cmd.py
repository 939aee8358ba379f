"""`suan tokens`: create, list, revoke and rotate your API tokens (a cluster admin: anyone's).

A new token's secret is printed once, alone on stdout (so `$(suan tokens create)` captures
it); its id and expiry go to stderr. Listings never show secrets."""

from __future__ import annotations

import time

import typer

from suan.cli.listing import (
    Column,
    JsonOption,
    Listing,
    NoHeaderOption,
    OutputOption,
    chosen,
    show,
)

EXPIRES_HELP = (
    'Lifetime: seconds or a duration ("30d", "12h", "90m"), or "never". '
    "Default: 90 days for a new token; the old token's lifetime on rotate."
)

tokens = typer.Typer(
    help="Your API tokens: create, list, revoke, rotate (cluster admins: anyone's).",
    no_args_is_help=True,
)


def _client():  # type: ignore[no-untyped-def]
    from suan.client import Client

    return Client()


def _when(stamp: float | None, missing: str = "-") -> str:
    if stamp is None:
        return missing
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def _issued(token: dict) -> None:
    """Print a new token: the secret on stdout, what it is on stderr."""
    typer.echo(token["token"])
    expiry = _when(token["expires_at"], "never")
    typer.echo(f"token {token['id']} for {token['user']}, expires {expiry}", err=True)


@tokens.command("create")
def tokens_create(
    name: str = typer.Option("", "--name", help="What the token is for (shown in listings)."),
    expires: str | None = typer.Option(None, "--expires", help=EXPIRES_HELP),
) -> None:
    """Create a token for yourself; print it (shown only once)."""
    with _client() as client:
        _issued(client.create_token(name, expires))


TOKEN_COLUMNS = tuple(
    Column(header) for header in ("ID", "USER", "NAME", "CREATED", "EXPIRES", "LAST USED", "NOTE")
)


@tokens.command("list")
def tokens_list(
    user: str | None = typer.Option(None, "--user", help="Another user's tokens (admins)."),
    all_users: bool = typer.Option(False, "--all", "-a", help="Every user's tokens (admins)."),
    output: OutputOption = None,
    no_header: NoHeaderOption = False,
    as_json: JsonOption = False,
) -> None:
    """List your tokens: id, name, created, expires, last used (never the secret)."""
    with _client() as client:
        listed = client.tokens(user, all_users)
    rows = []
    for token in listed:
        notes = ["expired"] if token["expired"] else []
        notes += ["this one"] if token["current"] else []
        rows.append([
            token["id"],
            token["user"],
            token["name"],
            _when(token["created_at"]),
            _when(token["expires_at"], "never"),
            _when(token["last_used_at"]),
            ", ".join(notes),
        ])
    show(Listing(TOKEN_COLUMNS, rows, listed), chosen(output, as_json), no_header)


@tokens.command("revoke")
def tokens_revoke(token_ids: list[str] = typer.Argument(..., help="Token ids.")) -> None:
    """Revoke tokens by id: they stop working at once."""
    with _client() as client:
        for token_id in token_ids:
            client.revoke_token(token_id)
            typer.echo(f"token {token_id} revoked")


@tokens.command("rotate")
def tokens_rotate(
    token_id: str = typer.Argument(..., help="Token id."),
    expires: str | None = typer.Option(None, "--expires", help=EXPIRES_HELP),
) -> None:
    """Replace a token by a new one (printed once); the old one is revoked in the same step."""
    with _client() as client:
        _issued(client.rotate_token(token_id, expires))


def register(app: typer.Typer) -> None:
    app.add_typer(tokens, name="tokens")
