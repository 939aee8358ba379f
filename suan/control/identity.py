"""Which operating-system account a job's ranks run as.

    policy = IdentityPolicy(run_as="submitter", accounts={"alice": "alice"})
    policy.resolve("alice")       # OsIdentity("alice", 1001, 1001)

`run_as: server` (the default) runs every rank as the server's own account. `run_as:
submitter` runs each job as the account of the Suan user who submitted it: the account
`accounts` maps the user to, else the account with the user's own name. The server must run as
root to do that (it hands each job's files to its account); root is never a job's account.
With `create_accounts`, a user without an account (and without a mapping) gets one made for
them the first time a job of theirs launches: `suan-<user>`, a system account with no login
shell, no home and no password, so no one can log in as it.
"""

from __future__ import annotations

import pwd
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

from suan.exec import EngineError, OsIdentity

RUN_AS = ("server", "submitter")


@dataclass(frozen=True)
class IdentityPolicy:
    """See the module docstring."""

    run_as: str = "server"
    accounts: Mapping[str, str] = field(default_factory=dict)
    create_accounts: bool = False

    def resolve(self, user: str) -> OsIdentity | None:
        """The account for Suan user `user`, None for the server's own; EngineError (a refused
        launch, with the reason) when the account does not exist or is root."""
        if self.run_as != "submitter":
            return None
        name = self.accounts.get(user, user)
        if self.create_accounts and user not in self.accounts:
            name = made_account(user)
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


def made_account(user: str) -> str:
    """The account `suan-<user>`, made when missing (see the module docstring); EngineError
    when it cannot be made."""
    name = f"suan-{user}"[:32]
    try:
        pwd.getpwnam(name)
        return name
    except KeyError:
        pass
    if shutil.which("useradd") is None:
        raise EngineError(f"cannot make the account {name!r} for {user!r}: no useradd here")
    done = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 9):  # 9: made meanwhile by someone else
        raise EngineError(f"cannot make the account {name!r}: {done.stderr.strip()}")
    return name
