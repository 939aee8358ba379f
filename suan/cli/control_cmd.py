"""`suan server` (the control plane in the foreground), `suan up` (the same in the background,
for this machine) and `suan down`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import typer

from suan.cli.files import text_file
from suan.errors import SuanError

HOME_HELP = "State directory (default: SUAN_HOME or ~/.suan)."
DEVICES_HELP = (
    "Device slots of this node, e.g. 8xH100 or 4x910B (simulated by CPU "
    "processes), or none. Default: the GPUs nvidia-smi sees, else 8xH100."
)
ENGINE_HELP = (
    "What runs the ranks: local (this machine), slurm, ray or kubernetes, with the "
    "engine's defaults (e.g. SLURM_CONF); --config gives its settings. Default: local."
)
CONFIG_HELP = "A server config file: engine, its settings, policy (docs/engines.md)."


def _home(home: Path | None) -> Path:
    from suan.client import suan_home

    return (home or suan_home()).expanduser().resolve()


def server_command(
    home: Path | None = typer.Option(None, "--home", help=HOME_HELP),
    db: str | None = typer.Option(
        None,
        "--db",
        help="Database URL, e.g. postgresql://u@h/db (default: SQLite file HOME/suan.db).",
    ),
    devices: str | None = typer.Option(None, "--devices", help=DEVICES_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8765, "--port", help="Port to listen on."),
    policy: str | None = typer.Option(None, "--policy", help="Scheduling policy (default)."),
    restart_backoff: float = typer.Option(
        2.0, "--restart-backoff", help="Seconds before the first gang restart."
    ),
    stop_grace: float = typer.Option(
        10.0, "--stop-grace", help="Seconds between SIGTERM and SIGKILL."
    ),
    tick: float = typer.Option(0.25, "--tick", help="Reconciler period in seconds."),
    no_progress_timeout: float | None = typer.Option(
        None,
        "--no-progress-timeout",
        min=1.0,
        help="Seconds after which a gang whose rank reported progress and then none is "
        "restarted as hung, for jobs whose spec names no time (default: off).",
    ),
    engine: str | None = typer.Option(None, "--engine", help=ENGINE_HELP),
    config: Path | None = typer.Option(
        None, "--config", help=CONFIG_HELP, callback=text_file, readable=False
    ),
    lease: float = typer.Option(
        5.0,
        "--lease",
        min=1.0,
        max=60.0,
        help="Seconds of the leader's lease: with PostgreSQL, servers sharing the store elect "
        "one leader; a standby takes over within about this long after it dies or stalls.",
    ),
) -> None:
    """Run the control plane (REST API, reconciler, executor) in the foreground. Over a
    PostgreSQL store several servers may run at once: one leads, the others stand by."""
    from suan.control.server import ServerOptions, options_from_file, serve
    from suan.exec.local_node import parse_devices
    from suan.sched import get_policy

    if devices is not None:
        parse_devices(devices)
    flags = {
        "home": _home(home),
        "db": db,
        "devices": devices,
        "host": host,
        "port": port,
        "policy": policy,
        "tick_s": tick,
        "restart_backoff_s": restart_backoff,
        "stop_grace_s": stop_grace,
        "no_progress_timeout_s": no_progress_timeout,
        "engine": engine,
        "lease_s": lease,
    }
    if config is not None:
        options = options_from_file(config, **flags)
    else:
        options = ServerOptions(**{k: v for k, v in flags.items() if v is not None})
    get_policy(options.policy)
    serve(options)


def _running_server(home: Path) -> dict | None:
    """The server of `home` (its server.json), when that very process answers at its url: its
    pid lives and /healthz gives the nonce it wrote. Another home's server on the same port, or
    a stale file, is not it."""
    from suan.client import Client

    try:
        info = json.loads((home / "server.json").read_text())
        pid, url = int(info["pid"]), str(info["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _alive(pid):
        return None
    with Client(url, token="") as client:
        answer = client.health()
    if answer is None or answer.get("instance") != info.get("instance"):
        return None
    return info


def up_command(
    home: Path | None = typer.Option(None, "--home", help=HOME_HELP),
    db: str | None = typer.Option(None, "--db", help="Database URL (default: SQLite)."),
    devices: str | None = typer.Option(None, "--devices", help=DEVICES_HELP),
    engine: str | None = typer.Option(None, "--engine", help=ENGINE_HELP),
    config: Path | None = typer.Option(
        None, "--config", help=CONFIG_HELP, callback=text_file, readable=False
    ),
    port: int = typer.Option(8765, "--port", help="Port on 127.0.0.1."),
    restart_backoff: float = typer.Option(
        2.0, "--restart-backoff", help="Seconds before the first gang restart."
    ),
    stop_grace: float = typer.Option(
        10.0, "--stop-grace", help="Seconds between SIGTERM and SIGKILL."
    ),
) -> None:
    """Start the control plane in the background on this machine and say how to reach it."""
    where = _home(home)
    where.mkdir(parents=True, exist_ok=True)
    info = _running_server(where)
    if info is None:
        _refuse_taken_port(port, where)
        argv = [
            sys.executable,
            "-m",
            "suan.cli.main",
            "server",
            "--home",
            str(where),
            "--port",
            str(port),
            "--restart-backoff",
            str(restart_backoff),
            "--stop-grace",
            str(stop_grace),
        ]
        argv += ["--db", db] if db else []
        argv += ["--devices", devices] if devices else []
        argv += ["--engine", engine] if engine else []
        argv += ["--config", str(config.resolve())] if config else []
        info = _spawn_server(argv, where)
    typer.echo(f"suan server {info['url']} (pid {info['pid']}, home {where})")
    typer.echo(f"logs: {where / 'server.log'}")
    typer.echo("admin token: written to " + str(where / "admin-token") + "; to use it elsewhere:")
    typer.echo(f"  export SUAN_SERVER={info['url']}")
    typer.echo(f"  export SUAN_TOKEN=$(cat {where / 'admin-token'})")


def _refuse_taken_port(port: int, home: Path) -> None:
    """SuanError when a server already answers on `port` (it is not home's: that was checked)."""
    from suan.client import Client

    url = f"http://127.0.0.1:{port}"
    with Client(url, token="") as client:
        answer = client.health()
    if answer is not None:
        raise SuanError(
            f"another server already answers at {url} (not the one of home {home}); "
            "stop it, or give this home another --port"
        )


def _spawn_server(argv: list[str], home: Path) -> dict:
    (home / "server.json").unlink(missing_ok=True)
    with open(home / "server.log", "ab") as log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (home / "server.log").read_text(errors="replace")[-2000:]
            raise SuanError(f"the server exited with code {process.returncode}:\n{tail}")
        info = _running_server(home)
        if info is not None:
            return info
        time.sleep(0.1)
    raise SuanError(f"the server did not answer within 60s; see {home / 'server.log'}")


def down_command(
    home: Path | None = typer.Option(None, "--home", help=HOME_HELP),
) -> None:
    """Stop the background server. Running jobs keep running; the next `suan up` adopts them."""
    where = _home(home)
    try:
        info = json.loads((where / "server.json").read_text())
    except (OSError, ValueError):
        typer.echo(f"no suan server is running with home {where}")
        return
    pid = int(info["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        (where / "server.json").unlink(missing_ok=True)
        typer.echo("the server had already stopped")
        return
    for _ in range(100):
        if not _alive(pid):
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    (where / "server.json").unlink(missing_ok=True)
    typer.echo(f"stopped suan server (pid {pid}); running jobs keep running")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def register(app: typer.Typer) -> None:
    app.command("server")(server_command)
    app.command("up")(up_command)
    app.command("down")(down_command)
