"""Kubernetes-specific behaviour of the executor, against the FAKE API server
(suan.exec.kube_fake); the last tests run against a real cluster only when KUBECONFIG is set."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("kubernetes")

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
