"""The environment every rank gets: torchrun's variables, the vendor's, and Suan's own.

Ranks are numbered in placement order; each placement entry is one process (suan.exec.processes
expands replicas into processes). NODE_RANK is the index of the process's node among the job's
nodes (in order of first appearance), LOCAL_RANK its index among the job's processes on that
node, LOCAL_WORLD_SIZE their number. For a process that starts its replica's workers itself,
torchrun's own variables say how (`torchrun --nproc-per-node=N` needs no other flag): PET_NNODES
(the number of processes), PET_NODE_RANK (this one's rank), PET_NPROC_PER_NODE (its devices,
at least 1), PET_MASTER_ADDR and PET_MASTER_PORT, so that R replicas form one world of R*N.
A replica that spans the nodes of a supernode comes as one placement entry per node part, in
the domain's node order, so its parts are ranks like any other and NODE_RANK follows that
order.
`job.accelerator` is the type of the node's devices: a rank given none of them gets an empty
visible-devices variable (it sees no device) and gloo.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from suan.catalog import Catalog, default_catalog
from suan.cluster.snapshot import ReplicaPlacement
from suan.exec import JobLaunch

HIDDEN = ("SUAN_TOKEN",)
"""Variables of the server's own environment that ranks never see."""


def collective_backend(accelerator: str | None, simulated: bool, catalog: Catalog) -> str:
    """The `torch.distributed` backend: gloo on CPU slots, else the catalog's for the type."""
    if accelerator is None or simulated:
        return "gloo"
    accel = catalog.get(accelerator)
    return accel.dist_backend or accel.collective_backend


def visible_devices_variable(accelerator: str | None, catalog: Catalog) -> str | None:
    """The vendor's visible-devices variable (CUDA_VISIBLE_DEVICES, ...), None without devices."""
    return catalog.get(accelerator).visible_devices_env if accelerator else None


def base_environment() -> dict[str, str]:
    """The server's environment less its secrets, with its interpreter's directory on PATH."""
    env = {key: value for key, value in os.environ.items() if key not in HIDDEN}
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")]).rstrip(os.pathsep)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def rank_environments(
    job: JobLaunch,
    placement: tuple[ReplicaPlacement, ...],
    master_addr: str,
    master_port: int,
    base: Mapping[str, str] | None = None,
    catalog: Catalog | None = None,
) -> list[dict[str, str]]:
    """One full environment per rank, in rank order (see the module docstring)."""
    catalog = catalog or default_catalog()
    nodes = list(dict.fromkeys(replica.node for replica in placement))
    per_node = {node: sum(r.node == node for r in placement) for node in nodes}
    seen: dict[str, int] = {}
    variable = visible_devices_variable(job.accelerator, catalog)
    environments = []
    for rank, replica in enumerate(placement):
        local_rank = seen.get(replica.node, 0)
        seen[replica.node] = local_rank + 1
        env = dict(base if base is not None else base_environment())
        env.update(job.env)
        env.update(
            {
                "MASTER_ADDR": master_addr,
                "MASTER_PORT": str(master_port),
                "WORLD_SIZE": str(len(placement)),
                "RANK": str(rank),
                "LOCAL_RANK": str(local_rank),
                "LOCAL_WORLD_SIZE": str(per_node[replica.node]),
                "NODE_RANK": str(nodes.index(replica.node)),
                "PET_NNODES": str(len(placement)),
                "PET_NODE_RANK": str(rank),
                "PET_NPROC_PER_NODE": str(max(1, len(replica.devices))),
                "PET_MASTER_ADDR": master_addr,
                "PET_MASTER_PORT": str(master_port),
                "SUAN_JOB_ID": job.job_id,
                "SUAN_CHECKPOINT_DIR": job.checkpoint_dir,
                "SUAN_RESTART_COUNT": str(job.restart_count),
                "SUAN_COLLECTIVE_BACKEND": collective_backend(
                    job.accelerator if replica.devices else None, job.simulated, catalog
                ),
            }
        )
        if variable is not None:
            env[variable] = ",".join(str(device) for device in replica.devices)
        if job.simulated:
            env["SUAN_SIMULATED_DEVICES"] = "1"
        environments.append(env)
    return environments
