"""The Kubernetes objects of a launch, validated strict against three Kubernetes releases
offline (kubernetes-validate bundles the official schemas)."""

from __future__ import annotations

import copy

import kubernetes_validate as kv
import pytest

from suan.cluster.snapshot import ReplicaPlacement
from suan.exec import JobLaunch
from suan.exec.environment import rank_environments
from suan.exec.kube_objects import (
    LABEL_ATTEMPT,
    LABEL_JOB,
    LABEL_RANK,
    LaunchSpec,
    dns_label,
    launch_objects,
    pod_address,
    pod_name,
    rank_pod,
    tolerations_for,
)

VERSIONS = ("1.33.0", "1.35.0", "1.37.0")


def _spec(
    run_as: tuple[int, int] | None = (1000, 1000), job_id: str = "llama-7b-a1b2c3"
) -> LaunchSpec:
    job = JobLaunch(job_id, 2, ("torchrun", "train.py"), {"EPOCHS": "3"}, accelerator="H100")
    placement = (
        ReplicaPlacement(0, "node-a", (0, 1, 2, 3)),
        ReplicaPlacement(0, "node-a", (4, 5, 6, 7)),
        ReplicaPlacement(0, "node-b", (0, 1, 2, 3)),
    )
    launch = f"suan-{job_id}-2"
    master = pod_address(launch, 0, "suan", "cluster.local")
    envs = rank_environments(job, placement, master, 29500, base={})
    return LaunchSpec(
        job_id=job_id,
        attempt=2,
        launch=launch,
        namespace="suan",
        image="registry.local/suan/trainer:1",
        command=job.command,
        ranks=tuple((r.node, len(r.devices), env) for r, env in zip(placement, envs, strict=True)),
        resource="nvidia.com/gpu",
        run_as=run_as,
        tolerations=tolerations_for(["nvidia.com/gpu"]),
    )


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return launch_objects(_spec(), owner_uid="0b1c5a52-1f7e-4a43-9c2f-2f1f3f7b9a10")


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_is_valid_strict(objects: list[dict], version: str) -> None:
    for obj in objects:
        kv.validate(obj, version, True)


def test_a_typo_and_a_wrong_type_are_refused(objects: list[dict]) -> None:
    pod = next(o for o in objects if o["kind"] == "Pod")
    typo = copy.deepcopy(pod)
    typo["spec"]["nodeSelectr"] = {"x": "y"}
    with pytest.raises(kv.ValidationError):
        kv.validate(typo, VERSIONS[-1], True)
    wrong = copy.deepcopy(pod)
    wrong["spec"]["restartPolicy"] = 7
    with pytest.raises(kv.ValidationError):
        kv.validate(wrong, VERSIONS[0], True)


def test_pods_carry_rank_resources_dns_and_owner(objects: list[dict]) -> None:
    service = objects[0]
    pods = [o for o in objects if o["kind"] == "Pod"]
    assert service["kind"] == "Service" and service["spec"]["clusterIP"] == "None"
    assert [p["metadata"]["name"] for p in pods] == [
        "suan-llama-7b-a1b2c3-2-r0",
        "suan-llama-7b-a1b2c3-2-r1",
        "suan-llama-7b-a1b2c3-2-r2",
    ]
    for rank, pod in enumerate(pods):
        labels = pod["metadata"]["labels"]
        assert labels[LABEL_JOB] == "llama-7b-a1b2c3"
        assert labels[LABEL_ATTEMPT] == "2" and labels[LABEL_RANK] == str(rank)
        spec = pod["spec"]
        assert "nodeName" not in spec and spec["schedulerName"] == "suan"
        assert spec["restartPolicy"] == "Never"
        assert spec["hostname"] == pod["metadata"]["name"]
        assert spec["subdomain"] == service["metadata"]["name"]
        assert spec["securityContext"] == {
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "runAsNonRoot": True,
        }
        container = spec["containers"][0]
        assert container["resources"]["limits"] == {"nvidia.com/gpu": "4"}
        env = {e["name"]: e["value"] for e in container["env"]}
        assert (
            env["MASTER_ADDR"]
            == "suan-llama-7b-a1b2c3-2-r0.suan-llama-7b-a1b2c3-2.suan.svc.cluster.local"
        )
        assert env["RANK"] == str(rank) and env["WORLD_SIZE"] == "3"
        assert (
            "CUDA_VISIBLE_DEVICES" in env
        )  # the executor strips it; the builder keeps what it is given
        (owner,) = pod["metadata"]["ownerReferences"]
        assert owner["kind"] == "Service" and owner["name"] == service["metadata"]["name"]
    bindings = [o for o in objects if o["kind"] == "Binding"]
    assert [b["target"]["name"] for b in bindings] == ["node-a", "node-a", "node-b"]


def test_the_visible_devices_variable_counts_from_zero_in_the_container() -> None:
    spec = _spec()
    pod = rank_pod(spec, 1, visible_devices_env="CUDA_VISIBLE_DEVICES")
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"


def test_no_identity_leaves_the_image_user() -> None:
    pod = launch_objects(_spec(run_as=None))[1]
    assert "securityContext" not in pod["spec"]


@pytest.mark.parametrize(
    "text",
    ["Job_With.Odd*Chars", "x" * 80, "-lead-and-trail-", "UPPER"],
)
def test_names_are_dns_labels_and_distinct(text: str) -> None:
    import re

    label = dns_label(text)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", label) and len(label) <= 63
    assert dns_label(text + "y") != label
    assert len(pod_name("suan-" + "x" * 80 + "-1", 7)) <= 63
    assert dns_label("plain-name") == "plain-name"


def test_long_job_ids_still_validate() -> None:
    for obj in launch_objects(_spec(job_id="J" * 70 + "_weird")):
        kv.validate(obj, VERSIONS[-1], True)
