"""The Kubernetes executor: each rank is a Pod that Suan binds to the node it chose.

- Watching: the executor keeps two caches, Suan's Pods in its namespace (label
  `app.kubernetes.io/managed-by=suan`) and the Nodes (the settings' selector), each filled by
  a list and kept current by `kubernetes.watch.Watch` from the list's resourceVersion in a
  background thread (`_Informer`, a small client-go reflector). The thread re-watches from the
  last resourceVersion it saw when a watch times out, relists when the server answers 410
  (the version is too old: compacted, or the watch cache reset) and when the connection
  fails, and backs off while the server is away. poll() and inventory() read the caches, so
  they cost no request and see a Pod's change as soon as the server sends it;
- `inventory()` maps the cached Nodes (suan.exec.kube_inventory: device-plugin resources
  through the catalog, labels as topology tiers, NotReady/cordoned/tainted nodes not ready
  with the condition's own words);
- `launch()` creates the launch's headless Service, then one Pod per rank
  (suan.exec.kube_objects) owned by the Service, and binds each Pod to its node with a
  Binding. A name that already exists (409) is adopted, never created twice; a launch that
  fails half-way deletes its Service, and with it every Pod it made. `spec.image` is required;
- `poll()` reads the tracked launches' Pods from the Pod cache: Pending/Running Pods (and
  terminating ones) run; a terminated container's `exitCode` is the rank's exit code; a
  Failed Pod without one (NodeLost, Evicted, OutOf<resource>) or a Pod that vanished ends
  with an unknown code. A Pod the cache lacks is read once (GET) before it counts as
  vanished, since the cache may not have seen a Pod just created yet; a 404 marks it gone for
  good. Exit codes are also written to the shared files (`rank-R.exit`) so they outlive the
  Pods. Once every rank has ended, the Service is deleted (and the Pods with it). poll()
  raises EngineError while the cache cannot be trusted (its last relist failed);
- `stop()` deletes the Pods with `gracePeriodSeconds` = the grace (Kubernetes sends SIGTERM,
  then SIGKILL);
- `discover()` finds a launch's Pods by the `suan.io/launch` label after a server crash;
- `logs()` copies the Pod's log (pods/<name>/log) into the shared log file `rank-R.log`
  (appended across attempts, like every engine) and reads it from the offset.

`RankHandle.engine_id` is the Pod name. The device plugin picks device ids; they are not
reported (`RankStatus.devices` is None). The client is the official `kubernetes` package
(optional extra `kubernetes`), imported when an executor is made. `close()` stops the
watches (they also stop when the executor is garbage-collected).
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suan.catalog import Catalog, default_catalog
from suan.cluster.model import Node
from suan.cluster.snapshot import ReplicaPlacement
from suan.exec import EngineError, JobLaunch, JobStatus, RankHandle, RankStatus, launch_name
from suan.exec.environment import rank_environments
from suan.exec.files import JobFiles
from suan.exec.kube_inventory import (
    DEFAULT_TOPOLOGY_LABELS,
    DEFAULT_TYPE_LABELS,
    KubeInventoryRules,
    kube_nodes,
)
from suan.exec.kube_objects import (
    ANNOTATION_DEVICES,
    ANNOTATION_NODE,
    DEVICES_PREFIX,
    LABEL_LAUNCH,
    LABEL_MANAGED,
    LaunchSpec,
    label_value,
    launch_service,
    pod_address,
    pod_binding,
    pod_name,
    rank_of,
    rank_pod,
    service_name,
    tolerations_for,
)

STUCK_REASONS = {
    "ErrImageNeverPull",
    "InvalidImageName",
    "ImagePullBackOff",
    "CreateContainerConfigError",
}
"""Container waiting reasons that do not clear by themselves: the rank counts as failed."""


@dataclass(frozen=True)
class KubernetesSettings:
    """How Suan drives one Kubernetes cluster.

    `host` is the API server URL (e.g. the fake's); None reads `kubeconfig` (None: the default
    kubeconfig, or the in-cluster service account). `namespace` holds Suan's Pods;
    `scheduler_name` is the scheduler the Pods name (one that does not run, so only Suan binds
    them). `type_labels`, `default_type`, `topology_labels`, `tolerated_taints` read the
    Nodes (suan.exec.kube_inventory). `default_image` is the image of jobs that name none
    (empty: `spec.image` is required). `simulated` says the devices are stand-ins (gloo).
    `watch_timeout_s` is the `timeoutSeconds` of each watch (the server ends it then and the
    executor watches again from where it was); `request_timeout_s` bounds every other call,
    and how long a first poll()/inventory() waits for its cache's first list.
    """

    host: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str = "default"
    scheduler_name: str = "suan"
    cluster_domain: str = "cluster.local"
    type_labels: tuple[str, ...] = DEFAULT_TYPE_LABELS
    default_type: str | None = None
    topology_labels: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_TOPOLOGY_LABELS)
    )
    tolerated_taints: tuple[str, ...] = ()
    node_selector: str = ""
    default_image: str = ""
    simulated: bool = False
    grace_s: int = 30
    devices_env: Mapping[str, str] = field(
        default_factory=lambda: {"nvidia.com/gpu": "NVIDIA_VISIBLE_DEVICES"}
    )
    master_port_base: int = 29500
    request_timeout_s: float = 30.0
    watch_timeout_s: int = 300

    def inventory_rules(self) -> KubeInventoryRules:
        return KubeInventoryRules(
            self.type_labels, self.default_type, dict(self.topology_labels), self.tolerated_taints
        )


@dataclass
class _Tracked:
    attempt: int
    handles: list[RankHandle]
    launch: str
    stopping: bool = False
    cleaned: bool = False
    copied: dict[int, int] = field(default_factory=dict)
    gone: set[int] = field(default_factory=set)  # ranks whose Pod a GET found missing
    no_ids: set[int] = field(default_factory=set)  # ranks whose log gave no device indices


def _api(settings: KubernetesSettings) -> Any:
    """A CoreV1Api for the settings' cluster."""
    try:
        from kubernetes import client, config
    except ImportError:  # pragma: no cover - depends on the install
        raise EngineError(
            "kubernetes: the Python client is not installed (pip install 'suan[kubernetes]')"
        ) from None
    if settings.host:
        configuration = client.Configuration()
        configuration.host = settings.host
        return client.CoreV1Api(client.ApiClient(configuration))
    try:
        if settings.kubeconfig or not _in_cluster():
            api_client = config.new_client_from_config(
                config_file=settings.kubeconfig, context=settings.context
            )
        else:
            config.load_incluster_config()
            api_client = client.ApiClient()
    except Exception as exc:  # the loader raises several types
        raise EngineError(f"kubernetes: cannot load the cluster configuration: {exc}") from None
    return client.CoreV1Api(api_client)


def _in_cluster() -> bool:
    return Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists()


@functools.cache
def _raw_watch_type() -> type:
    from kubernetes import watch

    class RawWatch(watch.Watch):  # type: ignore[misc]
        def get_return_type(self, func: Any) -> Any:
            return None  # events keep `raw_object` as the `object`: JSON, like every read here

    return RawWatch


def _raw_watch() -> Any:
    """A `kubernetes.watch.Watch` whose events carry plain JSON objects (no model types)."""
    return _raw_watch_type()()


class _Informer:
    """One kind of object (by a list call and a label selector) kept current in a cache.

    A daemon thread lists (the cache becomes the items, at the list's resourceVersion), then
    streams `Watch` events from that resourceVersion, applying ADDED/MODIFIED/DELETED to the
    cache and moving its resourceVersion with each event and BOOKMARK. When a watch ends at
    its timeout the thread watches again from the last resourceVersion (no list). A 410 (the
    server no longer has that version: an HTTP 410 or an ERROR event) or any other failure of
    the watch makes it relist, at once the first time and then with a backoff (0.1 s doubling
    to 2 s) while failures repeat; a failed relist sets `error` and leaves the cache unsynced
    until a relist succeeds.

    Why a thread rather than a watch step inside poll(): a watch is a long-lived stream and
    `timeoutSeconds` is whole seconds, so a step inside poll() would either hold poll() for a
    second or more, or cut each stream with a client read timeout and open a new request on
    every poll (no cheaper than the list it replaces, and fragile mid-event). The thread sees
    a change the moment the server sends it, poll() reads a dict, and reconnecting, relisting
    and backing off live in one place. The cost is one thread (and one open connection) per
    watched kind, stopped by `stop()`.

    `snapshot()` is the only reader. `relists` and `expired` count lists and 410s.
    """

    def __init__(
        self,
        what: str,
        list_call: Callable[..., Any],
        args: tuple[Any, ...],
        selector: str,
        watch_timeout_s: int,
        request_timeout_s: float,
    ):
        self.what = what
        self._list_call = list_call
        self._args = args
        self._selector = {"label_selector": selector} if selector else {}
        self._watch_timeout_s = max(1, int(watch_timeout_s))
        self._request_timeout_s = request_timeout_s
        self._cond = threading.Condition()
        self._items: dict[str, dict[str, Any]] = {}
        self._version = ""
        self._synced = False
        self.error: str | None = None
        self.relists = 0
        self.expired = 0
        self._delivered = 0
        self._stop = threading.Event()
        self._watch: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._cond:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, daemon=True, name=f"suan-kube-watch-{self.what}"
                )
                self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end and cut its open watch (best effort; it is a daemon)."""
        self._stop.set()
        watch = self._watch
        if watch is not None:
            with contextlib.suppress(Exception):
                watch.stop()

    def snapshot(self, wait_s: float) -> dict[str, dict[str, Any]]:
        """The cached objects by name (copies of the mapping, shared objects: do not modify).

        Starts the thread if needed and waits up to `wait_s` for a first list. Raises
        EngineError when the cache is not synced: its last relist failed (the failure's
        words), or the first list did not answer in time.
        """
        self.start()
        deadline = time.monotonic() + wait_s
        with self._cond:
            while not self._synced and self.error is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if self._synced:
                return dict(self._items)
            raise EngineError(
                self.error or f"kubernetes: list {self.what}: no answer within {wait_s:g}s"
            )

    # -- the thread --------------------------------------------------------------------------
    def _run(self) -> None:
        failures = 0
        relist = True
        while not self._stop.is_set():
            if failures > 1 and self._stop.wait(min(2.0, 0.1 * 2 ** (failures - 2))):
                return
            if relist:
                try:
                    self._relist()
                except EngineError as exc:
                    with self._cond:
                        self._synced, self.error = False, str(exc)
                        self._cond.notify_all()
                    failures += 1
                    continue
                relist = False
            started, self._delivered = time.monotonic(), 0
            try:
                self._watch_once()
            except Exception as exc:  # 410, other Status answers, connection errors
                if self._stop.is_set():
                    return
                if getattr(exc, "status", None) == 410:
                    self.expired += 1
                relist, failures = True, 1 if self._delivered else failures + 1
                continue
            # ended by the server: fine, unless it ends at once again and again
            quick = not self._delivered and time.monotonic() - started < 1.0
            failures = failures + 1 if quick else 0

    def _relist(self) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            response = self._list_call(
                *self._args,
                **self._selector,
                _preload_content=False,
                _request_timeout=self._request_timeout_s,
            )
            listed = json.loads(response.data)
            items = {obj["metadata"]["name"]: obj for obj in listed.get("items") or []}
            version = str((listed.get("metadata") or {}).get("resourceVersion") or "")
        except ApiException as exc:
            raise EngineError(str(_Status.of(exc, f"list {self.what}"))) from None
        except Exception as exc:  # urllib3 connection errors, a garbled answer
            raise EngineError(
                f"kubernetes: list {self.what}: the API server did not answer: {exc}"
            ) from None
        with self._cond:
            self._items, self._version = items, version
            self._synced, self.error = True, None
            self.relists += 1
            self._cond.notify_all()

    def _watch_once(self) -> None:
        """One watch from the cache's resourceVersion until the server ends it (or stop());
        raises what the stream raises (ApiException with status 410 when the version is too
        old, urllib3 errors when the connection fails)."""
        watch = _raw_watch()
        self._watch = watch
        if self._stop.is_set():
            return
        # the read timeout outlasts timeoutSeconds: the server, not the client, ends a watch
        timeout = (self._request_timeout_s, self._watch_timeout_s + self._request_timeout_s)
        for event in watch.stream(
            self._list_call,
            *self._args,
            **self._selector,
            resource_version=self._version,
            timeout_seconds=self._watch_timeout_s,
            allow_watch_bookmarks=True,
            _request_timeout=timeout,
        ):
            if isinstance(event, dict):
                self._apply(event)
                self._delivered += 1
            if self._stop.is_set():
                watch.stop()

    def _apply(self, event: Mapping[str, Any]) -> None:
        obj = event.get("raw_object") or event.get("object")
        if not isinstance(obj, dict):
            return
        meta = obj.get("metadata") or {}
        kind, name = event.get("type"), meta.get("name")
        with self._cond:
            if kind in ("ADDED", "MODIFIED") and name:
                self._items[name] = obj
            elif kind == "DELETED" and name:
                self._items.pop(name, None)
            if meta.get("resourceVersion"):
                self._version = str(meta["resourceVersion"])


def _stop_all(informers: tuple[_Informer, ...]) -> None:
    for informer in informers:
        informer.stop()


class KubernetesExecutor:
    """Runs each rank as a Pod bound by Suan; see the module docstring.

    The Pod watch starts with the first launch(), adopt() or poll(), the Node watch with the
    first inventory(); both stop on close() or when the executor is garbage-collected.
    """

    engine = "kubernetes"

    def __init__(self, home: Path, settings: KubernetesSettings, catalog: Catalog | None = None):
        self.home = Path(home)
        self.files = JobFiles(self.home)
        self.settings = settings
        self.catalog = catalog or default_catalog()
        self.api = _api(settings)
        self._jobs: dict[str, _Tracked] = {}
        ns = settings.namespace
        timeouts = (settings.watch_timeout_s, settings.request_timeout_s)
        self._pods = _Informer(
            f"pods in namespace {ns}",
            self.api.list_namespaced_pod,
            (ns,),
            f"{LABEL_MANAGED}=suan",
            *timeouts,
        )
        self._nodes = _Informer("nodes", self.api.list_node, (), settings.node_selector, *timeouts)
        self._closer = weakref.finalize(self, _stop_all, (self._pods, self._nodes))

    def close(self) -> None:
        """Stop watching (the threads end; their open watches are cut)."""
        self._closer()

    # -- talking to the API server -----------------------------------------------------------
    def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a CoreV1Api method; the response as plain JSON data (bytes for logs).

        Raises `_Status` for an HTTP error from the server (with its code and message) and
        EngineError when the server cannot be reached.
        """
        from kubernetes.client.exceptions import ApiException

        kwargs.setdefault("_request_timeout", self.settings.request_timeout_s)
        try:
            response = getattr(self.api, method)(*args, _preload_content=False, **kwargs)
        except ApiException as exc:
            raise _Status.of(exc, what) from None
        except Exception as exc:  # urllib3 connection errors and the like
            raise EngineError(f"kubernetes: {what}: the API server did not answer: {exc}") from None
        data = response.data
        if method == "read_namespaced_pod_log":
            return data
        return json.loads(data) if data else {}

    # -- inventory ---------------------------------------------------------------------------
    def inventory(self) -> tuple[Node, ...]:
        """Suan's Nodes (all, or those the settings' label selector picks), by name, from the
        Node cache (a change shows once the watch delivers it: milliseconds, not a list)."""
        nodes = self._nodes.snapshot(self.settings.request_timeout_s)
        items = [nodes[name] for name in sorted(nodes)]
        return kube_nodes(items, self.settings.inventory_rules(), self.catalog)

    # -- launch ------------------------------------------------------------------------------
    def launch(self, job: JobLaunch, placement: tuple[ReplicaPlacement, ...]) -> list[RankHandle]:
        """Create the Service and every rank's Pod, and bind each Pod to its node."""
        if not job.command:
            raise ValueError(f"job {job.job_id} has no command")
        image = job.image or self.settings.default_image
        if not image:
            raise EngineError(
                f"job {job.job_id}: spec.image is required on Kubernetes (the container image "
                "every rank runs in, e.g. 'registry.example.com/team/trainer:1.4')"
            )
        self._check_nodes(placement)
        self.files.prepare(job)
        self._pods.start()
        spec = self._launch_spec(job, placement, image)
        name = spec.launch
        service = self._create_or_adopt("services", launch_service(spec), name)
        owner = service["metadata"]["uid"]
        try:
            for rank in range(spec.world_size):
                visible = self._visible_variable(job)
                pod = self._create_or_adopt("pods", rank_pod(spec, rank, owner, visible), name)
                if pod.pop("_created", False):
                    self._fresh_rank(job, rank)
                if not (pod.get("spec") or {}).get("nodeName"):
                    self._bind(pod["metadata"]["name"], spec.ranks[rank][0])
        except (EngineError, _Status) as exc:
            with contextlib.suppress(EngineError, _Status):
                self._delete_service(name, grace_s=0)
            raise EngineError(f"kubernetes: launch {name} failed and was deleted: {exc}") from None
        self._header(job, placement)
        handles = self._handles(job.job_id, job.attempt, name, placement)
        self._jobs[job.job_id] = _Tracked(job.attempt, handles, name)
        return handles

    def _visible_variable(self, job: JobLaunch) -> str:
        return self.catalog.get(job.accelerator).visible_devices_env if job.accelerator else ""

    def _check_nodes(self, placement: tuple[ReplicaPlacement, ...]) -> None:
        """Every node of the placement exists (the API server would bind to any name)."""
        for node in dict.fromkeys(replica.node for replica in placement):
            try:
                self._call(f"read nodes/{node}", "read_node", node)
            except _Status as exc:
                if exc.code == 404:
                    raise EngineError(
                        f"kubernetes does not know node {node!r} (no Node by that name)"
                    ) from None
                raise EngineError(str(exc)) from None

    def _launch_spec(
        self, job: JobLaunch, placement: tuple[ReplicaPlacement, ...], image: str
    ) -> LaunchSpec:
        name = launch_name(job.job_id, job.attempt)
        port = self.settings.master_port_base + zlib.crc32(name.encode()) % 10000
        master = pod_address(name, 0, self.settings.namespace, self.settings.cluster_domain)
        envs = rank_environments(job, placement, master, port, base={}, catalog=self.catalog)
        resource = ""
        if job.accelerator and any(replica.devices for replica in placement):
            resource = self.catalog.get(job.accelerator).kubernetes_resource
            if not resource:
                raise EngineError(
                    f"kubernetes: the catalog names no device-plugin resource for "
                    f"{job.accelerator} (kubernetes_resource in the accelerator catalog)"
                )
        resources = [a.kubernetes_resource for a in self.catalog if a.kubernetes_resource]
        return LaunchSpec(
            job_id=job.job_id,
            attempt=job.attempt,
            launch=name,
            namespace=self.settings.namespace,
            image=image,
            command=tuple(job.command),
            ranks=tuple(
                (replica.node, len(replica.devices), env)
                for replica, env in zip(placement, envs, strict=True)
            ),
            resource=resource,
            devices_env=self.settings.devices_env.get(resource, ""),
            master_port=port,
            workdir=job.workdir,
            grace_s=self.settings.grace_s,
            scheduler_name=self.settings.scheduler_name,
            run_as=launch_identity(job),
            tolerations=tolerations_for(sorted(set(resources))),
        )

    def _create_or_adopt(self, plural: str, body: dict[str, Any], launch: str) -> dict[str, Any]:
        """Create an object; when its name exists (409) and it belongs to this launch, the
        existing object (a launch a crash cut short is adopted, never created twice)."""
        ns, name = self.settings.namespace, body["metadata"]["name"]
        create = "create_namespaced_pod" if plural == "pods" else "create_namespaced_service"
        read = "read_namespaced_pod" if plural == "pods" else "read_namespaced_service"
        try:
            return {**self._call(f"create {plural}/{name}", create, ns, body), "_created": True}
        except _Status as exc:
            if exc.code != 409:
                raise EngineError(str(exc)) from None
        existing = self._call(f"read {plural}/{name}", read, name, ns)
        labels = existing["metadata"].get("labels") or {}
        if labels.get(LABEL_LAUNCH) != label_value(launch):
            raise EngineError(
                f"kubernetes: {plural}/{name} exists in namespace {ns} but is not Suan's "
                f"launch {launch} (label {LABEL_LAUNCH}={labels.get(LABEL_LAUNCH)!r})"
            )
        return existing

    def _fresh_rank(self, job: JobLaunch, rank: int) -> None:
        """A rank's Pod was just created: forget what an earlier Pod of its name left."""
        run = self.files.run_dir(job.job_id, job.attempt)
        self.files.exit_path(job.job_id, job.attempt, rank).unlink(missing_ok=True)
        (run / f"rank-{rank}.copied").unlink(missing_ok=True)

    def _bind(self, pod: str, node: str) -> None:
        body = pod_binding(pod, node, self.settings.namespace)
        try:
            self._call(
                f"bind pods/{pod} to {node}",
                "create_namespaced_pod_binding",
                pod,
                self.settings.namespace,
                body,
            )
        except _Status as exc:
            if exc.code != 409:  # 409: already bound (by an earlier launch call)
                raise

    def _header(self, job: JobLaunch, placement: tuple[ReplicaPlacement, ...]) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        for rank, replica in enumerate(placement):
            log = self.files.log_path(job.job_id, rank)
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "ab") as out:
                name = pod_name(launch_name(job.job_id, job.attempt), rank)
                out.write(
                    f"--- suan: attempt {job.attempt}, rank {rank}, {replica.node}, "
                    f"pod {name}, {stamp} ---\n".encode()
                )
        self.files.run_dir(job.job_id, job.attempt).mkdir(parents=True, exist_ok=True)

    def _handles(self, job_id: str, attempt: int, launch: str, placement: Any) -> list[RankHandle]:
        return self.files.remote_handles(
            job_id, attempt, placement, lambda rank: pod_name(launch, rank)
        )

    # -- finding launches --------------------------------------------------------------------
    def _launch_pods(self, launch: str) -> list[dict[str, Any]]:
        listed = self._call(
            f"list pods of {launch}",
            "list_namespaced_pod",
            self.settings.namespace,
            label_selector=f"{LABEL_LAUNCH}={label_value(launch)}",
        )
        return listed.get("items") or []

    def discover(self, job_id: str, attempt: int) -> list[RankHandle]:
        """The ranks of a launch whose Pods exist (after a server crash), by label."""
        launch = launch_name(job_id, attempt)
        try:
            pods = self._launch_pods(launch)
        except _Status as exc:
            raise EngineError(str(exc)) from None
        found: dict[int, ReplicaPlacement] = {}
        for pod in pods:
            meta = pod["metadata"]
            rank = rank_of(meta.get("labels"))
            if rank is None:
                continue
            notes = meta.get("annotations") or {}
            node = notes.get(ANNOTATION_NODE) or (pod.get("spec") or {}).get("nodeName") or ""
            count = int(notes.get(ANNOTATION_DEVICES) or 0)
            found[rank] = ReplicaPlacement(0, node, tuple(range(count)))
        return [
            RankHandle(
                job_id,
                attempt,
                rank,
                found[rank].node,
                found[rank].devices,
                0,
                0,
                str(self.files.log_path(job_id, rank)),
                engine_id=pod_name(launch, rank),
            )
            for rank in sorted(found)
        ]

    def adopt(self, handles: list[RankHandle]) -> None:
        self._pods.start()
        by_job: dict[str, list[RankHandle]] = {}
        for handle in handles:
            by_job.setdefault(handle.job_id, []).append(handle)
        for job_id, ranks in by_job.items():
            if job_id not in self._jobs:
                ranks.sort(key=lambda h: h.rank)
                launch = launch_name(job_id, ranks[0].attempt)
                self._jobs[job_id] = _Tracked(ranks[0].attempt, ranks, launch)

    def forget(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)

    def tracked(self) -> set[str]:
        return set(self._jobs)

    # -- watching ----------------------------------------------------------------------------
    def poll(self) -> dict[str, JobStatus]:
        """Every tracked job's ranks, from the Pod cache; cleans up launches that have ended.

        No list: the watch keeps the cache current. A Pod the cache lacks is read (GET) until
        a 404 says it is gone. Raises EngineError when the cache cannot be trusted."""
        if not self._jobs:
            return {}
        cached = self._pods.snapshot(self.settings.request_timeout_s)
        report = {}
        for job_id, tracked in self._jobs.items():
            pods = {h.engine_id: self._pod_of(tracked, h, cached) for h in tracked.handles}
            ranks = tuple(
                self._rank_status(tracked, handle, pods[handle.engine_id])
                for handle in tracked.handles
            )
            status = JobStatus(
                job_id,
                tracked.attempt,
                ranks,
                stopping=tracked.stopping,
                message=_describe(tracked, pods),
            )
            if status.all_exited and not tracked.cleaned:
                self._finish(job_id, tracked)
            report[job_id] = status
        return report

    def _pod_of(
        self, tracked: _Tracked, handle: RankHandle, cached: Mapping[str, dict[str, Any]]
    ) -> dict[str, Any] | None:
        """The rank's Pod: the cached one, else (a Pod just created that the watch has not
        delivered yet, or one deleted) the server's answer to a GET; None once it is gone."""
        pod = cached.get(handle.engine_id)
        if pod is not None or handle.rank in tracked.gone:
            return pod
        try:
            return self._call(
                f"read pods/{handle.engine_id}",
                "read_namespaced_pod",
                handle.engine_id,
                self.settings.namespace,
            )
        except _Status as exc:
            if exc.code != 404:
                raise EngineError(str(exc)) from None
        tracked.gone.add(handle.rank)
        return None

    def _rank_status(
        self, tracked: _Tracked, handle: RankHandle, pod: Mapping[str, Any] | None
    ) -> RankStatus:
        recorded = self.files.exit_code(handle.job_id, handle.attempt, handle.rank)
        devices = self._devices_given(tracked, handle, pod)
        if pod is None:
            return RankStatus(handle.rank, False, recorded, devices)
        running, code = pod_state(pod)
        if running:
            return RankStatus(handle.rank, True, devices=devices)
        if code is not None and recorded is None:
            self.files.record_exit(handle.job_id, handle.attempt, handle.rank, code)
        return RankStatus(handle.rank, False, code if code is not None else recorded, devices)

    def _devices_given(
        self, tracked: _Tracked, handle: RankHandle, pod: Mapping[str, Any] | None
    ) -> tuple[int, ...] | None:
        """The ids the device plugin gave a rank, read back from the first line of its Pod's
        log (kube_objects.devices_printer) once it has started; None while unknown."""
        given = self.files.assigned_devices(handle.job_id, handle.attempt, handle.rank)
        started = pod is not None and (pod.get("status") or {}).get("phase") != "Pending"
        if given is None and handle.devices and started and handle.rank not in tracked.no_ids:
            self._copy_log(tracked, handle)
            given = self.files.assigned_devices(handle.job_id, handle.attempt, handle.rank)
        return given

    def _finish(self, job_id: str, tracked: _Tracked) -> None:
        """Every rank ended: keep the logs, then delete the Service (and its Pods)."""
        for handle in tracked.handles:
            self._copy_log(tracked, handle)
        try:
            self._delete_service(tracked.launch, grace_s=None)
            tracked.cleaned = True
        except EngineError:
            pass  # the API server is away; try again on the next poll

    def _delete_service(self, launch: str, grace_s: int | None) -> None:
        try:
            self._call(
                f"delete services/{service_name(launch)}",
                "delete_namespaced_service",
                service_name(launch),
                self.settings.namespace,
                propagation_policy="Background",
            )
        except _Status as exc:
            if exc.code != 404:
                raise EngineError(str(exc)) from None
        if grace_s is not None:  # a failed launch: the Pods go now, whatever the GC does
            for pod in self._launch_pods(launch):
                self._delete_pod(pod["metadata"]["name"], grace_s)

    def _delete_pod(self, name: str, grace_s: int) -> None:
        try:
            self._call(
                f"delete pods/{name}",
                "delete_namespaced_pod",
                name,
                self.settings.namespace,
                grace_period_seconds=max(0, grace_s),
            )
        except _Status as exc:
            if exc.code != 404:
                raise EngineError(str(exc)) from None

    def stop(self, job_id: str, grace_s: float) -> None:
        """Delete every rank's Pod with `grace_s` (SIGTERM now, SIGKILL after it)."""
        tracked = self._jobs.get(job_id)
        if tracked is None or tracked.stopping:
            return
        tracked.stopping = True
        for handle in tracked.handles:
            self._delete_pod(handle.engine_id, round(grace_s))

    # -- logs --------------------------------------------------------------------------------
    def logs(
        self, job_id: str, rank: int, offset: int = 0, limit: int = 1 << 20
    ) -> tuple[bytes, int]:
        """Up to `limit` bytes of the rank's log from `offset` (its Pod's log copied in)."""
        tracked = self._jobs.get(job_id)
        if tracked is not None:
            handle = next((h for h in tracked.handles if h.rank == rank), None)
            if handle is not None:
                self._copy_log(tracked, handle)
        return self.files.read_log(job_id, rank, offset, limit)

    def _read_devices(self, tracked: _Tracked, handle: RankHandle, data: bytes) -> None:
        """Record the ids on the log's first line (`suan-devices: 0,3`); a rank whose first
        line says none, or ids that are not indices (UUIDs), is not asked again."""
        line = _first_line(data)
        if not line:
            return  # nothing logged yet
        if line.startswith(DEVICES_PREFIX):
            ids = line.removeprefix(DEVICES_PREFIX)
            self.files.record_devices(handle.job_id, handle.attempt, handle.rank, ids)
        if self.files.assigned_devices(handle.job_id, handle.attempt, handle.rank) is None:
            tracked.no_ids.add(handle.rank)

    def _copy_log(self, tracked: _Tracked, handle: RankHandle) -> None:
        """Append what the Pod logged since the last copy to the shared log file."""
        marker = self.files.run_dir(handle.job_id, handle.attempt) / f"rank-{handle.rank}.copied"
        done = tracked.copied.get(handle.rank)
        if done is None:
            try:
                done = int(marker.read_text())
            except (OSError, ValueError):
                done = 0
        try:
            data = self._call(
                f"log of pods/{handle.engine_id}",
                "read_namespaced_pod_log",
                handle.engine_id,
                self.settings.namespace,
            )
        except (_Status, EngineError):
            return
        if len(data) <= done:
            return
        if done == 0:
            self._read_devices(tracked, handle, data)
        log = self.files.log_path(handle.job_id, handle.rank)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            out.write(data[done:])
        tracked.copied[handle.rank] = len(data)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(len(data)))


def _first_line(data: bytes) -> str:
    return data.split(b"\n", 1)[0].decode(errors="replace") if b"\n" in data else ""


def launch_identity(job: JobLaunch) -> tuple[int, int] | None:
    """The (uid, gid) the ranks run as, when the launch carries an OS identity.

    The hook for per-user identities: reads `uid`/`gid` attributes once JobLaunch has them.
    """
    uid, gid = getattr(job, "uid", None), getattr(job, "gid", None)
    if isinstance(uid, int) and uid >= 0:
        return uid, gid if isinstance(gid, int) and gid >= 0 else uid
    return None


def pod_state(pod: Mapping[str, Any]) -> tuple[bool, int | None]:
    """(running, exit code) of one rank's Pod: see the module docstring."""
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    containers = status.get("containerStatuses") or []
    terminated = next(
        (c["state"]["terminated"] for c in containers if (c.get("state") or {}).get("terminated")),
        None,
    )
    if terminated is not None and phase in ("Succeeded", "Failed"):
        return False, int(terminated.get("exitCode", 1))
    if phase == "Succeeded":
        return False, 0
    if phase == "Failed":
        return False, None
    waiting = [
        (c.get("state") or {}).get("waiting", {}).get("reason")
        for c in containers
        if (c.get("state") or {}).get("waiting")
    ]
    if any(reason in STUCK_REASONS for reason in waiting):
        return False, None
    return True, None


def _describe(tracked: _Tracked, pods: Mapping[str, Mapping[str, Any] | None]) -> str:
    """ "kubernetes suan-j-1: 3 Running, r2 Failed (NodeLost: ...)"-style words."""
    phases: dict[str, int] = {}
    notes = []
    for handle in tracked.handles:
        pod = pods.get(handle.engine_id)
        if pod is None:
            phases["gone"] = phases.get("gone", 0) + 1
            continue
        status = pod.get("status") or {}
        phase = status.get("phase") or "Pending"
        if pod["metadata"].get("deletionTimestamp"):
            phase = "Terminating"
        phases[phase] = phases.get(phase, 0) + 1
        if status.get("reason"):
            notes.append(f"r{handle.rank} {status['reason']}: {status.get('message', '')}".strip())
    counts = ", ".join(f"{count} {phase}" for phase, count in phases.items())
    extra = f"; {'; '.join(notes)}" if notes else ""
    return f"kubernetes {tracked.launch}: {counts}{extra}"


class _Status(Exception):
    """An HTTP error answer of the API server, with its Status message."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code

    @classmethod
    def of(cls, exc: Any, what: str) -> _Status:
        message = exc.reason or ""
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            message = json.loads(exc.body).get("message") or message
        return cls(int(exc.status or 0), f"kubernetes: {what}: {exc.status} {message}")
