"""The scrape token of `/metrics`: who may read the server's metrics besides cluster admins.

    metrics:                    # in the server config file (suan.control.settings)
      tokenFile: /etc/suan/metrics-token     # or  token: "..." (at least 16 characters)

With neither, the server keeps one in `<home>/metrics-token` (mode 0600), made on the first
start and read on every later one, for Prometheus's `authorization.credentials_file`. The
scrape token opens `/metrics` and nothing else.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from suan.errors import SuanError

TOKEN_FILE = "metrics-token"
MIN_TOKEN_CHARS = 16
"""A shorter token could be guessed; 16 URL-safe characters hold 96 bits."""


class MetricsSection(BaseModel):
    """`metrics:` the scrape token, given (`token`), read from a file (`tokenFile`), or,
    with neither, kept in `<home>/metrics-token`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    token: str | None = Field(default=None, min_length=MIN_TOKEN_CHARS, max_length=4096,
                              pattern=r"^[\x21-\x7e]+$")
    token_file: str | None = Field(default=None, min_length=1, alias="tokenFile")

    @model_validator(mode="after")
    def _one_source(self) -> MetricsSection:
        if self.token is not None and self.token_file is not None:
            raise ValueError("give either token or tokenFile, not both")
        return self


def scrape_token(home: Path, section: MetricsSection) -> str:
    """The scrape token `section` names, else the one kept in `home` (made when missing).
    Raises SuanError naming `metrics.tokenFile` when that file cannot be read or is short."""
    if section.token is not None:
        return section.token
    if section.token_file is not None:
        return _read_token(Path(section.token_file).expanduser())
    path = home / TOKEN_FILE
    if path.exists():
        return _read_token(path)
    token = secrets.token_urlsafe(32)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(token + "\n")
    return token


def _read_token(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SuanError(f"metrics.tokenFile: cannot read the scrape token from {path}: "
                        f"{getattr(exc, 'strerror', None) or exc}") from None
    if len(token) < MIN_TOKEN_CHARS or any(not 0x21 <= ord(c) <= 0x7E for c in token):
        raise SuanError(f"metrics.tokenFile: {path} must hold one token of at least "
                        f"{MIN_TOKEN_CHARS} printable characters, without spaces")
    return token
