"""The discrete-event simulator: replays GPU-cluster traces through the same scheduler as the
live system (`suan.sched.schedule`), with an injected clock.

    result = simulate(jobs, cluster, "fifo")
"""

from suan.sim.simulator import SimConfig, SimResult, simulate
from suan.sim.workload import TraceJob

__all__ = ["SimConfig", "SimResult", "TraceJob", "simulate"]
