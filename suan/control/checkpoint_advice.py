"""The checkpoint interval Suan advises a job (Daly's rule, `suan.checkpoint_interval`).

Inputs, each with its source named in the advice:

- the cost, seconds of training one save blocks: the spec's `checkpoint.cost`; else the
  median of the saves the job reported (`checkpoint_s` of its progress records, per step the
  longest of its ranks); else its model's checkpoint size over the storage bandwidth of its
  nodes: parameters x `CHECKPOINT_BYTES_PER_PARAM` / (nodes x `checkpoint_write_gbs`);
- the job's MTBF: one day over the sum of its nodes' failure rates (`failure_rate`), on the
  nodes it holds (or held last), or, before it first runs, on as many nodes as it has
  replicas at the cluster's rate.

The advised interval reaches every rank as `SUAN_CHECKPOINT_INTERVAL_S`; a job whose spec fixes
`checkpoint.interval` keeps it there and gets the advice as `SUAN_ADVISED_CHECKPOINT_INTERVAL_S`.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from suan.checkpoint_interval import DAY_S, best_interval_s
from suan.cluster.model import Cluster
from suan.control.failure_rate import FailureRates, store_rates
from suan.control.jobs import job_document, placement_of, scheduler_job
from suan.control.models import JobRow, ProgressRow, RankRow
from suan.errors import SuanError
from suan.jobs.units import parse_duration

CHECKPOINT_BYTES_PER_PARAM = 12.0
"""Bytes a training checkpoint holds per parameter: fp32 master weights and Adam's two fp32
moments (the MaxText rule, params x 12 B; bf16 working weights are not saved)."""
DEFAULT_WRITE_GBS = 1.0
"""Storage write bandwidth per node, GB/s, where the server sets none: Llama 3's checkpoint
store sustained 2 TB/s for 16,384 GPUs on 2,048 nodes, about 1 GB/s per node
(arXiv 2407.21783)."""
INTERVAL_VARIABLE = "SUAN_CHECKPOINT_INTERVAL_S"
ADVISED_VARIABLE = "SUAN_ADVISED_CHECKPOINT_INTERVAL_S"


@dataclass(frozen=True)
class Cost:
    """A checkpoint cost in seconds and where it came from (`spec`, `measured`, `estimated`)."""

    seconds: float
    source: str
    detail: str = ""


@dataclass(frozen=True)
class Advice:
    """The interval advised for a job, with every input, or why none is (`missing`)."""

    interval_s: float | None
    cost: Cost | None
    nodes: int
    rate_per_node_day: float
    mtbf_s: float
    fixed_interval_s: float | None = None
    missing: str = ""

    def as_dict(self) -> dict[str, object]:
        """The JSON form (`suan describe --json`, the API)."""
        return {
            "interval_s": self.interval_s,
            "fixed_interval_s": self.fixed_interval_s,
            "cost_s": self.cost.seconds if self.cost else None,
            "cost_source": self.cost.source if self.cost else None,
            "cost_detail": self.cost.detail if self.cost else "",
            "nodes": self.nodes,
            "failures_per_1000_node_days": self.rate_per_node_day * 1000,
            "mtbf_s": self.mtbf_s,
            "missing": self.missing,
            "line": self.line(),
        }

    def line(self) -> str:
        """One line for `suan describe`, e.g. "checkpoint every 7m40s: cost 10s (spec), 256
        nodes at 3.8 failures/1000 node-days -> MTBF 3.1h (Daly)"."""
        machines = (f"{self.nodes} node{'s' if self.nodes != 1 else ''} at "
                    f"{self.rate_per_node_day * 1000:.1f} failures/1000 node-days -> MTBF "
                    f"{short_duration(self.mtbf_s)}")
        if self.interval_s is None or self.cost is None:
            return f"no checkpoint interval advised: {self.missing}; {machines}"
        source = self.cost.source + (f": {self.cost.detail}" if self.cost.detail else "")
        why = f"cost {short_duration(self.cost.seconds)} ({source}), {machines} (Daly)"
        advised = short_duration(self.interval_s)
        if self.fixed_interval_s is not None:
            return (f"checkpoint every {short_duration(self.fixed_interval_s)} (the spec's); "
                    f"advised {advised}: {why}")
        return f"checkpoint every {advised}: {why}"

    def environment(self) -> dict[str, str]:
        """The variables every rank gets."""
        env: dict[str, str] = {}
        if self.fixed_interval_s is not None:
            env[INTERVAL_VARIABLE] = f"{self.fixed_interval_s:g}"
            if self.interval_s is not None:
                env[ADVISED_VARIABLE] = f"{self.interval_s:.1f}"
        elif self.interval_s is not None:
            env[INTERVAL_VARIABLE] = f"{self.interval_s:.1f}"
        return env


def short_duration(seconds: float) -> str:
    """Compact text: 45s, 7m40s, 3.1h, 2.5d."""
    if seconds < 60:
        return f"{seconds:.3g}s"
    if seconds < 3600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes}m{rest:02d}s" if rest else f"{minutes}m"
    if seconds < 2 * DAY_S:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / DAY_S:.1f}d"


def advise(
    session: Session,
    row: JobRow,
    cluster: Cluster,
    write_gbs: float = DEFAULT_WRITE_GBS,
    rates: FailureRates | None = None,
    now: float | None = None,
) -> Advice:
    """The advice for the job in `row` on `cluster`, from the store in `session`."""
    now = time.time() if now is None else now
    rates = rates or store_rates(session, [node.name for node in cluster.nodes], now)
    placed = job_nodes(session, row)
    job = scheduler_job(row)
    if placed:
        nodes, per_day = len(placed), rates.job_rate(placed)
    else:
        nodes = max(1, sum(group.replicas for group in job.groups))
        per_day = nodes * rates.cluster
    mtbf = DAY_S / per_day
    cost = checkpoint_cost(session, row, nodes, write_gbs)
    fixed = job.checkpoint_interval_s
    if cost is None:
        missing = ("no checkpoint cost known (set spec.checkpoint.cost, report checkpoint_s in "
                   "progress lines, or name the model)")
        return Advice(None, None, nodes, per_day / nodes, mtbf, fixed, missing)
    interval = best_interval_s(cost.seconds, mtbf)
    return Advice(interval, cost, nodes, per_day / nodes, mtbf, fixed)


def job_nodes(session: Session, row: JobRow) -> list[str]:
    """The nodes the job holds, else those of its last launch ([] if it never ran)."""
    placed = {replica.node for replica in placement_of(row)}
    if not placed:
        last = select(func.max(RankRow.attempt)).where(RankRow.job_id == row.id).scalar_subquery()
        placed = set(session.scalars(
            select(RankRow.node).where(RankRow.job_id == row.id, RankRow.attempt == last)
        ))
    return sorted(placed)


def checkpoint_cost(
    session: Session, row: JobRow, nodes: int, write_gbs: float = DEFAULT_WRITE_GBS
) -> Cost | None:
    """The job's checkpoint cost from the first source that has one (module docstring)."""
    spec = job_document(row).get("spec") or {}
    given = (spec.get("checkpoint") or {}).get("cost")
    if given is not None:
        return Cost(parse_duration(given), "spec")
    measured = measured_cost(session, row.id)
    if measured is not None:
        return measured
    model = spec.get("model")
    return model_cost(model, nodes, write_gbs) if isinstance(model, str) else None


def measured_cost(session: Session, job_id: str) -> Cost | None:
    """The median save the job reported (per step, its slowest rank's), None without saves."""
    rows = session.execute(
        select(ProgressRow.attempt, ProgressRow.step, ProgressRow.checkpoint_s).where(
            ProgressRow.job_id == job_id, ProgressRow.checkpoint_s > 0
        )
    )
    per_step: dict[tuple[int, int], float] = defaultdict(float)
    for attempt, step, seconds in rows:
        per_step[(attempt, step)] = max(per_step[(attempt, step)], seconds or 0.0)
    if not per_step:
        return None
    return Cost(statistics.median(per_step.values()), "measured", f"{len(per_step)} saves")


def model_cost(model: str, nodes: int, write_gbs: float) -> Cost | None:
    """The time to write `model`'s checkpoint from `nodes` nodes at `write_gbs` GB/s each."""
    from suan.plan.models import load_model

    try:
        params = load_model(model).total_params()
    except (SuanError, ValueError, OSError):
        return None
    size_gb = params * CHECKPOINT_BYTES_PER_PARAM / 1e9
    seconds = size_gb / (max(1, nodes) * write_gbs)
    detail = f"{size_gb:.0f} GB at {write_gbs:g} GB/s per node"
    return Cost(seconds, "estimated", detail)


def launch_environment(row: JobRow, cluster: Cluster, write_gbs: float) -> dict[str, str]:
    """The checkpoint variables for a launch of `row` (a row attached to a session)."""
    session = object_session(row)
    if session is None:
        return {}
    return advise(session, row, cluster, write_gbs).environment()
