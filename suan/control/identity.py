"""Which operating-system account a job's ranks run as.

    policy = IdentityPolicy(run_as="submitter", accounts={"alice": "alice"})
    policy.resolve("alice")       # OsIdentity("alice", 1001, 1001)

`run_as: server` (the default) runs every rank as the server's own account. `run_as:
submitter` runs each job as the account of the Suan user who submitted it: the account
`accounts` maps the user to, else the account with the user's own name. The server must run as
root to do that (it hands each job's files to its account); root is never a job's account.
"""

from __future__ import annotations

import pwd
from collections.abc import Mapping
from dataclasses import dataclass, field

from suan.exec import EngineError, OsIdentity

RUN_AS = ("server", "submitter")


@dataclass(frozen=True)
class IdentityPolicy:
    """See the module docstring."""

    run_as: str = "server"
    accounts: Mapping[str, str] = field(default_factory=dict)

    def resolve(self, user: str) -> OsIdentity | None:
        """The account for Suan user `user`, None for the server's own; EngineError (a refused
        launch, with the reason) when the account does not exist or is root."""
        if self.run_as != "submitter":
            return None
        name = self.accounts.get(user, user)
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise EngineError(
                f"no OS account {name!r} for Suan user {user!r}: create it, or map the user "
                "to an account in the server config's identity.accounts"
            ) from None
        if entry.pw_uid == 0:
            raise EngineError(f"Suan user {user!r} maps to {name!r}, a root account: refused")
        return OsIdentity(name, entry.pw_uid, entry.pw_gid)
