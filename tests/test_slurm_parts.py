"""The Slurm executor's pure parts: reading `sinfo --json` (a real capture from the local test
cluster, Slurm 22.05) into nodes, the batch script for uniform and mixed gangs, and how a rank
finds itself on a node."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from suan.catalog import default_catalog
from suan.cluster.model import NodeHealth
from suan.cluster.snapshot import ReplicaPlacement
from suan.errors import SpecError
from suan.exec._rank import pick_rank, share_of_devices
from suan.exec.engines import open_executor
from suan.exec.slurm_inventory import SlurmInventoryRules, parse_gres, slurm_nodes
from suan.exec.slurm_script import batch_script, node_shapes

SINFO = json.loads(
    (Path(__file__).parent / "fixtures/slurm/sinfo-22.05-drained-n4.json").read_text()
)
CATALOG = default_catalog()


def nodes(document=SINFO, **rules):
    return {n.name: n for n in slurm_nodes(document, SlurmInventoryRules(**rules), CATALOG)}


def test_gres_types_map_through_the_catalog_and_features_give_racks():
    found = nodes(partition="suan")
    assert set(found) == {"n1", "n2", "n3", "n4"}
    assert {n.accelerator for n in found.values()} == {CATALOG.get("H100").name}
    assert [found[name].rack for name in ("n1", "n2", "n3", "n4")] == ["r1", "r1", "r2", "r2"]
    assert found["n1"].labels["slurm.gres"] == "gpu:h100"
    assert found["n1"].labels["engine"] == "slurm"


def test_a_drained_node_is_cordoned_with_slurms_reason():
    n4 = nodes()["n4"]
    assert n4.health == NodeHealth.CORDONED
    assert n4.health_reason == "slurm: idle+drain: suan test: ECC errors"
    assert nodes()["n1"].health == NodeHealth.READY


def test_not_responding_and_down_nodes_are_down():
    document = copy.deepcopy(SINFO)
    document["nodes"][0]["state_flags"] = ["NOT_RESPONDING"]
    document["nodes"][1]["state"] = "down"
    document["nodes"][1]["reason"] = "Not responding"
    found = nodes(document)
    assert found["n1"].health == NodeHealth.DOWN and "not_responding" in found["n1"].health_reason
    assert found["n2"].health == NodeHealth.DOWN
    assert found["n2"].health_reason == "slurm: down: Not responding"


def test_untyped_gres_takes_the_default_and_unknown_types_are_cordoned():
    document = copy.deepcopy(SINFO)
    document["nodes"][0]["gres"] = "gpu:4(S:0-1)"
    document["nodes"][1]["gres"] = "gpu:b9000:8"
    document["nodes"][2]["gres"] = "gpu:910b:4,gpu:h100:8"
    without_default = nodes(document)
    assert without_default["n1"].health == NodeHealth.CORDONED
    assert "untyped GRES" in without_default["n1"].health_reason
    found = nodes(document, default_type="A100")
    assert (found["n1"].accelerator, found["n1"].devices) == (CATALOG.get("A100").name, 4)
    assert found["n2"].health == NodeHealth.CORDONED and "'b9000'" in found["n2"].health_reason
    assert found["n3"].accelerator == CATALOG.get("H100").name  # the larger of two types
    assert parse_gres("gpu:h100:4(S:0),gpu:a100:2") == [
        parse_gres("gpu:h100:4")[0],
        parse_gres("gpu:a100:2")[0],
    ]
    assert parse_gres("(null)") == []


def test_a_partition_limits_the_inventory():
    document = copy.deepcopy(SINFO)
    document["nodes"][3]["partitions"] = ["other"]
    assert set(nodes(document, partition="suan")) == {"n1", "n2", "n3"}


def test_uniform_nodes_make_one_job_and_mixed_shapes_a_heterogeneous_one():
    gres = {"n1": "gpu:h100", "n2": "gpu:h100"}
    uniform = [ReplicaPlacement(0, n, (d,)) for n in ("n2", "n1") for d in (0, 1)]
    script = batch_script("suan-j-1", node_shapes(uniform, gres), ["rank"], "out", "suan")
    assert "#SBATCH --nodelist=n2,n1 --nodes=2 --ntasks-per-node=2 --gres=gpu:h100:2" in script
    assert "hetjob" not in script and "--partition=suan" in script
    assert "exec srun --kill-on-bad-exit=1 rank" in script
    mixed = [ReplicaPlacement(0, "n1", (0, 1)), ReplicaPlacement(0, "n1", (2, 3))]
    mixed.append(ReplicaPlacement(0, "n2", (5,)))
    script = batch_script("suan-j-2", node_shapes(mixed, gres), ["rank"], "out")
    assert "#SBATCH --nodelist=n1 --nodes=1 --ntasks=2 --gres=gpu:h100:4" in script
    assert "#SBATCH hetjob\n#SBATCH --nodelist=n2 --nodes=1 --ntasks=1 --gres=gpu:h100:1" in script
    assert "--het-group=0-1" in script and "--no-requeue" in script


def test_a_rank_finds_itself_and_its_share_of_the_nodes_devices():
    ranks = [
        {"node": "n2", "devices": 2},
        {"node": "n1", "devices": 1},
        {"node": "n2", "devices": 2},
    ]
    assert [pick_rank(ranks, "n2", 0), pick_rank(ranks, "n2", 1)] == [0, 2]
    assert pick_rank(ranks, "n1", 0) == 1
    assert share_of_devices("4,5,6,7", ranks, "n2", 2) == ["6", "7"]
    with pytest.raises(SystemExit, match="runs 1 ranks"):
        pick_rank(ranks, "n1", 1)


def test_engine_settings_name_the_field_that_is_wrong(tmp_path):
    with pytest.raises(SpecError) as caught:
        open_executor("slurm", tmp_path, {"partitionn": "suan"})
    assert "slurm.partitionn" in str(caught.value)
    with pytest.raises(SpecError, match=r"slurm\.defaultType"):
        open_executor("slurm", tmp_path, {"defaultType": "B9000"})
    with pytest.raises(SpecError, match="unknown engine 'mesos'"):
        open_executor("mesos", tmp_path)
