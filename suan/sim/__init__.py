"""The discrete-event simulator: replays GPU-cluster traces through the scheduler's own cycle
(`suan.sched.cycle.Cycle`, the code behind `suan.sched.schedule`), with an injected clock.
docs/simulator.md says where it differs from the live server (state kept between cycles, two
simulator-only policies).

    result = simulate(jobs, cluster, "fifo")
"""

from suan.sim.simulator import SimConfig, SimResult, simulate
from suan.sim.workload import TraceJob

__all__ = ["SimConfig", "SimResult", "TraceJob", "simulate"]
