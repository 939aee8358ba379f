"""Cluster model: nodes, devices, link domains, topology tiers, health, and the Snapshot.

Clusters come from spec files (`load_cluster`), the synthetic generator (`generate_cluster`)
or the node lists of public traces (`read_openb_nodes`, `read_pai_machines`).
"""

from suan.cluster.generate import generate_cluster
from suan.cluster.model import TOPOLOGY_TIERS, Cluster, Node, NodeHealth, topology_distance
from suan.cluster.spec import dump_cluster, load_cluster, parse_cluster
from suan.cluster.traces import read_openb_nodes, read_pai_machines

__all__ = [
    "TOPOLOGY_TIERS",
    "Cluster",
    "Node",
    "NodeHealth",
    "dump_cluster",
    "generate_cluster",
    "load_cluster",
    "parse_cluster",
    "read_openb_nodes",
    "read_pai_machines",
    "topology_distance",
]
