"""Jobs: the scheduling model of a job (replica groups, constraints) and its YAML spec."""

from suan.jobs.model import Job, ReplicaGroup, TopologyConstraint

__all__ = ["Job", "ReplicaGroup", "TopologyConstraint"]
