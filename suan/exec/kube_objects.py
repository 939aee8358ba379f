"""Kubernetes objects for one launch: pure functions, built with the official client's models.

    service = launch_service(spec)                      # headless Service, created first
    pods = [rank_pod(spec, rank, owner_uid=service_uid) for rank in range(spec.world_size)]
    binding = pod_binding(pod_name, node, namespace)    # POST pods/<name>/binding

Every function returns a plain manifest dict (`ApiClient().sanitize_for_serialization`), ready
to POST and valid against the official schemas in strict mode (tests/test_kube_objects.py).

- One Pod per rank, named `<launch_name>-r<rank>` made DNS-1123 safe (`pod_name`), labelled
  `suan.io/job`, `suan.io/attempt`, `suan.io/rank` and `suan.io/launch`, `restartPolicy: Never`;
  the catalog's device-plugin resource (`nvidia.com/gpu`, `huawei.com/Ascend910`, ...) with the
  rank's device count in `limits`.
- **Placement: `schedulerName` + Binding, not scheduling gates.** Suan has already chosen the
  node of every rank, so it binds each Pod itself (`pod_binding`): one POST per Pod, no
  dependence on kube-scheduler's view of the cluster (which may place a gated, pinned Pod
  elsewhere in time or refuse it for its own reasons), and no second scheduler decision to
  reconcile. The Pods name a scheduler that does not exist (`suan`), so kube-scheduler never
  touches them; `nodeName` stays unset until the Binding sets it. The cost, per-Pod binds, is
  handled by the executor (a failed launch deletes what it created).
- Rendezvous: a headless Service named after the launch selects the launch's Pods, publishes
  not-ready addresses, and each Pod sets `hostname` (its name) and `subdomain` (the Service),
  so rank 0 is `<pod>.<service>.<namespace>.svc.<cluster domain>` = MASTER_ADDR.
- Every Pod has an owner reference to the Service: deleting the Service deletes the launch.
- `securityContext.runAsUser/runAsGroup` when the launch carries an OS identity
  (`LaunchSpec.run_as`; the hook for per-user identities).
- The environment is each rank's from `suan.exec.environment.rank_environments`, except the
  vendor's visible-devices variable (`visible_devices_env`), which is set to `0..n-1`: the
  device plugin picks which devices a container gets and the container sees only those,
  numbered from 0.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LABEL_JOB = "suan.io/job"
LABEL_ATTEMPT = "suan.io/attempt"
LABEL_RANK = "suan.io/rank"
LABEL_LAUNCH = "suan.io/launch"
LABEL_MANAGED = "app.kubernetes.io/managed-by"
ANNOTATION_JOB = "suan.io/job-id"
ANNOTATION_NODE = "suan.io/node"
ANNOTATION_DEVICES = "suan.io/devices"
SCHEDULER_NAME = "suan"
CONTAINER_NAME = "rank"
DNS_LABEL_MAX = 63
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")


def dns_label(text: str, limit: int = DNS_LABEL_MAX) -> str:
    """`text` as a DNS-1123 label: lowercase, [a-z0-9-], at most `limit` characters.

    A name that had to be changed or cut keeps a short hash of the original, so two different
    job ids never map to the same label.
    """
    if len(text) <= limit and _DNS_LABEL.fullmatch(text):
        return text
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "x"
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    head = cleaned[: limit - len(digest) - 1].rstrip("-") or "x"
    return f"{head}-{digest}"


def label_value(text: str) -> str:
    """`text` as a label value (<= 63 of [A-Za-z0-9-_.], alphanumeric at both ends)."""
    if len(text) <= DNS_LABEL_MAX and _LABEL_VALUE.fullmatch(text):
        return text
    return dns_label(text)


def pod_name(launch: str, rank: int) -> str:
    """The Pod of one rank: `<launch>-r<rank>`, a DNS-1123 label (it is also the hostname)."""
    suffix = f"-r{rank}"
    return dns_label(launch, DNS_LABEL_MAX - len(suffix)) + suffix


def service_name(launch: str) -> str:
    """The headless Service of one launch (a DNS-1123 label, as Services must be)."""
    return dns_label(launch)


def pod_address(launch: str, rank: int, namespace: str, cluster_domain: str) -> str:
    """The DNS name of a rank's Pod through the launch's headless Service."""
    host = f"{pod_name(launch, rank)}.{service_name(launch)}.{namespace}.svc"
    return f"{host}.{cluster_domain}" if cluster_domain else host


@dataclass(frozen=True)
class LaunchSpec:
    """Everything the objects of one launch are built from (no I/O, no client state).

    `ranks` holds each rank's (node, device count, environment) in rank order; `resource` is
    the catalog's device-plugin resource name (empty: CPU ranks); `run_as` is (uid, gid) of the
    OS identity the ranks run as, None to use the image's.
    """

    job_id: str
    attempt: int
    launch: str
    namespace: str
    image: str
    command: tuple[str, ...]
    ranks: tuple[tuple[str, int, Mapping[str, str]], ...]
    resource: str = ""
    master_port: int = 29500
    workdir: str = ""
    grace_s: int = 30
    scheduler_name: str = SCHEDULER_NAME
    run_as: tuple[int, int] | None = None
    tolerations: tuple[Mapping[str, Any], ...] = ()
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    devices_env: str = ""
    """The variable the device plugin sets to the ids it gave the container (NVIDIA's plugin:
    NVIDIA_VISIBLE_DEVICES); when set, ranks with devices first print it (`suan-devices: ...`)
    so that the ids read back from the Pod's log become the placement of record."""

    @property
    def world_size(self) -> int:
        return len(self.ranks)


def _client() -> Any:
    from kubernetes import client  # the optional `kubernetes` extra

    return client


def to_manifest(obj: Any) -> dict[str, Any]:
    """A client model as the plain dict the API server takes."""
    return _client().ApiClient().sanitize_for_serialization(obj)


def launch_labels(spec: LaunchSpec) -> dict[str, str]:
    """The labels every object of the launch carries (the rank's are added on Pods)."""
    return {
        **spec.extra_labels,
        LABEL_MANAGED: "suan",
        LABEL_JOB: label_value(spec.job_id),
        LABEL_ATTEMPT: str(spec.attempt),
        LABEL_LAUNCH: label_value(spec.launch),
    }


def launch_service(spec: LaunchSpec) -> dict[str, Any]:
    """The launch's headless Service: DNS for every rank, rank 0 as MASTER_ADDR."""
    k = _client()
    name = service_name(spec.launch)
    service = k.V1Service(
        api_version="v1",
        kind="Service",
        metadata=k.V1ObjectMeta(
            name=name,
            namespace=spec.namespace,
            labels=launch_labels(spec),
            annotations={ANNOTATION_JOB: spec.job_id},
        ),
        spec=k.V1ServiceSpec(
            cluster_ip="None",
            publish_not_ready_addresses=True,
            selector={LABEL_LAUNCH: label_value(spec.launch)},
            ports=[
                k.V1ServicePort(
                    name="rendezvous", port=spec.master_port, target_port=spec.master_port
                )
            ],
        ),
    )
    return to_manifest(service)


DEVICES_PREFIX = "suan-devices: "
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def devices_printer(variable: str) -> list[str]:
    """The prefix of a rank's command that prints the device plugin's `variable` as the log's
    first line (`suan-devices: 0,3`), then becomes the command."""
    if not _VARIABLE.match(variable):
        raise ValueError(f"{variable!r} is not an environment variable name")
    return ["/bin/sh", "-c", f'echo "{DEVICES_PREFIX}${{{variable}-}}"; exec "$@"', "suan-rank"]


def rank_pod(
    spec: LaunchSpec, rank: int, owner_uid: str = "", visible_devices_env: str = ""
) -> dict[str, Any]:
    """The Pod of rank `rank` (see the module docstring); `owner_uid` is the Service's uid."""
    k = _client()
    node, devices, environment = spec.ranks[rank]
    name = pod_name(spec.launch, rank)
    environment = dict(environment)
    if visible_devices_env:  # the container sees only its devices, numbered from 0
        environment[visible_devices_env] = ",".join(str(i) for i in range(devices))
    env = [k.V1EnvVar(name=key, value=value) for key, value in sorted(environment.items())]
    limits = {spec.resource: str(devices)} if spec.resource and devices else None
    command = list(spec.command)
    if spec.devices_env and devices:
        command = [*devices_printer(spec.devices_env), *command]
    container = k.V1Container(
        name=CONTAINER_NAME,
        image=spec.image,
        command=command,
        env=env,
        working_dir=spec.workdir or None,
        ports=[k.V1ContainerPort(name="rendezvous", container_port=spec.master_port)]
        if rank == 0
        else None,
        resources=k.V1ResourceRequirements(limits=limits) if limits else None,
    )
    security = None
    if spec.run_as is not None:
        uid, gid = spec.run_as
        security = k.V1PodSecurityContext(
            run_as_user=uid, run_as_group=gid, run_as_non_root=uid != 0 or None
        )
    owners = None
    if owner_uid:
        owners = [
            k.V1OwnerReference(
                api_version="v1",
                kind="Service",
                name=service_name(spec.launch),
                uid=owner_uid,
                block_owner_deletion=False,
            )
        ]
    pod = k.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=k.V1ObjectMeta(
            name=name,
            namespace=spec.namespace,
            labels={**launch_labels(spec), LABEL_RANK: str(rank)},
            annotations={
                ANNOTATION_JOB: spec.job_id,
                ANNOTATION_NODE: node,
                ANNOTATION_DEVICES: str(devices),
            },
            owner_references=owners,
        ),
        spec=k.V1PodSpec(
            scheduler_name=spec.scheduler_name,
            restart_policy="Never",
            hostname=name,
            subdomain=service_name(spec.launch),
            termination_grace_period_seconds=spec.grace_s,
            security_context=security,
            tolerations=[k.V1Toleration(**dict(t)) for t in spec.tolerations] or None,
            containers=[container],
        ),
    )
    return to_manifest(pod)


def pod_binding(name: str, node: str, namespace: str) -> dict[str, Any]:
    """The Binding that places Pod `name` on `node` (POST .../pods/<name>/binding)."""
    k = _client()
    binding = k.V1Binding(
        api_version="v1",
        kind="Binding",
        metadata=k.V1ObjectMeta(name=name, namespace=namespace),
        target=k.V1ObjectReference(api_version="v1", kind="Node", name=node),
    )
    return to_manifest(binding)


def launch_objects(spec: LaunchSpec, owner_uid: str = "") -> list[dict[str, Any]]:
    """The Service, every rank's Pod and Binding of one launch (for review and validation)."""
    pods = [rank_pod(spec, rank, owner_uid) for rank in range(spec.world_size)]
    bindings = [
        pod_binding(pod["metadata"]["name"], node, spec.namespace)
        for pod, (node, _, _) in zip(pods, spec.ranks, strict=True)
    ]
    return [launch_service(spec), *pods, *bindings]


def rank_of(labels: Mapping[str, str] | None) -> int | None:
    """The rank a Pod's labels name, None when they name none."""
    try:
        return int((labels or {})[LABEL_RANK])
    except (KeyError, ValueError):
        return None


def tolerations_for(keys: Sequence[str]) -> tuple[dict[str, str], ...]:
    """`Exists` tolerations for taints on these keys (GPU nodes are often tainted with the
    device-plugin resource name)."""
    return tuple({"key": key, "operator": "Exists"} for key in keys)
