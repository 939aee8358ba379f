"""The catalog's Kubernetes device-plugin resource names (`kubernetes_resource`)."""

from __future__ import annotations

import pytest

from suan.catalog import Catalog, load_catalog
from suan.catalog.loader import parse_catalog_document
from suan.errors import SpecError


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(builtin=True)


def test_every_builtin_type_names_its_device_plugin_resource_with_a_source(
    catalog: Catalog,
) -> None:
    for accel in catalog:
        assert accel.kubernetes_resource, accel.name
        assert accel.sources.get("kubernetes_resource", "").strip(), accel.name


@pytest.mark.parametrize(
    ("name", "resource"),
    [
        ("H100", "nvidia.com/gpu"),
        ("MI300X", "amd.com/gpu"),
        ("910B", "huawei.com/Ascend910"),
        ("MLU590", "cambricon.com/mlu"),
        ("K100", "hygon.com/dcu"),
        ("P800", "kunlunxin.com/xpu"),
        ("S4000", "mthreads.com/gpu"),
        ("BI-V150", "iluvatar.ai/gpu"),
        ("C500", "metax-tech.com/gpu"),
    ],
)
def test_vendor_resource_names(catalog: Catalog, name: str, resource: str) -> None:
    assert catalog.get(name).kubernetes_resource == resource


def _entry(**extra: object) -> dict:
    entry = {
        "name": "X1",
        "vendor": "x",
        "memory_gib": 1,
        "memory_bandwidth_gbs": 1,
        "bf16_tflops": 1,
        "devices_per_node": 1,
        "visible_devices_env": "X_VISIBLE_DEVICES",
        "collective_backend": "xccl",
        "sources": {"memory_gib": "a", "memory_bandwidth_gbs": "b", "bf16_tflops": "c"},
    }
    return {"accelerators": [{**entry, **extra}]}


def test_the_field_is_optional() -> None:
    (accel,) = parse_catalog_document(_entry(), "test")
    assert accel.kubernetes_resource == ""


@pytest.mark.parametrize("bad", ["gpu", "nvidia.com/", "Nvidia.com/gpu", "kubernetes.io/gpu"])
def test_bad_resource_names_are_refused_with_the_field_path(bad: str) -> None:
    with pytest.raises(SpecError, match=r"accelerators\.0\.kubernetes_resource"):
        parse_catalog_document(_entry(kubernetes_resource=bad), "test")
