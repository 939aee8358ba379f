"""Cluster spec files, the synthetic generator and the trace node-list readers, as scenarios."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from suan.catalog import default_catalog
from suan.cluster.generate import (
    NodeGroup,
    cluster_from_shorthand,
    generate_cluster,
    parse_shorthand,
)
from suan.cluster.model import Cluster, NodeHealth, topology_distance
from suan.cluster.spec import dump_cluster, load_cluster, parse_cluster, parse_memory
from suan.cluster.traces import read_openb_nodes, read_pai_machines
from suan.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "clusters"
OPENB = ("traces", "alibaba_pai_openb_v2023")


def canonical(name: str) -> str:
    return default_catalog().canonical(name)


def document(spec: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A cluster document around `spec`; `top` overrides top-level keys."""
    return {"apiVersion": "suan.ai/v1", "kind": "Cluster", "metadata": {"name": "t"},
            "spec": spec, **top}


def problems_of(doc: Any) -> list[str]:
    """The problem lines a bad document produces."""
    with pytest.raises(SpecError) as caught:
        parse_cluster(doc, "test.yaml")
    assert caught.value.source == "test.yaml"
    return [str(problem) for problem in caught.value.problems]


def devices_by_type(cluster: Cluster) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for node in cluster:
        if node.accelerator:
            totals[node.accelerator] += node.devices
    return dict(totals)


# --- examples ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "nodes", "devices", "racks"),
    [
        ("small.yaml", 4, {"H100": 32}, 2),
        ("h100-2rack.yaml", 32, {"H100": 256}, 2),
        ("mixed-h100-910b.yaml", 66, {"H100": 256, "910B": 256}, 7),
        ("supernode.yaml", 132, {"Ascend-910C": 96 * 16, "GB200": 36 * 4}, 26),
        ("maintenance.yaml", 8, {"H100": 64}, 1),
    ],
)
def test_every_example_loads_with_its_size(
    file: str, nodes: int, devices: dict[str, int], racks: int
) -> None:
    cluster = load_cluster(EXAMPLES / file)
    assert len(cluster) == nodes
    assert devices_by_type(cluster) == {canonical(k): v for k, v in devices.items()}
    assert len({node.rack for node in cluster}) == racks


def test_every_example_file_is_covered() -> None:
    covered = {"small.yaml", "h100-2rack.yaml", "mixed-h100-910b.yaml", "supernode.yaml",
               "maintenance.yaml"}
    assert {path.name for path in EXAMPLES.glob("*.yaml")} == covered


def test_two_racks_of_sixteen_h100_in_one_block() -> None:
    cluster = load_cluster(EXAMPLES / "h100-2rack.yaml")
    first, last = cluster.node("h100-000"), cluster.node("h100-031")
    assert (first.zone, first.block, first.rack) == ("zone-0", "block-00", "rack-000")
    assert (last.zone, last.block, last.rack) == ("zone-0", "block-00", "rack-001")
    assert cluster.node("h100-015").rack == "rack-000"
    assert cluster.node("h100-016").rack == "rack-001"
    assert first.accelerator == "H100-SXM-80GB"
    assert first.domains == (tuple(range(8)),)
    assert (first.cpu_milli, first.memory_mib) == (112_000, 2 * 1024 * 1024)
    assert topology_distance(first, last) == 3


def test_mixed_pools_share_the_fixed_zone_but_not_blocks() -> None:
    cluster = load_cluster(EXAMPLES / "mixed-h100-910b.yaml")
    h100, ascend = cluster.node("h100-000"), cluster.node("ascend-000")
    assert ascend.accelerator == "Ascend-910B"
    assert (h100.block, ascend.block) == ("block-00", "block-01")
    assert cluster.node("ascend-031").rack == "rack-005"
    assert topology_distance(h100, ascend) == 4
    assert h100.labels == {"vendor": "nvidia"}
    services = cluster.node("cpu-001")
    assert (services.accelerator, services.devices, services.domains) == (None, 0, ())
    assert (services.block, services.rack) == ("services", "services-0")


def test_supernodes_of_cloudmatrix_and_nvl72() -> None:
    cluster = load_cluster(EXAMPLES / "supernode.yaml")
    assert {node.supernode for node in cluster} == {f"supernode-00{i}" for i in range(4)}
    assert cluster.node("cm384-047").supernode == "supernode-000"
    assert cluster.node("cm384-048").supernode == "supernode-001"
    assert cluster.node("cm384-048").block == "block-01"
    first = cluster.node("cm384-000")
    assert topology_distance(first, cluster.node("cm384-040")) == 1  # other rack, same supernode
    assert topology_distance(first, cluster.node("cm384-050")) == 4  # other supernode and block
    nvl72 = [node for node in cluster if node.accelerator == canonical("GB200")]
    assert {node.supernode for node in nvl72[:18]} == {"supernode-002"}
    assert {node.rack for node in nvl72[:18]} == {"rack-024"}
    assert topology_distance(nvl72[0], nvl72[18]) == 3  # next NVL72 rack in the same block


def test_supernode_larger_than_the_catalog_allows() -> None:
    [problem] = problems_of(document({"nodePools": [
        {"name": "a", "count": 36, "accelerator": "GB200", "supernodeSize": 36}]}))
    assert problem.startswith("spec.nodePools.0.supernodeSize: 36 nodes x 4 devices exceed")
    assert "0 to 18 nodes" in problem


def test_maintenance_example_marks_health_and_bad_devices() -> None:
    cluster = load_cluster(EXAMPLES / "maintenance.yaml")
    assert cluster.node("h100-cordoned").health is NodeHealth.CORDONED
    assert cluster.node("h100-down").health is NodeHealth.DOWN
    degraded = cluster.node("h100-degraded")
    assert degraded.health is NodeHealth.DEGRADED
    assert degraded.unhealthy_devices == frozenset({3})
    assert cluster.capacity() == {"H100-SXM-80GB": 5 * 8 + 7}
    assert {node.rack for node in cluster} == {"rack-000"}


@pytest.mark.parametrize("file", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_dump_then_parse_gives_the_same_cluster(file: str) -> None:
    cluster = load_cluster(EXAMPLES / file)
    again = parse_cluster(dump_cluster(cluster), "dump")
    assert again.name == cluster.name
    assert again.nodes == cluster.nodes
    assert [node.labels for node in again] == [node.labels for node in cluster]


# --- topology ---------------------------------------------------------------------------------


def test_topology_distance_over_generated_tiers() -> None:
    cluster = parse_cluster(document({"nodePools": [
        {"name": "a", "count": 16, "accelerator": "H100", "supernodeSize": 2,
         "topology": {"nodesPerRack": 4, "racksPerBlock": 2}},
        {"name": "b", "count": 1, "accelerator": "H100", "topology": {"nodesPerRack": 4}},
    ]}), "inline")
    a = [cluster.node(f"a-{i:03d}") for i in range(16)]
    assert [topology_distance(a[0], a[i]) for i in (0, 1, 2, 4, 8)] == [0, 1, 2, 3, 4]
    assert topology_distance(a[0], cluster.node("b-000")) == 5
    assert (a[15].zone, a[15].block, a[15].rack, a[15].supernode) == (
        "zone-0", "block-01", "rack-003", "supernode-007")
    b = cluster.node("b-000")
    assert (b.zone, b.block, b.rack) == ("zone-1", "block-02", "rack-004")


def test_fixed_block_with_generated_racks_leaves_zone_empty() -> None:
    cluster = parse_cluster(document({"nodePools": [
        {"name": "a", "count": 3, "topology": {"block": "b7", "nodesPerRack": 2,
                                               "rackPrefix": "r"}},
    ]}), "inline")
    assert [(n.zone, n.block, n.rack) for n in cluster] == [
        ("", "b7", "r000"), ("", "b7", "r000"), ("", "b7", "r001")]


def test_pool_without_topology_has_empty_labels() -> None:
    cluster = parse_cluster(document({"nodePools": [{"name": "a", "count": 2}]}), "inline")
    assert all((n.zone, n.block, n.rack, n.supernode) == ("", "", "", "") for n in cluster)
    assert topology_distance(*cluster.nodes) == 5


# --- quantities -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mib"),
    [(1024, 1024), ("512Gi", 512 * 1024), ("512GiB", 512 * 1024), ("2Ti", 2 * 1024**2),
     ("1.5Ti", 1536 * 1024), ("64G", 61036), ("64GB", 61036), ("100Mi", 100), ("0", 0)],
)
def test_memory_units(text: object, mib: int) -> None:
    assert parse_memory(text) == mib


def test_cpu_in_cores_or_millicores() -> None:
    cluster = parse_cluster(document({"nodes": [
        {"name": "a", "cpu": 0.5}, {"name": "b", "cpu": "250m"}, {"name": "c", "cpu": "96"},
    ]}), "inline")
    assert [node.cpu_milli for node in cluster] == [500, 250, 96_000]


# --- errors name the field path ---------------------------------------------------------------


def test_unknown_accelerator_names_the_path_and_the_allowed_names() -> None:
    [problem] = problems_of(document({"nodePools": [
        {"name": "ok", "count": 1, "accelerator": "H100"},
        {"name": "bad", "count": 1, "accelerator": "H1000"},
    ]}))
    assert problem.startswith("spec.nodePools.1.accelerator: unknown accelerator 'H1000'")
    assert "H100-SXM-80GB" in problem


def test_negative_count_names_the_path() -> None:
    [problem] = problems_of(document({"nodePools": [{"name": "a", "count": -3}]}))
    assert problem.startswith("spec.nodePools.0.count:")
    assert "-3" in problem


def test_unknown_keys_are_named_at_every_level() -> None:
    found = problems_of(document(
        {"nodePools": [{"name": "a", "count": 1, "acelerator": "H100",
                        "topology": {"racks": 2}}]},
        extra=True,
    ))
    assert any(p.startswith("extra: unknown field 'extra'") for p in found)
    assert any(p.startswith("spec.nodePools.0.acelerator: unknown field 'acelerator'; did you "
                            "mean 'accelerator'? (allowed: accelerator, count,") for p in found)
    assert any(p.startswith("spec.nodePools.0.topology.racks: unknown field") and
               "nodesPerRack" in p for p in found)


def test_duplicate_node_name_names_both_places() -> None:
    [problem] = problems_of(document({
        "nodePools": [{"name": "gpu", "count": 2, "accelerator": "H100"}],
        "nodes": [{"name": "gpu-001", "accelerator": "H100"}],
    }))
    assert problem.startswith("spec.nodes.0.name: duplicate node name 'gpu-001'")
    assert "spec.nodePools.0" in problem


def test_duplicate_pool_name() -> None:
    [problem] = problems_of(document({"nodePools": [
        {"name": "a", "count": 1}, {"name": "a", "count": 1}]}))
    assert problem.startswith("spec.nodePools.1.name: duplicate pool name 'a'")


@pytest.mark.parametrize("memory", ["12Gb", "lots", "-5Gi", "5 TB of it", 549_755_813_888])
def test_bad_memory_names_the_path_and_the_units(memory: object) -> None:
    [problem] = problems_of(document({"nodes": [{"name": "a", "memory": memory}]}))
    assert problem.startswith("spec.nodes.0.memory:")
    assert "Gi" in problem


def test_every_problem_is_reported_at_once() -> None:
    found = problems_of(document({
        "nodePools": [{"name": "a", "count": 1, "accelerator": "nope", "cpu": "fast"}],
        "nodes": [{"name": "n", "accelerator": "H100", "unhealthyDevices": [8]},
                  {"name": "m", "devices": 4}],
    }))
    paths = [problem.split(":")[0] for problem in found]
    assert paths == ["spec.nodePools.0.cpu", "spec.nodePools.0.accelerator",
                     "spec.nodes.0.unhealthyDevices", "spec.nodes.1.devices"]


@pytest.mark.parametrize(
    ("topology", "path"),
    [({"rack": "r", "nodesPerRack": 2}, "topology.rack"),
     ({"racksPerBlock": 2}, "topology.racksPerBlock"),
     ({"block": "b", "nodesPerRack": 2, "racksPerBlock": 2}, "topology.racksPerBlock"),
     ({"zone": "z", "nodesPerRack": 2, "blocksPerZone": 2}, "topology.blocksPerZone"),
     ({"nodesPerRack": 0}, "topology.nodesPerRack")],
)
def test_contradicting_topology(topology: dict[str, Any], path: str) -> None:
    [problem] = problems_of(document({"nodePools": [
        {"name": "a", "count": 4, "topology": topology}]}))
    assert problem.startswith(f"spec.nodePools.0.{path}:")


def test_header_and_shape_errors() -> None:
    assert problems_of(document({"nodes": [{"name": "a"}]}, apiVersion="v1"))[0].startswith(
        "apiVersion:")
    assert problems_of(document({"nodes": [{"name": "a"}]}, kind="Job"))[0].startswith("kind:")
    assert problems_of(["not", "a", "mapping"])[0].startswith("<root>:")
    assert problems_of(document({"nodePools": []}))[0].startswith("spec: the cluster has no")
    assert problems_of(document({"nodes": [{"name": "bad name"}]}))[0].startswith(
        "spec.nodes.0.name:")
    assert problems_of(document({"nodePools": [5]}))[0].startswith(
        "spec.nodePools.0: expected a mapping, got 5 (allowed: accelerator, count,")


def test_load_cluster_reports_the_file_and_yaml_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: suan.ai/v1\nkind: Cluster\nspec: [unclosed\n")
    with pytest.raises(SpecError) as caught:
        load_cluster(path)
    assert str(path) in str(caught.value)
    assert caught.value.problems[0].path.startswith("line ")
    with pytest.raises(SpecError, match="file not found"):
        load_cluster(tmp_path / "missing.yaml")


# --- generator --------------------------------------------------------------------------------


def test_generator_gives_the_requested_size_and_labels() -> None:
    cluster = generate_cluster(100, nodes_per_rack=10, racks_per_block=2, blocks_per_zone=3)
    assert len(cluster) == 100
    assert cluster.nodes[0].name == "node-00000" and cluster.nodes[-1].name == "node-00099"
    last = cluster.nodes[-1]
    assert (last.zone, last.block, last.rack) == ("zone-1", "block-04", "rack-009")
    assert cluster.nodes[59].zone == "zone-0" and cluster.nodes[60].zone == "zone-1"
    assert devices_by_type(cluster) == {"H100-SXM-80GB": 800}


def test_generator_is_deterministic() -> None:
    mix = [("H100", 0.6), ("910B", 0.3), ("P800", 0.1)]
    first = generate_cluster(500, mix=mix, nodes_per_rack=16, seed=7)
    second = generate_cluster(500, mix=mix, nodes_per_rack=16, seed=7)
    assert first.nodes == second.nodes
    other = generate_cluster(500, mix=mix, nodes_per_rack=16, seed=8)
    assert [n.accelerator for n in other] != [n.accelerator for n in first]


def test_generator_mix_counts_and_homogeneous_racks() -> None:
    cluster = generate_cluster(101, mix=[("H100", 2), ("910B", 1)], nodes_per_rack=8)
    counts = Counter(node.accelerator for node in cluster)
    assert counts == {"H100-SXM-80GB": 67, "Ascend-910B": 34}
    types_per_rack: dict[str, set[str | None]] = {}
    for node in cluster:
        types_per_rack.setdefault(node.rack, set()).add(node.accelerator)
    assert all(len(kinds) == 1 for kinds in types_per_rack.values())
    p800 = generate_cluster(1, accelerator="P800").nodes[0]
    assert p800.domains == ((0, 1, 2, 3), (4, 5, 6, 7))


def test_generator_supernodes_group_consecutive_nodes() -> None:
    cluster = generate_cluster(40, nodes_per_rack=18, supernode_nodes=18)
    assert cluster.nodes[17].supernode == "supernode-000"
    assert cluster.nodes[18].supernode == "supernode-001"
    assert cluster.nodes[39].supernode == "supernode-002"
    assert topology_distance(cluster.nodes[0], cluster.nodes[17]) == 1


def test_generated_cluster_survives_dump_and_parse() -> None:
    cluster = generate_cluster(200, mix=[("H100", 1), ("P800", 1)], supernode_nodes=4,
                               cpu=0.5, memory="64G")
    assert parse_cluster(dump_cluster(cluster), "dump").nodes == cluster.nodes


def test_generator_builds_ten_thousand_nodes_in_racks_of_32() -> None:
    # Its speed is measured by bench/cluster_generate.py.
    cluster = generate_cluster(10_000)
    assert len(cluster) == 10_000
    assert cluster.nodes[-1].rack == "rack-312"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"nodes": 0}, "nodes"), ({"nodes": 4, "nodes_per_rack": 0}, "nodes_per_rack"),
     ({"nodes": 4, "accelerator": "H1000"}, "groups.0.accelerator"),
     ({"nodes": 4, "memory": "12Gb"}, "memory")],
)
def test_generator_errors_name_the_argument(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        generate_cluster(**kwargs)
    assert caught.value.problems[0].path == field


def test_shorthand() -> None:
    assert parse_shorthand("4x8xH100 + 2x910B") == [
        NodeGroup("H100", 4, 8), NodeGroup("910B", 2, None)]
    cluster = cluster_from_shorthand("4x8xH100+2x910B", nodes_per_rack=4)
    assert devices_by_type(cluster) == {"H100-SXM-80GB": 32, "Ascend-910B": 16}
    assert cluster.nodes[4].rack == "rack-001"
    with pytest.raises(SpecError, match="term 2"):
        parse_shorthand("4xH100+lots")


# --- trace node lists -------------------------------------------------------------------------

OPENB_INVENTORY = {  # model: [(GPUs per node, nodes)], from the trace README
    "G2": [(8, 549)], "G3": [(8, 39)], "T4": [(2, 387), (4, 17)], "P100": [(2, 131), (1, 3)],
    "V100M16": [(1, 19), (4, 28), (8, 8)], "V100M32": [(4, 9), (8, 21)], "A10": [(1, 2)],
}
PAI_INVENTORY = {"MISC": (8, 280), "P100": (2, 798), "T4": (2, 497), "V100": (8, 104),
                 "V100M32": (8, 135)}


def node_shapes(cluster: Cluster) -> Counter[tuple[str | None, int]]:
    return Counter((node.accelerator, node.devices) for node in cluster)


def test_openb_gpu_node_list(shared) -> None:
    cluster = read_openb_nodes(shared(*OPENB, "openb_node_list_gpu_node.csv"))
    assert len(cluster) == 1_213
    assert sum(node.devices for node in cluster) == 6_212
    expected: Counter[tuple[str | None, int]] = Counter()
    for model, shapes in OPENB_INVENTORY.items():
        for devices, nodes in shapes:
            expected[(canonical(model), devices)] += nodes
    assert node_shapes(cluster) == expected
    first = cluster.node("openb-node-0000")
    assert (first.cpu_milli, first.memory_mib) == (64_000, 262_144)
    assert (first.zone, first.block, first.rack, first.supernode) == ("", "", "", "")
    assert cluster.name == "openb_node_list_gpu_node"


def test_openb_all_node_list_has_cpu_only_nodes(shared) -> None:
    cluster = read_openb_nodes(shared(*OPENB, "openb_node_list_all_node.csv"))
    assert len(cluster) == 1_523
    assert sum(node.devices for node in cluster) == 6_212
    assert sum(1 for node in cluster if node.accelerator is None) == 310


def test_pai_machine_spec(shared) -> None:
    cluster = read_pai_machines(shared("traces", "alibaba_pai_v2020", "pai_machine_spec.csv"))
    assert len(cluster) == 1_897
    assert sum(node.devices for node in cluster) == 6_742
    expected: Counter[tuple[str | None, int]] = Counter({(None, 0): 83})
    for model, (devices, nodes) in PAI_INVENTORY.items():
        expected[(canonical(model), devices)] += nodes
    assert node_shapes(cluster) == expected
    cpu_node = cluster.nodes[0]
    assert (cpu_node.cpu_milli, cpu_node.memory_mib) == (96_000, 512 * 1024)


def test_bad_csv_row_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "nodes.csv"
    path.write_text(
        "sn,cpu_milli,memory_mib,gpu,model\n"
        "n0,64000,262144,8,H100\n"
        "n1,64000,262144,two,H100\n"
        "n2,64000,262144,8,H1000\n"
        "n3,64000,262144,2,\n"
        "n0,64000,262144,8,H100\n"
    )
    with pytest.raises(SpecError) as caught:
        read_openb_nodes(path)
    found = [str(problem) for problem in caught.value.problems]
    assert found[0].startswith("line 3, column gpu: not a number: 'two'")
    assert found[1].startswith("line 4, column model: unknown accelerator 'H1000'")
    assert found[2].startswith("line 5, column gpu:")
    assert found[3].startswith("line 6, column sn: duplicate node name 'n0' (first on line 2)")


def test_pai_reader_checks_the_header(tmp_path: Path) -> None:
    path = tmp_path / "machines.csv"
    path.write_text("machine,gpu_type,cap_cpu,cap_gpu\nm0,CPU,96,0\n")
    with pytest.raises(SpecError, match=r"missing column.*cap_mem"):
        read_pai_machines(path)
    path.write_text("machine,gpu_type,cap_cpu,cap_mem,cap_gpu\nm0,CPU,96,512,0\n"
                    "m1,CPU,96,512,4\n")
    with pytest.raises(SpecError, match="line 3, column cap_gpu"):
        read_pai_machines(path)
