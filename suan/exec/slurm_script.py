"""The batch script that runs one placed gang as one Slurm job.

Nodes whose shapes agree (same number of ranks, same devices per rank) form one plain job:
`--nodelist`, `--nodes`, `--ntasks-per-node`, `--gres` per node. Where shapes differ the job is
heterogeneous: one component per node, each with its own task count and GRES, and one srun
step over all components. Either way srun starts `suan/exec/_rank.py` once per rank with
`--kill-on-bad-exit=1`, so one rank's failure ends the step, and `--no-requeue` leaves
restarts to Suan.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from suan.cluster.snapshot import ReplicaPlacement


@dataclass(frozen=True)
class NodeShape:
    """One node of a launch: its ranks, its devices in all and the GRES request prefix."""

    node: str
    ranks: int
    devices: int
    gres: str | None

    @property
    def gres_option(self) -> str:
        return f" --gres={self.gres}:{self.devices}" if self.gres and self.devices else ""


def node_shapes(
    placement: Sequence[ReplicaPlacement], gres: Mapping[str, str | None]
) -> list[NodeShape]:
    """The launch's nodes in order of first appearance, each with its ranks and devices."""
    order = list(dict.fromkeys(replica.node for replica in placement))
    shapes = []
    for node in order:
        mine = [r for r in placement if r.node == node]
        devices = len({device for r in mine for device in r.devices})
        shapes.append(NodeShape(node, len(mine), devices, gres.get(node)))
    return shapes


def batch_script(
    name: str,
    shapes: Sequence[NodeShape],
    rank_argv: Sequence[str],
    output: str,
    partition: str | None = None,
    extra: Sequence[str] = (),
) -> str:
    """The sbatch script text (see the module docstring)."""
    common = [f"--job-name={name}", f"--output={output}", "--no-requeue", "--open-mode=append"]
    if partition:
        common.append(f"--partition={partition}")
    common += list(extra)
    lines = ["#!/bin/sh"] + [f"#SBATCH {option}" for option in common]
    uniform = len({(s.ranks, s.devices, s.gres) for s in shapes}) == 1
    if uniform:
        nodes = ",".join(s.node for s in shapes)
        lines.append(
            f"#SBATCH --nodelist={nodes} --nodes={len(shapes)} "
            f"--ntasks-per-node={shapes[0].ranks}{shapes[0].gres_option}"
        )
        step = "srun --kill-on-bad-exit=1"
    else:
        for index, shape in enumerate(shapes):
            if index:
                lines.append("#SBATCH hetjob")
            lines.append(
                f"#SBATCH --nodelist={shape.node} --nodes=1 --ntasks={shape.ranks}"
                f"{shape.gres_option}"
            )
        step = f"srun --kill-on-bad-exit=1 --het-group=0-{len(shapes) - 1}"
    lines.append(f"exec {step} {shlex.join(rank_argv)}")
    return "\n".join(lines) + "\n"
