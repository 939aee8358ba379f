"""`suan server`: the control plane in one process — store, reconciler thread, REST API.

    serve(ServerOptions(home=Path("~/.suan"), devices="8xH100", port=8765))

On start it takes an exclusive lock on `home/server.lock` (one server per home), migrates the
store, makes sure `home/admin-token` holds a valid cluster-admin token, re-adopts the ranks an
earlier server left running, and writes `home/server.json` ({url, pid}) once it listens.
Stopping the server (SIGTERM, SIGINT) leaves running ranks alone: the next server adopts them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from suan.control.api import Services, create_app
from suan.control.auth import create_user, identify
from suan.control.config import ControlConfig, RankLimits
from suan.control.identity import IdentityPolicy
from suan.control.instance import INSTANCE
from suan.control.leader import Lease
from suan.control.metrics_token import MetricsSection, scrape_token
from suan.control.probe import check_shared_storage
from suan.control.reconciler import Reconciler
from suan.control.settings import read_server_file
from suan.control.store import Store, database_url
from suan.errors import SuanError
from suan.exec.engines import open_executor

log = logging.getLogger("suan.server")
DEFAULT_PORT = 8765
ADMIN_USER = "admin"


@dataclass(frozen=True)
class ServerOptions:
    """How to run the server.

    `engine` runs the ranks (local, slurm, ray, kubernetes) with `engine_settings` (its
    section of the server config file, docs/engines.md); on the local engine `devices` None
    means detected GPUs or 8 simulated H100. Engines other than local check at start that
    every node sees `home` (`probe_storage`, bounded by `probe_timeout_s`).
    """

    home: Path
    db: str | None = None
    devices: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    policy: str = "default"
    tick_s: float = 0.25
    restart_backoff_s: float = 2.0
    stop_grace_s: float = 10.0
    engine: str = "local"
    engine_settings: Mapping[str, Any] = field(default_factory=dict)
    probe_storage: bool = True
    probe_timeout_s: float = 60.0
    inventory_s: float = 5.0
    identity: IdentityPolicy = field(default_factory=IdentityPolicy)
    checkpoint_roots: tuple[str, ...] = ()
    checkpoint_write_gbs: float = 1.0
    limits: RankLimits = field(default_factory=RankLimits)
    lease_s: float = 5.0
    no_progress_timeout_s: float | None = None
    metrics: MetricsSection = field(default_factory=MetricsSection)


def options_from_file(path: Path, **overrides: Any) -> ServerOptions:
    """ServerOptions from a server config file (suan.control.settings), then `overrides`
    (the CLI's flags; None values are left to the file)."""
    settings = read_server_file(path)
    engine = overrides.pop("engine", None) or settings.engine
    values: dict[str, Any] = {
        "engine": engine,
        "engine_settings": settings.engine_section(engine),
        "policy": settings.policy,
        "probe_storage": settings.storage.probe,
        "probe_timeout_s": settings.storage.timeout_s,
        "inventory_s": settings.inventory_s,
        "identity": IdentityPolicy(
            settings.identity.run_as,
            dict(settings.identity.accounts),
            settings.identity.create_accounts,
        ),
        "checkpoint_roots": tuple(settings.storage.checkpoint_roots),
        "checkpoint_write_gbs": settings.storage.checkpoint_write_gbs,
        "limits": settings.limits.rank_limits(),
        "no_progress_timeout_s": settings.health.no_progress_timeout,
        "metrics": settings.metrics,
    }
    values.update({key: value for key, value in overrides.items() if value is not None})
    return ServerOptions(**values)


def default_home() -> Path:
    """SUAN_HOME, or ~/.suan."""
    return Path(os.environ.get("SUAN_HOME") or Path.home() / ".suan").expanduser()


@contextlib.contextmanager
def home_lock(home: Path, shared: bool = False) -> Iterator[None]:
    """Hold `home/server.lock` exclusively, or raise SuanError when another server has it.
    `shared` (a PostgreSQL store: servers share the home and elect a leader) takes no lock."""
    home.mkdir(parents=True, exist_ok=True)
    if shared:
        yield
        return
    with open(home / "server.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SuanError(
                f"another suan server is running with home {home} (several servers share a "
                "home only over a PostgreSQL store, where one leads and the others stand by)"
            ) from None
        yield


def ensure_admin_token(store: Store, home: Path) -> str:
    """The token in `home/admin-token` if it is valid (known, unexpired, a cluster admin's),
    else a new admin token written there, which never expires; `admin`'s other tokens are
    revoked then."""
    path = home / "admin-token"
    with store.session() as session:
        if path.exists():
            token = path.read_text().strip()
            found = identify(session, token)
            if found is not None and found.admin:
                return token
        token = create_user(
            session, ADMIN_USER, admin=True, rotate=True, token_name="admin-token file"
        )
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(token + "\n")
    return token


def build(options: ServerOptions) -> tuple[FastAPI, Reconciler, Store]:
    """The app, its reconciler (not started) and the store for `options`.

    Raises SuanError (or SpecError for a settings mistake) when the engine cannot be used:
    unreachable at start, or nodes that do not see the server's home.
    """
    if options.identity.run_as == "submitter" and os.geteuid() != 0:
        raise SuanError(
            "identity.runAs: submitter needs the server to run as root "
            "(it hands each job's files to the job's account)"
        )
    section = dict(options.engine_settings)
    if options.engine == "local" and options.devices is not None:
        section.setdefault("devices", options.devices)
    executor, simulated = open_executor(options.engine, options.home, section)
    isolation = getattr(executor, "isolation", None)
    if isolation is not None:
        log.info("%s", isolation.describe())
    config = ControlConfig(
        home=options.home,
        simulated=simulated,
        policy=options.policy,
        tick_s=options.tick_s,
        restart_backoff_s=options.restart_backoff_s,
        stop_grace_s=options.stop_grace_s,
        inventory_s=options.inventory_s,
        identity=options.identity,
        checkpoint_roots=options.checkpoint_roots,
        checkpoint_write_gbs=options.checkpoint_write_gbs,
        limits=options.limits,
        no_progress_timeout_s=options.no_progress_timeout_s,
    )
    store = Store.open(database_url(options.home, options.db))
    ensure_admin_token(store, options.home)
    reconciler = Reconciler(store, executor, config, Lease(store, ttl_s=options.lease_s))
    if options.engine != "local":
        _check_engine(reconciler, options)
    services = Services(store, executor, config, reconciler.inventory, reconciler.wake)
    services.leader = reconciler.lease.status
    services.next_cycle = reconciler.next_cycle
    services.metrics = reconciler.metrics
    services.metrics_token = scrape_token(options.home, options.metrics)
    app = create_app(services)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        reconciler.start()
        _write_server_file(options)
        try:
            yield
        finally:
            reconciler.stop()
            store.close()
            with contextlib.suppress(OSError):
                (options.home / "server.json").unlink()

    app.router.lifespan_context = lifespan
    return app, reconciler, store


def _check_engine(reconciler: Reconciler, options: ServerOptions) -> None:
    """Refuse to start on an unreachable engine, or where nodes do not see the home."""
    cluster = reconciler.inventory.refresh()
    if reconciler.inventory.error:
        raise SuanError(f"cannot reach the {options.engine} engine: {reconciler.inventory.error}")
    log.info("%s engine: %d nodes", options.engine, len(cluster))
    if options.probe_storage:
        seen = check_shared_storage(
            reconciler.executor, cluster, options.home, options.probe_timeout_s
        )
        log.info("storage probe: %d nodes see %s", len(seen), options.home)


def _write_server_file(options: ServerOptions) -> None:
    url = f"http://{options.host}:{options.port}"
    info = {"url": url, "pid": os.getpid(), "home": str(options.home), "instance": INSTANCE}
    temporary = options.home / "server.json.tmp"
    temporary.write_text(json.dumps(info))
    temporary.replace(options.home / "server.json")


def serve(options: ServerOptions) -> None:
    """Run the server in this process until SIGTERM or SIGINT."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.umask(0o077)  # the store, the admin token and job files are the server's alone
    shared = database_url(options.home, options.db).startswith("postgresql")
    with home_lock(options.home, shared):
        options.home.chmod(0o711)  # jobs run as other accounts pass through to their own dirs
        app, _, _ = build(options)
        uvicorn.run(
            app, host=options.host, port=options.port, log_level="warning", access_log=False
        )
