"""A FAKE Kubernetes API server with a fake kubelet, for tests and demos. Not Kubernetes.

    fake = FakeKubernetes(fixture_nodes(2, gpus=8), workdir)
    url = fake.start()            # http://127.0.0.1:<port>, served from a thread
    ...                           # point suan.exec.kubernetes (or any client) at `url`
    fake.stop()                   # kills every process its kubelet started

It serves the small part of the core/v1 API that Suan's Kubernetes executor uses, over plain
HTTP on 127.0.0.1, and answers in Kubernetes' shapes:

- nodes: list, get, create, delete, PATCH (JSON merge patch);
- pods and services in any namespace: list (with an equality `labelSelector`), get, create
  (409 AlreadyExists when the name is taken, 422 when a container has no image), delete
  (with `gracePeriodSeconds`); `pods/<name>/binding` (POST a Binding: sets `spec.nodeName`,
  409 when the Pod is already bound); `pods/<name>/log`;
- every error is a `Status` object (`reason` NotFound / AlreadyExists / Conflict / Invalid).
  Deleting an object deletes the objects whose ownerReferences name its uid (garbage
  collection, in the foreground of the request);
- resource versions: one counter for the whole store, as etcd's revision. Every change
  (create, patch, bind, a kubelet status update, the start of a graceful delete, the removal)
  takes the next value into the object's `metadata.resourceVersion`; a list answers the
  counter's current value as the collection's `metadata.resourceVersion`;
- watches: `GET .../pods?watch=1&resourceVersion=N` (and `/api/v1/nodes?watch=1`, or
  `/api/v1/pods?watch=1` across namespaces) streams newline-delimited JSON events
  `{"type": "ADDED"|"MODIFIED"|"DELETED", "object": {...}}` (chunked HTTP/1.1) for every
  change after N whose object matches `labelSelector`, in order, until `timeoutSeconds`
  (default 1800) pass or the fake stops. Without N (or N = "0") the stream starts with an
  ADDED event per existing object, as the real server does. With `allowWatchBookmarks=true`
  a `BOOKMARK` carrying the current resourceVersion ends a watch that times out. The fake
  remembers the last `history` changes (and `compact()` forgets them all, as etcd compaction
  does): a watch from a resourceVersion older than that, or an open watch that falls behind
  it, gets an `ERROR` event with a 410 `Expired` Status and ends, as kube-apiserver answers
  "too old resource version", so the client relists.

The fake kubelet runs each bound Pod whose node exists and is Ready as a local process (the
image is ignored): the container's `command` + `args`, the Pod's env over this process's own
(as an image's env would be), stdout and stderr into a log the `log` endpoint serves. It moves
the Pod through Pending → Running → Succeeded/Failed with `containerStatuses[0].state` and
`exitCode` (128+N for signal N, as container runtimes report), refuses Pods whose device-plugin
limits exceed what the node has left (phase Failed, reason `OutOf<resource>`, as the real
kubelet's admission does), and on delete sends SIGTERM to the process group, SIGKILL after the
grace period, and removes the Pod once its process is gone. Its DNS is fake too: an env value
that is a Pod's `<host>.<subdomain>.<ns>.svc[.<domain>]` name becomes 127.0.0.1 (every Pod
shares this host's network). `fail_node` marks a node NotReady and its Pods Failed
(reason NodeLost), killing their processes.

`requests` records every request as (method, path); `audit` as (verb, path) with the
apiserver's audit verbs (get, list, watch, create, patch, delete), so tests can count lists.

What it proves: request shapes, the executor's handling of phases, exit codes, conflicts,
node health, and watch/relist. What it does not: scheduling, admission webhooks, quotas,
real DNS, containers, selector changes during a watch (an event is matched on its object).
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import json
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "kubernetes"
CAPTURED_NODE = FIXTURES / "node-rke2-a16-nori.json"
DEFAULT_PRODUCT = "NVIDIA-H100-80GB-HBM3"
HIDDEN = ("SUAN_TOKEN",)
_POD_DNS = re.compile(r"^[a-z0-9-]+\.[a-z0-9-]+\.[a-z0-9-]+\.svc(\.[a-z0-9.-]+)?$")
_KINDS = {"pods": "Pod", "services": "Service", "nodes": "Node"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fixture_nodes(
    count: int,
    gpus: int = 8,
    product: str = DEFAULT_PRODUCT,
    prefix: str = "suan-kube",
    labels: Mapping[str, Mapping[str, str]] | None = None,
    source: Path = CAPTURED_NODE,
) -> list[dict[str, Any]]:
    """`count` nodes cloned from the captured real Node, adapted as tests/fixtures/kubernetes/
    README.md says: renamed, `gpus` devices, `product` as the GPU product, `labels[name]` added.
    """
    captured = json.loads(source.read_text())
    nodes = []
    for index in range(count):
        node = copy.deepcopy(captured)
        name = f"{prefix}-{index}"
        meta = node["metadata"]
        meta["name"] = name
        meta["uid"] = str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
        meta["labels"]["kubernetes.io/hostname"] = name
        meta["labels"]["nvidia.com/gpu.count"] = str(gpus)
        meta["labels"]["nvidia.com/gpu.product"] = product
        meta["labels"].update((labels or {}).get(name, {}))
        for key in ("capacity", "allocatable"):
            node["status"][key]["nvidia.com/gpu"] = str(gpus)
        for address in node["status"].get("addresses", []):
            if address.get("type") == "Hostname":
                address["address"] = name
        nodes.append(node)
    return nodes


class ApiError(Exception):
    """An error the fake answers with a Kubernetes Status object."""

    def __init__(self, code: int, reason: str, message: str, kind: str = "", name: str = ""):
        super().__init__(message)
        self.code, self.reason, self.kind, self.name = code, reason, kind, name

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": str(self),
            "reason": self.reason,
            "details": {"name": self.name, "kind": self.kind},
            "code": self.code,
        }


def _not_found(plural: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{plural} "{name}" not found', plural, name)


def _selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """Equality-based label selectors: `a=b,c==d,e!=f`, and bare `key` for existence."""
    for term in (t.strip() for t in selector.split(",") if t.strip()):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term not in labels:
            return False
    return True


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def _quantity(text: Any) -> int:
    try:
        return int(str(text))
    except ValueError:
        return 0


@dataclass
class _Process:
    popen: subprocess.Popen
    log: Path
    term_sent: bool = False
    kill_at: float | None = None


@dataclass(frozen=True)
class _Event:
    """One change of the store: the object as it was right after it, at `version`."""

    version: int
    plural: str
    namespace: str
    type: str
    object: dict[str, Any]


class FakeKubernetes:
    """The fake API server and kubelet (see the module docstring).

    `history` is how many changes the fake remembers for watches (older resourceVersions get
    410); `tick_s` is the fake kubelet's period.
    """

    def __init__(
        self,
        nodes: Iterable[Mapping[str, Any]],
        workdir: Path,
        tick_s: float = 0.05,
        history: int = 10000,
    ):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tick_s = tick_s
        self.history = history
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._version = 0
        self._events: list[_Event] = []
        self._compacted = 0  # every change after this version is in _events
        self._epoch = 0  # expire_watches() ends the watches opened before it
        self._procs: dict[tuple[str, str], _Process] = {}
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self.requests: list[tuple[str, str]] = []
        self.audit: list[tuple[str, str]] = []
        for node in nodes:
            self.create("nodes", "", copy.deepcopy(dict(node)))

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> str:
        """Serve on 127.0.0.1 (a free port) and start the kubelet; returns the base URL."""
        fake = self

        class Handler(_Handler):
            api = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        serve = threading.Thread(target=self._server.serve_forever, daemon=True, name="kube-api")
        kubelet = threading.Thread(target=self._kubelet_loop, daemon=True, name="kubelet")
        self._threads = [serve, kubelet]
        for thread in self._threads:
            thread.start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        """Stop serving, kill every process the kubelet started, and wait for them."""
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()  # open watches end
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        with self._lock:
            for proc in self._procs.values():
                _killpg(proc.popen.pid, signal.SIGKILL)
            for proc in self._procs.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(timeout=5)
            self._procs.clear()

    # -- the store ---------------------------------------------------------------------------
    def _record(self, type_: str, plural: str, namespace: str, obj: dict[str, Any]) -> None:
        """A change: the next resourceVersion into `obj`, an event for watches (lock held)."""
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
        event = _Event(self._version, plural, namespace, type_, copy.deepcopy(obj))
        self._events.append(event)
        if len(self._events) > self.history:
            dropped = len(self._events) - self.history
            self._compacted = self._events[dropped - 1].version
            del self._events[:dropped]
        self._changed.notify_all()

    def _modified(self, plural: str, namespace: str, obj: dict[str, Any]) -> None:
        self._record("MODIFIED", plural, namespace, obj)

    def _remove(self, plural: str, namespace: str, name: str) -> None:
        obj = self._objects.pop((plural, namespace, name), None)
        if obj is not None:
            self._record("DELETED", plural, namespace, obj)

    @property
    def resource_version(self) -> str:
        """The store's current resourceVersion (what a list now answers)."""
        with self._lock:
            return str(self._version)

    def compact(self) -> None:
        """Forget every change so far, as etcd compaction does: a watch from an older
        resourceVersion, or an open one that has not sent every change yet, gets 410."""
        with self._lock:
            self._compacted = self._version
            self._events.clear()
            self._changed.notify_all()

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """Hold the store: what is changed inside reaches watches (and the kubelet) only after
        it, together. Stages what a client missed, e.g. changes and then `compact()`."""
        with self._lock:
            yield

    def expire_watches(self) -> None:
        """End every open watch with an ERROR 410 event (as when the server's watch cache
        is reset): the clients must relist. Later changes are remembered as before."""
        with self._lock:
            self._epoch += 1
            self._changed.notify_all()

    def list(self, plural: str, namespace: str | None, selector: str = "") -> dict[str, Any]:
        with self._lock:
            items = [
                copy.deepcopy(obj)
                for (kind, ns, _), obj in sorted(self._objects.items())
                if kind == plural
                and (namespace is None or ns == namespace)
                and _selector_matches(selector, obj["metadata"].get("labels") or {})
            ]
            return {
                "kind": f"{_KINDS[plural]}List",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self._version)},
                "items": items,
            }

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            obj = self._objects.get((plural, namespace, name))
            if obj is None:
                raise _not_found(plural, name)
            return copy.deepcopy(obj)

    def create(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        meta = body.setdefault("metadata", {})
        name = meta.get("name") or ""
        if not name:
            raise ApiError(422, "Invalid", f"{plural}: metadata.name: Required value", plural)
        if plural == "pods":
            self._validate_pod(name, body)
        with self._lock:
            if (plural, namespace, name) in self._objects:
                raise ApiError(
                    409, "AlreadyExists", f'{plural} "{name}" already exists', plural, name
                )
            meta.update(
                uid=meta.get("uid") or str(uuid.uuid4()),
                creationTimestamp=meta.get("creationTimestamp") or _now(),
            )
            if namespace:
                meta["namespace"] = namespace
            body.setdefault("apiVersion", "v1")
            body.setdefault("kind", _KINDS[plural])
            if plural == "pods":
                body["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
            if plural == "services" and body.get("spec", {}).get("clusterIP") != "None":
                body.setdefault("spec", {})["clusterIP"] = "10.96.0.10"
            self._objects[(plural, namespace, name)] = body
            self._record("ADDED", plural, namespace, body)
            return copy.deepcopy(body)

    @staticmethod
    def _validate_pod(name: str, body: Mapping[str, Any]) -> None:
        containers = (body.get("spec") or {}).get("containers") or []
        if not containers:
            raise ApiError(
                422,
                "Invalid",
                f'Pod "{name}" is invalid: spec.containers: Required value',
                "pods",
                name,
            )
        for index, container in enumerate(containers):
            if not container.get("image"):
                raise ApiError(
                    422,
                    "Invalid",
                    f'Pod "{name}" is invalid: spec.containers[{index}].image: Required value',
                    "pods",
                    name,
                )

    def patch(self, plural: str, namespace: str, name: str, patch: Mapping[str, Any]) -> dict:
        with self._lock:
            obj = self._objects.get((plural, namespace, name))
            if obj is None:
                raise _not_found(plural, name)
            _merge(obj, patch)
            self._modified(plural, namespace, obj)
            return copy.deepcopy(obj)

    def delete(
        self, plural: str, namespace: str, name: str, grace_s: int | None = None
    ) -> dict[str, Any]:
        with self._lock:
            obj = self._objects.get((plural, namespace, name))
            if obj is None:
                raise _not_found(plural, name)
            if plural == "pods":
                self._delete_pod(namespace, name, obj, grace_s)
            else:
                self._remove(plural, namespace, name)
            self._collect_dependents(obj["metadata"]["uid"])
            return copy.deepcopy(obj)

    def _delete_pod(
        self, namespace: str, name: str, pod: dict[str, Any], grace_s: int | None
    ) -> None:
        proc = self._procs.get((namespace, name))
        if proc is None or proc.popen.poll() is not None:
            self._remove("pods", namespace, name)
            self._procs.pop((namespace, name), None)
            return
        meta = pod["metadata"]
        if grace_s is None:
            grace_s = int(pod["spec"].get("terminationGracePeriodSeconds", 30))
        deadline = time.monotonic() + max(0, grace_s)
        if proc.kill_at is None or deadline < proc.kill_at:
            proc.kill_at = deadline
            meta["deletionGracePeriodSeconds"] = grace_s
        meta.setdefault("deletionTimestamp", _now())
        self._modified("pods", namespace, pod)
        if not proc.term_sent:
            proc.term_sent = True
            _killpg(proc.popen.pid, signal.SIGTERM)

    def _collect_dependents(self, uid: str) -> None:
        """Garbage collection: delete every object owned by `uid`."""
        owned = [
            key
            for key, obj in self._objects.items()
            if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])
        ]
        for plural, namespace, name in owned:
            if (plural, namespace, name) in self._objects:
                self.delete(plural, namespace, name)

    def bind(self, namespace: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        target = (body.get("target") or {}).get("name") or ""
        if not target:
            raise ApiError(422, "Invalid", "Binding: target.name: Required value", "pods", name)
        with self._lock:
            pod = self._objects.get(("pods", namespace, name))
            if pod is None:
                raise _not_found("pods", name)
            bound = pod["spec"].get("nodeName")
            if bound:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} is '
                    f'already assigned to node "{bound}"',
                    "pods/binding",
                    name,
                )
            pod["spec"]["nodeName"] = target
            pod["status"]["conditions"] = [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": _now()}
            ]
            self._modified("pods", namespace, pod)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }

    def log(self, namespace: str, name: str) -> bytes:
        with self._lock:
            if ("pods", namespace, name) not in self._objects:
                raise _not_found("pods", name)
            proc = self._procs.get((namespace, name))
        if proc is None:
            raise ApiError(
                400,
                "BadRequest",
                f'container "rank" in pod "{name}" is waiting to start: ContainerCreating',
            )
        try:
            return proc.log.read_bytes()
        except FileNotFoundError:
            return b""

    # -- watches -----------------------------------------------------------------------------
    def watch(
        self,
        plural: str,
        namespace: str | None,
        selector: str = "",
        resource_version: str = "",
        timeout_s: float = 1800.0,
        bookmarks: bool = False,
        alive: Callable[[], bool] = lambda: True,
    ) -> Iterator[dict[str, Any]]:
        """The events of a watch from `resource_version` (see the module docstring), each
        yielded as it happens. The stream ends after `timeout_s`, when the fake stops, when
        `alive()` turns false (the client went away), or after an ERROR event (410).
        A resourceVersion that is not a number is refused now (400), before any event."""
        since: int | None = None
        if resource_version not in ("", "0"):
            try:
                since = int(resource_version)
            except ValueError:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"resourceVersion: Invalid value: {resource_version!r}: not a number",
                ) from None
        deadline = time.monotonic() + max(0.0, timeout_s)
        return self._events_after(plural, namespace, selector, since, deadline, bookmarks, alive)

    def _events_after(
        self,
        plural: str,
        namespace: str | None,
        selector: str,
        since: int | None,
        deadline: float,
        bookmarks: bool,
        alive: Callable[[], bool],
    ) -> Iterator[dict[str, Any]]:
        def matches(kind: str, ns: str, obj: Mapping[str, Any]) -> bool:
            return (
                kind == plural
                and (namespace is None or ns == namespace)
                and _selector_matches(selector, obj["metadata"].get("labels") or {})
            )

        with self._lock:
            epoch = self._epoch
            position = self._version if since is None else since
            batch: list[dict[str, Any]] = []
            if since is None:  # no resourceVersion: the current objects first, as ADDED
                batch = [
                    {"type": "ADDED", "object": copy.deepcopy(obj)}
                    for (kind, ns, _), obj in sorted(self._objects.items())
                    if matches(kind, ns, obj)
                ]
        while True:
            yield from batch
            batch, end = [], False
            with self._changed:
                while not batch and not end:
                    if self._stopping.is_set() or not alive():
                        return
                    if epoch != self._epoch or position < self._compacted:
                        batch, end = [_expired(position, self._compacted)], True
                    elif position < self._version:
                        start = bisect.bisect_right(self._events, position, key=lambda e: e.version)
                        batch = [
                            {"type": e.type, "object": copy.deepcopy(e.object)}
                            for e in self._events[start:]
                            if matches(e.plural, e.namespace, e.object)
                        ]
                        position = self._version
                    elif (remaining := deadline - time.monotonic()) <= 0:
                        if bookmarks:
                            batch = [_bookmark(plural, position)]
                        end = True
                    else:
                        self._changed.wait(min(remaining, 0.25))
            if end:
                yield from batch
                return

    # -- test helpers ------------------------------------------------------------------------
    def pods(self, selector: str = "") -> list[dict[str, Any]]:
        return self.list("pods", None, selector)["items"]

    def set_node_ready(self, name: str, ready: bool, message: str = "", reason: str = "") -> None:
        """Set a node's Ready condition (NotReady with `message`, as a real node reports)."""
        with self._lock:
            node = self._objects[("nodes", "", name)]
            for condition in node["status"]["conditions"]:
                if condition["type"] == "Ready":
                    condition.update(
                        status="True" if ready else "False",
                        reason=reason or ("KubeletReady" if ready else "KubeletNotReady"),
                        message=message or ("kubelet is posting ready status" if ready else ""),
                        lastTransitionTime=_now(),
                    )
            self._modified("nodes", "", node)

    def fail_node(self, name: str, message: str = "node stopped posting status") -> None:
        """The node dies: NotReady, its Pods' processes killed, the Pods Failed (NodeLost)."""
        self.set_node_ready(name, False, message, "NodeStatusUnknown")
        with self._lock:
            for (plural, namespace, pod_name), pod in self._objects.items():
                if plural != "pods" or pod["spec"].get("nodeName") != name:
                    continue
                proc = self._procs.get((namespace, pod_name))
                if proc is not None:
                    _killpg(proc.popen.pid, signal.SIGKILL)
                if pod["status"]["phase"] in ("Pending", "Running"):
                    pod["status"].update(
                        phase="Failed",
                        reason="NodeLost",
                        message=f"Node {name} which was running pod {pod_name} is unresponsive",
                    )
                    self._modified("pods", namespace, pod)

    # -- the kubelet -------------------------------------------------------------------------
    def _kubelet_loop(self) -> None:
        while not self._stopping.wait(self.tick_s):
            with self._lock:
                for key, pod in list(self._objects.items()):
                    if key[0] == "pods":
                        self._sync_pod(key[1], key[2], pod)

    def _node_ready(self, name: str) -> bool:
        node = self._objects.get(("nodes", "", name))
        if node is None:
            return False
        conditions = node.get("status", {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _sync_pod(self, namespace: str, name: str, pod: dict[str, Any]) -> None:
        proc = self._procs.get((namespace, name))
        status = pod["status"]
        if proc is not None and status.get("phase") == "Running":
            code = proc.popen.poll()
            if code is not None:
                self._terminated(pod, code)
                self._modified("pods", namespace, pod)
        if pod["metadata"].get("deletionTimestamp"):
            if proc is None or proc.popen.poll() is not None:
                self._remove("pods", namespace, name)
                self._procs.pop((namespace, name), None)
            elif proc.kill_at is not None and time.monotonic() >= proc.kill_at:
                _killpg(proc.popen.pid, signal.SIGKILL)
            return
        node = pod["spec"].get("nodeName")
        if status.get("phase") == "Pending" and proc is None and node and self._node_ready(node):
            refusal = self._admission(pod, node)
            if refusal:
                status.update(phase="Failed", reason=refusal[0], message=refusal[1])
            else:
                self._start(namespace, name, pod)
            self._modified("pods", namespace, pod)

    def _admission(self, pod: dict[str, Any], node_name: str) -> tuple[str, str] | None:
        """Device-plugin resources: the Pod's limits must fit what the node has left."""
        wanted = _limits(pod)
        if not wanted:
            return None
        node = self._objects[("nodes", "", node_name)]
        allocatable = node["status"].get("allocatable") or {}
        used: dict[str, int] = {}
        for (plural, _, _), other in self._objects.items():
            if (
                plural == "pods"
                and other is not pod
                and other["spec"].get("nodeName") == node_name
                and other["status"].get("phase") == "Running"
            ):
                for key, count in _limits(other).items():
                    used[key] = used.get(key, 0) + count
        for key, count in wanted.items():
            left = _quantity(allocatable.get(key, 0)) - used.get(key, 0)
            if count > left:
                return (
                    f"OutOf{key}",
                    f"Pod was rejected: Node didn't have enough resource: {key}, "
                    f"requested: {count}, used: {used.get(key, 0)}, capacity: "
                    f"{_quantity(allocatable.get(key, 0))}",
                )
        return None

    def _plugin_devices(self, pod: dict[str, Any]) -> list[int] | None:
        """The lowest nvidia.com/gpu indices of the Pod's node that no running Pod holds."""
        count = _limits(pod).get("nvidia.com/gpu", 0)
        if not count:
            return None
        node = pod["spec"].get("nodeName")
        held = {
            int(i)
            for (plural, _, _), other in self._objects.items()
            if plural == "pods"
            and other is not pod
            and other["spec"].get("nodeName") == node
            and other["status"].get("phase") == "Running"
            for i in (other["metadata"].get("annotations") or {}).get(FAKE_GPU_IDS, "").split(",")
            if i
        }
        free = (i for i in range(1 << 16) if i not in held)
        return [next(free) for _ in range(count)]

    def _start(self, namespace: str, name: str, pod: dict[str, Any]) -> None:
        """Run the Pod's first container as a local process (as its securityContext's uid and
        gid, when it names them and the fake runs as root)."""
        container = pod["spec"]["containers"][0]
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        env = {k: v for k, v in os.environ.items() if k not in HIDDEN}
        for item in container.get("env") or []:
            value = str(item.get("value", ""))
            env[item["name"]] = "127.0.0.1" if _POD_DNS.match(value) else value
        env["HOSTNAME"] = name
        ids = self._plugin_devices(pod)
        if ids is not None:  # as NVIDIA's device plugin does (deviceIDStrategy: index)
            env["NVIDIA_VISIBLE_DEVICES"] = ",".join(str(i) for i in ids)
            pod["metadata"].setdefault("annotations", {})[FAKE_GPU_IDS] = env[
                "NVIDIA_VISIBLE_DEVICES"
            ]
        sandbox = self.workdir / "pods" / namespace / name
        sandbox.mkdir(parents=True, exist_ok=True)
        workdir = container.get("workingDir")
        cwd = workdir if workdir and Path(workdir).is_dir() else str(sandbox)
        log = self.workdir / "logs" / namespace / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        status = pod["status"]
        try:
            with open(log, "ab") as out:
                popen = subprocess.Popen(
                    argv,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=cwd,
                    env=env,
                    start_new_session=True,
                    **_run_as(pod),
                )
        except (OSError, IndexError) as exc:
            log.write_text(f"fake kubelet: cannot start {argv!r}: {exc}\n")
            status.update(phase="Failed", reason="StartError")
            status["containerStatuses"] = [_container_status(name, 128, "StartError")]
            return
        self._procs[(namespace, name)] = _Process(popen, log)
        status.update(
            phase="Running",
            hostIP="127.0.0.1",
            podIP="127.0.0.1",
            startTime=_now(),
        )
        status["containerStatuses"] = [
            {
                "name": container.get("name", "rank"),
                "image": container.get("image", ""),
                "imageID": "",
                "ready": True,
                "restartCount": 0,
                "started": True,
                "state": {"running": {"startedAt": _now()}},
            }
        ]

    def _terminated(self, pod: dict[str, Any], returncode: int) -> None:
        code = 128 - returncode if returncode < 0 else returncode
        reason = "Completed" if code == 0 else "Error"
        status = pod["status"]
        status["phase"] = "Succeeded" if code == 0 else "Failed"
        name = pod["spec"]["containers"][0].get("name", "rank")
        status["containerStatuses"] = [_container_status(name, code, reason)]


def _expired(position: int, compacted: int) -> dict[str, Any]:
    """The ERROR event kube-apiserver sends a watch whose resourceVersion is gone."""
    return {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"too old resource version: {position} ({compacted})",
            "reason": "Expired",
            "code": 410,
        },
    }


def _bookmark(plural: str, position: int) -> dict[str, Any]:
    return {
        "type": "BOOKMARK",
        "object": {
            "kind": _KINDS[plural],
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(position)},
        },
    }


def _container_status(name: str, code: int, reason: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": "",
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "started": False,
        "state": {"terminated": {"exitCode": code, "reason": reason, "finishedAt": _now()}},
    }


def _limits(pod: Mapping[str, Any]) -> dict[str, int]:
    """Device-plugin (`<domain>/<name>`) limits of a Pod's containers, summed."""
    total: dict[str, int] = {}
    for container in pod["spec"].get("containers") or []:
        for key, value in ((container.get("resources") or {}).get("limits") or {}).items():
            if "/" in key:
                total[key] = total.get(key, 0) + _quantity(value)
    return total


def _killpg(pgid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, number)


class _Handler(BaseHTTPRequestHandler):
    """Routes core/v1 paths to the FakeKubernetes in `api`."""

    api: FakeKubernetes
    protocol_version = "HTTP/1.1"
    verb = ""

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        try:
            return json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return {}

    def _send(self, code: int, payload: Any, content_type: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _alive(self) -> bool:
        """Whether the client is still there (its end of the connection is not closed)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return not readable or self.connection.recv(1, socket.MSG_PEEK) != b""
        except OSError:
            return False

    def _stream(self, events: Iterator[dict[str, Any]]) -> None:
        """A watch answer: 200, then one JSON event a line, each line its own chunk."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in events:
                data = json.dumps(event).encode() + b"\n"
                self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client went away
            self.close_connection = True
        if self.api._stopping.is_set():
            self.close_connection = True

    def _route(self, method: str) -> None:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [p for p in url.path.split("/") if p]
        self.api.requests.append((method, url.path))
        self.verb = ""
        try:
            handler = self._dispatch(method, parts, query)
            self.api.audit.append((self.verb, url.path))
            code, payload, content_type = handler()
        except ApiError as exc:
            self._send(exc.code, exc.status())
            return
        if isinstance(payload, Iterator):
            self._stream(payload)
        else:
            self._send(code, payload, content_type)

    def _dispatch(
        self, method: str, parts: list[str], query: Mapping[str, str]
    ) -> Callable[[], tuple[int, Any, str]]:
        api, js = self.api, "application/json"
        if parts == ["version"]:
            return lambda: (200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake"}, js)
        if parts[:2] != ["api", "v1"]:
            raise ApiError(404, "NotFound", f"the server could not find {self.path}")
        rest = parts[2:]
        namespace: str | None = None
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        if not rest or rest[0] not in _KINDS:
            raise ApiError(404, "NotFound", f"the server could not find {self.path}")
        plural, name = rest[0], rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        ns = namespace if plural != "nodes" else ""
        selector = query.get("labelSelector", "")
        if not name:
            scope = None if namespace is None and plural != "nodes" else (ns or "")
            if method == "GET" and query.get("watch", "").lower() in ("1", "true"):
                self.verb = "watch"
                since = query.get("resourceVersion", "")
                timeout = float(query.get("timeoutSeconds") or 1800)
                marks = query.get("allowWatchBookmarks", "").lower() in ("1", "true")
                events = api.watch(plural, scope, selector, since, timeout, marks, self._alive)
                return lambda: (200, events, js)
            if method == "GET":
                self.verb = "list"
                return lambda: (200, api.list(plural, scope, selector), js)
            if method == "POST":
                self.verb = "create"
                body = self._body()
                return lambda: (201, api.create(plural, ns or "", body), js)
        elif sub == "binding" and method == "POST" and plural == "pods":
            self.verb = "create"
            body = self._body()
            return lambda: (201, api.bind(ns or "", name, body), js)
        elif sub == "log" and method == "GET" and plural == "pods":
            self.verb = "get"
            return lambda: (200, api.log(ns or "", name), "text/plain")
        elif not sub and method == "GET":
            self.verb = "get"
            return lambda: (200, api.get(plural, ns or "", name), js)
        elif not sub and method == "PATCH":
            self.verb = "patch"
            body = self._body()
            return lambda: (200, api.patch(plural, ns or "", name, body), js)
        elif not sub and method == "DELETE":
            self.verb = "delete"
            body = self._body()
            grace = query.get("gracePeriodSeconds", body.get("gracePeriodSeconds"))
            grace_s = None if grace is None else int(grace)
            return lambda: (200, api.delete(plural, ns or "", name, grace_s), js)
        raise ApiError(405, "MethodNotAllowed", f"{method} {self.path} is not supported here")

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_DELETE(self) -> None:
        self._route("DELETE")


FAKE_GPU_IDS = "fake.suan.io/gpu-ids"
"""Where the fake kubelet notes the GPU indices its stand-in device plugin gave a Pod."""


def _run_as(pod: Mapping[str, Any]) -> dict[str, Any]:
    """Popen's options for the Pod's securityContext.runAsUser/runAsGroup (container first)."""
    container = (pod["spec"].get("containers") or [{}])[0]
    merged = {
        **(pod["spec"].get("securityContext") or {}),
        **(container.get("securityContext") or {}),
    }
    uid = merged.get("runAsUser")
    if uid is None or os.geteuid() != 0:
        return {}
    return {"user": uid, "group": merged.get("runAsGroup", uid), "extra_groups": []}
