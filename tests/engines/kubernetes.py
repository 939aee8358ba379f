"""The Kubernetes executor under the contract suite.

Without KUBECONFIG: the FAKE API server of suan.exec.kube_fake (two nodes cloned from a
captured real GPU-operator Node, 8 nvidia.com/gpu each; its fake kubelet runs Pods as local
processes), started once per session on 127.0.0.1. With KUBECONFIG: the real cluster it names,
in namespace SUAN_TEST_KUBE_NAMESPACE (default `default`), with SUAN_TEST_KUBE_IMAGE as the
image of every rank (it must contain this interpreter's path, as the suite's ranks run
`sys.executable -c ...`), on the first two ready nodes with at least two devices.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from engines import EngineUnderTest

FAKE_IMAGE = "fake.invalid/ignored-by-the-fake-kubelet:0"


def start(workdir: Path) -> EngineUnderTest | str:
    from suan.exec.kubernetes import KubernetesExecutor, KubernetesSettings

    if os.environ.get("KUBECONFIG"):
        image = os.environ.get("SUAN_TEST_KUBE_IMAGE", "")
        if not image:
            return f"KUBECONFIG is set: set SUAN_TEST_KUBE_IMAGE to an image with {sys.executable}"
        settings = KubernetesSettings(
            kubeconfig=os.environ["KUBECONFIG"],
            namespace=os.environ.get("SUAN_TEST_KUBE_NAMESPACE", "default"),
            default_image=image,
        )
        nodes = KubernetesExecutor(workdir / "probe", settings).inventory()
        usable = [n.name for n in nodes if n.health.value == "ready" and n.devices >= 2]
        if len(usable) < 2:
            return "the cluster has fewer than two ready nodes with two devices"
        return EngineUnderTest(
            "kubernetes",
            lambda home: KubernetesExecutor(home, settings),
            tuple(usable[:2]),
            extra={"settings": settings},
        )

    from suan.exec.kube_fake import FakeKubernetes, fixture_nodes

    fake = FakeKubernetes(fixture_nodes(2, gpus=8), workdir / "kube-fake")
    url = fake.start()
    settings = KubernetesSettings(
        host=url, namespace="suan", default_image=FAKE_IMAGE, simulated=True, grace_s=5
    )
    return EngineUnderTest(
        "kubernetes",
        lambda home: KubernetesExecutor(home, settings),
        ("suan-kube-0", "suan-kube-1"),
        stop=fake.stop,
        extra={"fake": fake, "settings": settings},
    )
