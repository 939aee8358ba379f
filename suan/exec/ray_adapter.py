"""The Ray adapter: the one Ray driver, serving the Suan server on a Unix socket.

    python -m suan.exec.ray_adapter --address 127.0.0.1:26379 --socket PATH

Ray binds every interface, so a Ray cluster may live where the Suan server cannot reach its
GCS (in tests: a network namespace with only `lo`). This process runs beside Ray (started with
a command prefix such as `ip netns exec suanray`), connects with `ray.init(namespace="suan")`
and serves a JSON-lines protocol on a Unix socket (a filesystem path, so it crosses network
namespaces). One request per connection: the client writes one JSON object and a newline, the
adapter answers one line, `{"ok": true, "result": ...}` or `{"ok": false, "error": "..."}`.

Operations (`op`):

- `ping` -> Ray's version and the GCS address;
- `nodes` -> `ray.nodes()` records (NodeID, Alive, Resources, Labels, DeathReason,
  DeathReasonMessage, NodeManagerAddress, NodeManagerHostname);
- `launch` {name, ranks, ready_timeout_s, start_timeout_s, pg_only} -> one detached
  placement group `name` with one bundle per rank (each pinned by its label selector), then
  one detached actor per rank named `<name>-r<rank>` (max_restarts=0) that starts the rank
  (`suan.exec.ray_actor`); refuses a name that exists; on any failure removes what it made
  and answers an error quoting Ray. `pg_only` stops after the group (tests use it to stand
  for a crash in between);
- `status` {launches: [{name, world}]} -> per launch the group's state and per rank one of
  `running`, `exited` (with the return code), `dead` (with Ray's message), `missing` (no such
  actor) or `unknown` (Ray did not answer in time);
- `signal` {name, world, signal} -> the signal to every rank's process group;
- `release` {name, world, reap} -> kill every rank actor; for each {rank, pid} in `reap` (ranks
  whose actor died: the parent-death signal killed the shim, not the program under it) run a
  task in the rank's bundle that SIGKILLs the rank's process group (bounded wait; nothing runs
  on a dead node, whose processes are gone anyway); then remove the group;
- `find` {name} -> the group's state, its size and the started ranks (pid, ticks, devices,
  node); a group without any rank actor is removed and reported as not found.

Ray is imported here only; nothing in the server imports this module.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import socketserver
import sys
import time
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError
from ray.util.placement_group import (
    PlacementGroup,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from suan.exec import ray_actor

NAMESPACE = "suan"
STATUS_TIMEOUT_S = 2.0
REAP_TIMEOUT_S = 10.0
NODE_FIELDS = (
    "NodeID",
    "Alive",
    "Resources",
    "Labels",
    "DeathReason",
    "DeathReasonMessage",
    "NodeManagerAddress",
    "NodeManagerHostname",
)


class AdapterError(Exception):
    """A request the adapter refuses; the message goes back to the client."""


def actor_name(name: str, rank: int) -> str:
    return f"{name}-r{rank}"


class Adapter:
    """The operations of the protocol (see the module docstring) over one Ray connection."""

    def __init__(self, address: str):
        self.address = address
        ray.cloudpickle.register_pickle_by_value(ray_actor)
        ray.init(
            address=address,
            namespace=NAMESPACE,
            logging_level="ERROR",
            log_to_driver=False,
        )
        self.remote_rank = ray.remote(ray_actor.RankActor)
        self.remote_reap = ray.remote(ray_actor.reap)
        self._actors: dict[str, Any] = {}

    # -- helpers -----------------------------------------------------------------------------
    def _actor(self, name: str) -> Any | None:
        handle = self._actors.get(name)
        if handle is None:
            try:
                handle = ray.get_actor(name, namespace=NAMESPACE)
            except ValueError:
                return None
            self._actors[name] = handle
        return handle

    @staticmethod
    def _group(name: str) -> PlacementGroup | None:
        try:
            pg = get_placement_group(name)
        except ValueError:
            return None
        table = placement_group_table(pg)
        return None if table.get("state") == "REMOVED" else pg

    def _kill(self, names: list[str]) -> None:
        for name in names:
            handle = self._actor(name)
            if handle is not None:
                with contextlib.suppress(Exception):
                    ray.kill(handle, no_restart=True)
            self._actors.pop(name, None)

    # -- operations --------------------------------------------------------------------------
    def ping(self) -> dict[str, Any]:
        return {"ray": ray.__version__, "address": self.address, "pid": os.getpid()}

    def nodes(self) -> list[dict[str, Any]]:
        return [{key: node.get(key) for key in NODE_FIELDS} for node in ray.nodes()]

    def launch(
        self,
        name: str,
        ranks: list[dict[str, Any]],
        ready_timeout_s: float = 30.0,
        start_timeout_s: float = 60.0,
        pg_only: bool = False,
    ) -> dict[str, Any]:
        if self._group(name) is not None:
            raise AdapterError(f"ray: placement group {name!r} already exists")
        started = time.monotonic()
        pg = placement_group(
            [rank["bundle"] for rank in ranks],
            strategy="PACK",
            name=name,
            lifetime="detached",
            bundle_label_selector=[rank["selector"] for rank in ranks],
        )
        try:
            ray.get(pg.ready(), timeout=ready_timeout_s)
        except GetTimeoutError:
            state = placement_group_table(pg).get("state")
            remove_placement_group(pg)
            wanted = [f"{r['node']} {r['bundle']}" for r in ranks]
            raise AdapterError(
                f"ray: placement group {name!r} still {state} after {ready_timeout_s:.0f}s; "
                f"bundles asked for: {'; '.join(wanted)}"
            ) from None
        ready_ms = (time.monotonic() - started) * 1000
        if pg_only:
            return {"ready_ms": ready_ms, "ranks": []}
        actors = []
        try:
            for index, rank in enumerate(ranks):
                options = rank["options"]
                actors.append(
                    self.remote_rank.options(
                        name=actor_name(name, index),
                        namespace=NAMESPACE,
                        lifetime="detached",
                        max_restarts=0,
                        max_concurrency=4,
                        num_cpus=options.get("num_cpus", 0),
                        num_gpus=options.get("num_gpus", 0),
                        resources=options.get("resources") or None,
                        runtime_env=uploaded(options.get("runtime_env")),
                        scheduling_strategy=PlacementGroupSchedulingStrategy(
                            pg, placement_group_bundle_index=index
                        ),
                    ).remote()
                )
            refs = [a.start.remote(rank["start"]) for a, rank in zip(actors, ranks, strict=True)]
            infos = ray.get(refs, timeout=start_timeout_s)
        except Exception as exc:
            for actor in actors:
                with contextlib.suppress(Exception):
                    ray.kill(actor, no_restart=True)
            remove_placement_group(pg)
            raise AdapterError(f"ray: starting the ranks of {name!r} failed: {exc}") from None
        for index, actor in enumerate(actors):
            self._actors[actor_name(name, index)] = actor
        return {"ready_ms": ready_ms, "ranks": infos}

    def status(self, launches: list[dict[str, Any]]) -> list[dict[str, Any]]:
        pending: list[tuple[dict[str, Any], Any]] = []
        reports = []
        for launch in launches:
            pg = self._group(launch["name"])
            state = placement_group_table(pg).get("state") if pg is not None else None
            ranks: list[dict[str, Any]] = []
            for index in range(launch["world"]):
                entry: dict[str, Any] = {"rank": index, "state": "unknown"}
                handle = self._actor(actor_name(launch["name"], index))
                if handle is None:
                    entry["state"] = "missing"
                else:
                    pending.append((entry, handle.state.remote()))
                ranks.append(entry)
            reports.append({"name": launch["name"], "pg": state, "ranks": ranks})
        if pending:
            ray.wait(
                [ref for _, ref in pending], num_returns=len(pending), timeout=STATUS_TIMEOUT_S
            )
        for entry, ref in pending:
            try:
                got = ray.get(ref, timeout=0)
            except GetTimeoutError:
                continue  # stays "unknown": Ray did not answer in time
            except RayActorError as exc:
                entry.update(state="dead", message=_first_line(exc))
                continue
            except Exception as exc:
                entry.update(state="unknown", message=_first_line(exc))
                continue
            entry.update(pid=got["pid"], ticks=got["ticks"])
            if got["returncode"] is None:
                entry["state"] = "running"
            else:
                entry.update(state="exited", returncode=got["returncode"])
        return reports

    def signal(self, name: str, world: int, signal: int) -> dict[str, Any]:
        refs = []
        for index in range(world):
            handle = self._actor(actor_name(name, index))
            if handle is not None:
                refs.append(handle.signal.remote(signal))
        sent = 0
        for ref in refs:
            with contextlib.suppress(Exception):
                sent += bool(ray.get(ref, timeout=STATUS_TIMEOUT_S))
        return {"sent": sent}

    def release(
        self, name: str, world: int, reap: list[dict[str, int]] | None = None
    ) -> dict[str, Any]:
        self._kill([actor_name(name, index) for index in range(world)])
        pg = self._group(name)
        reaped = 0
        if pg is not None and reap:
            alive = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
            where = placement_group_table(pg).get("bundles_to_node_id") or {}
            reap = [e for e in reap if where.get(int(e["rank"])) in alive]
        if pg is not None and reap:
            refs = [
                self.remote_reap.options(
                    num_cpus=0,
                    scheduling_strategy=PlacementGroupSchedulingStrategy(
                        pg, placement_group_bundle_index=int(entry["rank"])
                    ),
                ).remote(int(entry["pid"]))
                for entry in reap
                if int(entry.get("pid") or 0) > 1
            ]
            done, left = ray.wait(refs, num_returns=len(refs), timeout=REAP_TIMEOUT_S)
            reaped = sum(bool(ray.get(ref)) for ref in done)
            for ref in left:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
        if pg is not None:
            remove_placement_group(pg)
        return {"removed": pg is not None, "reaped": reaped}

    def find(self, name: str) -> dict[str, Any] | None:
        pg = self._group(name)
        if pg is None:
            return None
        table = placement_group_table(pg)
        world = len(table.get("bundles") or {})
        labels = {node["NodeID"]: node.get("Labels") or {} for node in ray.nodes()}
        where = table.get("bundles_to_node_id") or {}
        ranks = []
        for index in range(world):
            handle = self._actor(actor_name(name, index))
            if handle is None:
                continue
            try:
                got = ray.get(handle.state.remote(), timeout=STATUS_TIMEOUT_S * 2)
            except Exception:
                got = {"pid": 0, "ticks": 0, "returncode": None}
            node_labels = labels.get(where.get(index, ""), {})
            ranks.append({"rank": index, **got, "labels": node_labels})
        if not ranks:
            remove_placement_group(pg)
            return None
        return {"pg": table.get("state"), "world": world, "ranks": ranks}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        adapter: Adapter = self.server.adapter  # type: ignore[attr-defined]
        line = self.rfile.readline()
        if not line:
            return
        try:
            request = json.loads(line)
            op = request.pop("op")
            if op not in ("ping", "nodes", "launch", "status", "signal", "release", "find"):
                raise AdapterError(f"unknown operation {op!r}")
            reply = {"ok": True, "result": getattr(adapter, op)(**request)}
        except AdapterError as exc:
            reply = {"ok": False, "error": str(exc)}
        except Exception as exc:
            reply = {"ok": False, "error": f"ray adapter: {type(exc).__name__}: {exc}"}
        self.wfile.write(json.dumps(reply).encode() + b"\n")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def served(path: str) -> bool:
    """Whether someone already answers on the socket at `path`."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(2)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="suan.exec.ray_adapter", description=__doc__)
    parser.add_argument("--address", required=True, help="the GCS address, host:port")
    parser.add_argument("--socket", required=True, help="the Unix socket to serve")
    parser.add_argument("--connect-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    path = Path(args.socket)
    if served(str(path)):
        print(f"ray adapter: {path} is already served", file=sys.stderr)
        return 0
    deadline = time.monotonic() + args.connect_timeout
    while True:
        try:
            adapter = Adapter(args.address)
            break
        except (ConnectionError, RuntimeError) as exc:
            if time.monotonic() > deadline:
                print(f"ray adapter: cannot reach Ray at {args.address}: {exc}", file=sys.stderr)
                return 1
            time.sleep(1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    server = _Server(str(path), _Handler)
    server.adapter = adapter  # type: ignore[attr-defined]
    os.chmod(path, 0o600)
    mine = path.stat().st_ino
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # instead of Ray's driver handler
    print(f"ray adapter: serving {path} for Ray at {args.address}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        with contextlib.suppress(OSError):
            if path.stat().st_ino == mine:  # not a successor's socket
                path.unlink()
    return 0


def uploaded(runtime_env: dict[str, Any] | None) -> dict[str, Any] | None:
    """`runtime_env` with a local `working_dir` uploaded to the cluster (as `ray.init` does for
    a job; actors accept only the package URI). Ray 2.60's packaging helper, pinned with Ray."""
    if not runtime_env or "working_dir" not in runtime_env:
        return runtime_env or None
    from ray._private.runtime_env.working_dir import upload_working_dir_if_needed

    return upload_working_dir_if_needed(dict(runtime_env), include_gitignore=True)


if __name__ == "__main__":
    sys.exit(main())
