"""Kubernetes-specific behaviour of the executor, against the FAKE API server
(suan.exec.kube_fake); the last tests run against a real cluster only when KUBECONFIG is set."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from suan.catalog import default_catalog
from suan.cluster.model import NodeHealth
from suan.cluster.snapshot import ReplicaPlacement
from suan.exec import EngineError, JobLaunch, JobStatus
from suan.exec.kube_fake import FakeKubernetes, fixture_nodes
from suan.exec.kube_objects import LABEL_LAUNCH
from suan.exec.kubernetes import KubernetesExecutor, KubernetesSettings

H100 = default_catalog().get("H100").name
NODES = ("suan-kube-0", "suan-kube-1", "suan-kube-2")


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> Iterator[FakeKubernetes]:
    labels = {
        "suan-kube-2": {"nvidia.com/gpu.clique": "c0ffee.7", "topology.kubernetes.io/zone": "z1"}
    }
    api = FakeKubernetes(fixture_nodes(3, gpus=4, labels=labels), tmp_path_factory.mktemp("fake"))
    api.start()
    yield api
    api.stop()


def _executor(fake: FakeKubernetes, home: Path, **settings) -> KubernetesExecutor:
    base = {"host": fake.url, "namespace": "suan", "simulated": True, "grace_s": 2}
    return KubernetesExecutor(home, KubernetesSettings(**{**base, **settings}))


def _job(code: str, image: str = "img.invalid/x:1") -> JobLaunch:
    return JobLaunch(
        f"k{uuid.uuid4().hex[:8]}", 1, (sys.executable, "-c", code), accelerator=H100, image=image
    )


def _until(executor: KubernetesExecutor, job_id: str, timeout: float = 30) -> JobStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = executor.poll().get(job_id)
        if status is not None and status.all_exited:
            return status
        time.sleep(0.05)
    raise AssertionError(f"{job_id} did not end; last {status}")


def _placement(*devices: int) -> tuple[ReplicaPlacement, ...]:
    return tuple(
        ReplicaPlacement(0, NODES[i], tuple(range(count))) for i, count in enumerate(devices)
    )


def test_inventory_reads_allocatable_product_and_topology(fake, tmp_path) -> None:
    nodes = {n.name: n for n in _executor(fake, tmp_path).inventory()}
    assert nodes["suan-kube-0"].accelerator == H100 and nodes["suan-kube-0"].devices == 4
    assert nodes["suan-kube-2"].supernode == "c0ffee.7" and nodes["suan-kube-2"].zone == "z1"
    assert nodes["suan-kube-0"].labels["engine"] == "kubernetes"


def test_a_not_ready_or_cordoned_node_is_reported_with_kubernetes_words(fake, tmp_path) -> None:
    executor = _executor(fake, tmp_path)
    fake.set_node_ready("suan-kube-1", False, "container runtime network not ready: cni down")
    fake.patch("nodes", "", "suan-kube-2", {"spec": {"unschedulable": True}})
    try:
        nodes = {n.name: n for n in executor.inventory()}
        assert nodes["suan-kube-1"].health is NodeHealth.DOWN
        assert "container runtime network not ready: cni down" in nodes["suan-kube-1"].health_reason
        assert nodes["suan-kube-2"].health is NodeHealth.CORDONED
        assert "unschedulable" in nodes["suan-kube-2"].health_reason
        assert nodes["suan-kube-0"].health is NodeHealth.READY
    finally:
        fake.set_node_ready("suan-kube-1", True)
        fake.patch("nodes", "", "suan-kube-2", {"spec": {"unschedulable": None}})


def test_a_tainted_node_is_cordoned_but_the_gpu_taint_is_tolerated(fake, tmp_path) -> None:
    taints = [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
        {"key": "maintenance", "value": "bios", "effect": "NoSchedule"},
    ]
    fake.patch("nodes", "", "suan-kube-2", {"spec": {"taints": taints[:1]}})
    try:
        node = {n.name: n for n in _executor(fake, tmp_path).inventory()}["suan-kube-2"]
        assert node.health is NodeHealth.READY
        fake.patch("nodes", "", "suan-kube-2", {"spec": {"taints": taints}})
        node = {n.name: n for n in _executor(fake, tmp_path).inventory()}["suan-kube-2"]
        assert node.health is NodeHealth.CORDONED
        assert node.health_reason == "kubernetes: tainted maintenance=bios:NoSchedule"
    finally:
        fake.patch("nodes", "", "suan-kube-2", {"spec": {"taints": None}})


def test_a_second_launch_adopts_instead_of_creating_twice(fake, tmp_path) -> None:
    job = _job("import time; time.sleep(1)")
    first = _executor(fake, tmp_path).launch(job, _placement(1, 1))
    second = _executor(fake, tmp_path)
    again = second.launch(job, _placement(1, 1))  # every create answers 409: adopted
    assert [h.engine_id for h in again] == [h.engine_id for h in first]
    launch = f"suan-{job.job_id}-1"
    assert len(fake.pods(f"{LABEL_LAUNCH}={launch}")) == 2
    conflicts = [r for r in fake.requests if r[0] == "POST" and r[1].endswith("/pods")]
    assert len(conflicts) >= 4  # two creates, two refused re-creates
    status = _until(second, job.job_id)
    assert [r.exit_code for r in status.ranks] == [0, 0]


def test_a_failed_pod_with_an_exit_code_is_a_rank_failure(fake, tmp_path) -> None:
    executor = _executor(fake, tmp_path)
    job = _job("import os, sys; sys.exit(3 if os.environ['RANK'] == '1' else 0)")
    executor.launch(job, _placement(1, 1))
    status = _until(executor, job.job_id)
    assert [r.exit_code for r in status.ranks] == [0, 3]
    assert status.first_failure is not None and status.first_failure.rank == 1
    assert (tmp_path / "jobs" / job.job_id / "run" / "1" / "rank-1.exit").read_text() == "3\n"


def test_a_node_lost_is_a_failure_with_an_unknown_code(fake, tmp_path) -> None:
    executor = _executor(fake, tmp_path)
    job = _job("import time; time.sleep(30)")
    executor.launch(job, _placement(0, 0, 1))
    deadline = time.monotonic() + 10
    while not all(
        p["status"]["phase"] == "Running" for p in fake.pods(f"{LABEL_LAUNCH}=suan-{job.job_id}-1")
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    fake.fail_node("suan-kube-2", "Kubelet stopped posting node status.")
    try:
        deadline = time.monotonic() + 10
        while (status := executor.poll()[job.job_id]).ranks[2].running:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert status.ranks[2].exit_code is None and "NodeLost" in status.message
        nodes = {n.name: n for n in executor.inventory()}
        assert "Kubelet stopped posting node status." in nodes["suan-kube-2"].health_reason
        executor.stop(job.job_id, 1)
        _until(executor, job.job_id)
    finally:
        fake.set_node_ready("suan-kube-2", True)


def test_more_devices_than_the_node_has_fails_admission(fake, tmp_path) -> None:
    executor = _executor(fake, tmp_path)
    job = _job("print('never')")
    executor.launch(job, (ReplicaPlacement(0, NODES[0], tuple(range(5))),))
    status = _until(executor, job.job_id)
    assert status.ranks[0].exit_code is None and "OutOfnvidia.com/gpu" in status.message


def test_a_missing_image_is_a_clear_error(fake, tmp_path) -> None:
    with pytest.raises(EngineError, match=r"spec\.image"):
        _executor(fake, tmp_path).launch(_job("print(1)", image=""), _placement(1))


def test_pods_are_bound_to_the_chosen_nodes_and_cleaned_up(fake, tmp_path) -> None:
    executor = _executor(fake, tmp_path)
    job = _job("print('ok')")
    executor.launch(job, _placement(2, 1))
    pods = fake.pods(f"{LABEL_LAUNCH}=suan-{job.job_id}-1")
    assert [p["spec"]["nodeName"] for p in pods] == ["suan-kube-0", "suan-kube-1"]
    assert [p["spec"]["containers"][0]["resources"]["limits"] for p in pods] == [
        {"nvidia.com/gpu": "2"},
        {"nvidia.com/gpu": "1"},
    ]
    _until(executor, job.job_id)
    assert fake.pods(f"{LABEL_LAUNCH}=suan-{job.job_id}-1") == []  # the Service took them
    assert b"ok" in executor.logs(job.job_id, 0)[0]


# -- watch, resourceVersion, 410 --------------------------------------------------------------


def _lists(fake: FakeKubernetes, path: str = "/api/v1/namespaces/suan/pods") -> int:
    return sum(1 for verb, where in fake.audit if verb == "list" and where == path)


def _wait_running(
    fake: FakeKubernetes, executor: KubernetesExecutor, job_id: str, timeout: float = 10
) -> None:
    """Until the executor reports every rank running and the fake runs every Pod."""
    deadline = time.monotonic() + timeout
    while not all(r.running for r in executor.poll()[job_id].ranks) or not all(
        p["status"]["phase"] == "Running" for p in fake.pods(f"{LABEL_LAUNCH}=suan-{job_id}-1")
    ):
        assert time.monotonic() < deadline, "the ranks did not start"
        time.sleep(0.02)


def test_a_watch_from_an_old_resource_version_sees_the_events_after_it(fake) -> None:
    from kubernetes import client, watch
    from kubernetes.client.exceptions import ApiException

    configuration = client.Configuration()
    configuration.host = fake.url
    api = client.CoreV1Api(client.ApiClient(configuration))
    listed = api.list_namespaced_pod("watched", _preload_content=False)
    since = json.loads(listed.data)["metadata"]["resourceVersion"]
    assert since == fake.resource_version
    container = {"name": "c", "image": "img.invalid/x:1", "command": ["true"]}
    for name, labels in (("p", {"watched": "yes"}), ("other", {})):
        pod = {"metadata": {"name": name, "labels": labels}, "spec": {"containers": [container]}}
        fake.create("pods", "watched", pod)
    fake.patch("pods", "watched", "p", {"metadata": {"annotations": {"a": "1"}}})
    fake.delete("pods", "watched", "p")
    fake.delete("pods", "watched", "other")

    def events(resource_version: str, count: int, timeout: int = 5) -> list[tuple[str, int]]:
        seen, stream = [], watch.Watch()
        for event in stream.stream(
            api.list_namespaced_pod,
            "watched",
            label_selector="watched=yes",
            resource_version=resource_version,
            timeout_seconds=timeout,
        ):
            seen.append((event["type"], int(event["raw_object"]["metadata"]["resourceVersion"])))
            if len(seen) == count:
                stream.stop()
        return seen

    seen = events(since, 3)
    assert [kind for kind, _ in seen] == ["ADDED", "MODIFIED", "DELETED"]
    versions = [version for _, version in seen]
    assert int(since) < versions[0] < versions[1] < versions[2]
    assert [kind for kind, _ in events(str(versions[0]), 2)] == ["MODIFIED", "DELETED"]
    fake.compact()  # etcd compaction: the versions before it are gone
    with pytest.raises(ApiException) as gone:
        events(since, 1)
    assert gone.value.status == 410 and "too old resource version" in str(gone.value.reason)
    assert events(fake.resource_version, 0, timeout=1) == []  # from now on: no 410


def test_the_executor_sees_a_pod_fail_without_listing(fake, tmp_path) -> None:
    executor = _executor(fake, tmp_path)
    go = tmp_path / "go"
    job = _job(
        f"import os, sys, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        "sys.exit(3 if os.environ['RANK'] == '1' else 0)"
    )
    executor.launch(job, _placement(1, 1))
    _wait_running(fake, executor, job.job_id)
    lists, watches = _lists(fake), sum(1 for verb, _ in fake.audit if verb == "watch")
    go.touch()
    status = _until(executor, job.job_id, timeout=10)
    assert [r.exit_code for r in status.ranks] == [0, 3]
    assert _lists(fake) == lists  # the watch told as it happened, no list in between
    assert sum(1 for verb, _ in fake.audit if verb == "watch") == watches  # the same watch


def test_a_410_makes_the_executor_relist_and_report_the_right_state(fake, tmp_path) -> None:
    executor = _executor(fake, tmp_path)
    job = _job("import time; time.sleep(30)")
    executor.launch(job, _placement(1, 0, 1))
    _wait_running(fake, executor, job.job_id)
    lists = _lists(fake)
    try:
        with fake.atomic():  # the node dies and the history of it is compacted away at once:
            fake.fail_node("suan-kube-2", "Kubelet stopped posting node status.")
            fake.compact()  # the open watch gets 410 instead of the events
        deadline = time.monotonic() + 5
        while (status := executor.poll()[job.job_id]).ranks[2].running:
            assert time.monotonic() < deadline, "the executor did not relist"
            time.sleep(0.02)
        assert _lists(fake) == lists + 1  # one relist
        assert [r.running for r in status.ranks] == [True, True, False]
        assert status.ranks[2].exit_code is None and "NodeLost" in status.message
        fake.expire_watches()  # the server resets its watches: 410 again, relist again
        deadline = time.monotonic() + 5
        while _lists(fake) < lists + 2:
            assert time.monotonic() < deadline, "the executor did not relist"
            time.sleep(0.02)
        assert [r.running for r in executor.poll()[job.job_id].ranks] == [True, True, False]
        executor.stop(job.job_id, 1)
        assert not any(r.running for r in _until(executor, job.job_id).ranks)
    finally:
        fake.set_node_ready("suan-kube-2", True)


def test_inventory_follows_node_changes_through_the_watch(fake, tmp_path) -> None:
    executor = _executor(fake, tmp_path)
    assert {n.name: n for n in executor.inventory()}["suan-kube-1"].health is NodeHealth.READY
    lists = _lists(fake, "/api/v1/nodes")
    fake.set_node_ready("suan-kube-1", False, "PLEG is not healthy")
    try:
        deadline = time.monotonic() + 2
        while (node := {n.name: n for n in executor.inventory()}["suan-kube-1"]).health is (
            NodeHealth.READY
        ):
            assert time.monotonic() < deadline, "the node change was not seen"
            time.sleep(0.02)
        assert "PLEG is not healthy" in node.health_reason
        assert _lists(fake, "/api/v1/nodes") == lists
    finally:
        fake.set_node_ready("suan-kube-1", True)
    executor.close()


# -- a real cluster, only with KUBECONFIG ---------------------------------------------------

REAL = pytest.mark.skipif(
    not os.environ.get("KUBECONFIG"), reason="KUBECONFIG is not set: no real cluster to test"
)


@REAL
def test_real_cluster_inventory_maps_nodes(tmp_path) -> None:
    settings = KubernetesSettings(
        kubeconfig=os.environ["KUBECONFIG"],
        namespace=os.environ.get("SUAN_TEST_KUBE_NAMESPACE", "default"),
    )
    nodes = KubernetesExecutor(tmp_path, settings).inventory()
    assert nodes and all(n.labels["engine"] == "kubernetes" for n in nodes)


@REAL
def test_real_cluster_runs_a_cpu_pod(tmp_path) -> None:
    image = os.environ.get("SUAN_TEST_KUBE_IMAGE", "busybox:1.36")
    settings = KubernetesSettings(
        kubeconfig=os.environ["KUBECONFIG"],
        namespace=os.environ.get("SUAN_TEST_KUBE_NAMESPACE", "default"),
    )
    executor = KubernetesExecutor(tmp_path, settings)
    node = next(n.name for n in executor.inventory() if n.health is NodeHealth.READY)
    job = JobLaunch(f"k{uuid.uuid4().hex[:8]}", 1, ("sh", "-c", "echo hi; exit 4"), image=image)
    executor.launch(job, (ReplicaPlacement(0, node, ()),))
    status = _until(executor, job.job_id, timeout=300)
    assert status.ranks[0].exit_code == 4
    assert b"hi" in executor.logs(job.job_id, 0)[0]


def test_the_device_plugins_ids_are_read_back_from_each_pod(fake, tmp_path) -> None:
    """Two ranks on one node: the (fake) NVIDIA device plugin picks their GPU indices; each
    Pod prints them first, and poll() reports them as the placement of record."""
    executor = _executor(fake, tmp_path / "home")
    job = _job("import os, time; print('sees', os.environ['CUDA_VISIBLE_DEVICES']); time.sleep(2)")
    same_node = (
        ReplicaPlacement(0, NODES[0], (6, 7)),
        ReplicaPlacement(0, NODES[0], (4, 5)),
    )
    executor.launch(job, same_node)
    status = _until(executor, job.job_id)
    given = [rank.devices for rank in status.ranks]
    assert all(devices is not None and len(devices) == 2 for devices in given), given
    assert set(given[0]).isdisjoint(given[1])
    log = executor.logs(job.job_id, 1)[0].decode()
    assert f"suan-devices: {','.join(map(str, given[1]))}" in log and "sees 0,1" in log
