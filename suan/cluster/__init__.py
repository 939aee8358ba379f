"""Cluster model: nodes, devices, link domains, topology tiers, health, and the Snapshot."""

from suan.cluster.model import TOPOLOGY_TIERS, Cluster, Node, NodeHealth, topology_distance

__all__ = ["TOPOLOGY_TIERS", "Cluster", "Node", "NodeHealth", "topology_distance"]
