"""A nonce of this server process, drawn when it starts: `/healthz` answers it and
`home/server.json` records it, so that `suan up` knows its own server from another one that
answers on the same port (another home's, or one that took the port after it died)."""

from __future__ import annotations

import uuid

INSTANCE = uuid.uuid4().hex
