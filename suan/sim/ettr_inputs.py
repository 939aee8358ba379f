"""The inputs of `suan sim failures`, each with its source, and how options become a Scenario.

Every default below is a published figure (cited in SOURCES) or derived from one; the
options of the command override them. Bad options raise SpecError naming the option.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from suan.errors import FieldProblem, SpecError
from suan.jobs.units import UnitError, parse_duration

DAY_S = 86_400.0
GPUS_PER_NODE = 8
"""An H100 HGX node (Llama 3 ran on Grand Teton 8-GPU servers, arXiv 2407.21783 §3.3.1)."""

RESTART_OVERHEAD_S = 300.0
STORAGE_GBS = 2_000.0
STORAGE_PEAK_GBS = 7_000.0
ASYNC_BLOCKING_S = 0.5
REPAIR_S = 4 * 3_600.0
CRASH_DETECTION_S = 13.0
NCCL_TIMEOUT_S = 600.0
BASELINE_INTERVAL_S = 3_600.0
SPARE_SHORTFALL = 0.01
"""Suan keeps the fewest hot spares for which a node fault finds none free at most this often."""
SENSITIVITY_RESTART_S = (120.0, 240.0, 360.0, 480.0, 600.0)
DEFAULT_DAYS = 54.0
DEFAULT_GPUS = 16_384
DEFAULT_REPEATS = 20

SOURCES = {
    "failure_mix": "Llama 3, arXiv 2407.21783 §3.3.4 and Table 5: 419 unexpected and 47 "
                   "planned interruptions in 54 days on up to 16,384 H100",
    "restart_overhead": "Kokolis et al., 'Revisiting Reliability in Large-Scale Machine "
                        "Learning Research Clusters', HPCA 2025, arXiv 2410.21680: restart "
                        "overhead u0 of 5-20 min in their ETTR model of 16K-GPU jobs; the "
                        "lower end",
    "storage_bandwidth": "Llama 3, arXiv 2407.21783 §3.3.4: Tectonic, 2 TB/s sustained "
                         "(7 TB/s peak) for checkpoints",
    "async_blocking": "PyTorch Distributed Checkpoint async save, Llama 3 8B on 512 H100: "
                      "< 0.5 s blocking per save (PyTorch forum, Oct 2024); its per-GPU "
                      "shard (8B x 14 B / 512 = 219 MB) is of the order of this job's "
                      "(405.9B x 14 B / 16,384 = 347 MB)",
    "repair": "a GPU swap by a technician with parts on site takes 2-4 h "
              "(amcompute.com, 'When a GPU Dies in Production', 2026); the upper end, also "
              "the replay simulator's default repair time",
    "crash_detection": "13 s from fault to detection in Google's elastic-recovery demo on 48 "
                       "TPU v5e-16 slices (Google Developers Blog, Jul 2026)",
    "nccl_timeout": "PyTorch ProcessGroupNCCL default timeout, 10 min "
                    "(pytorch/pytorch pull request 110947)",
    "baseline_interval": "the 60-min checkpoint interval of the 16K-GPU example in Kokolis "
                         "et al. (arXiv 2410.21680)",
    "checkpoint_interval": "Daly 2006, sqrt(2 C M) - C (suan/checkpoint_interval.py), "
                           "rounded up to whole steps",
    "hot_spares": f"the fewest spares for which a node fault finds none free with "
                  f"probability <= {SPARE_SHORTFALL:.0%}: nodes in repair are Poisson with "
                  f"mean (node-fault rate x repair time) (M/G/inf)",
    "hang_detection": "Suan's no-progress timeout: twice the longest legitimate gap between "
                      "two progress lines (one step and one blocking save)",
}


@dataclass(frozen=True)
class Scenario:
    """One `suan sim failures` run: the job's size and length and the recovery costs."""

    gpus: int = DEFAULT_GPUS
    days: float = DEFAULT_DAYS
    restart_s: float = RESTART_OVERHEAD_S
    storage_gbs: float = STORAGE_GBS
    async_checkpoint: bool = False
    repair_s: float = REPAIR_S
    spares: int | None = None
    seed: int = 0
    repeats: int = DEFAULT_REPEATS

    @property
    def nodes(self) -> int:
        return self.gpus // GPUS_PER_NODE

    @property
    def horizon_s(self) -> float:
        return self.days * DAY_S


_BANDWIDTH = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([TGM]B/s)?\s*",
                        re.IGNORECASE)
_BANDWIDTH_GBS = {"TB/S": 1_000.0, "GB/S": 1.0, "MB/S": 1e-3}
BANDWIDTH_ALLOWED = 'a rate such as "2TB/s", "500GB/s", or a bare number of GB/s'


def parse_bandwidth_gbs(text: str) -> float:
    """GB/s from "2TB/s", "500 GB/s", "800MB/s" or a bare number of GB/s; ValueError else."""
    match = _BANDWIDTH.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a bandwidth")
    value = float(match.group(1)) * _BANDWIDTH_GBS[(match.group(2) or "GB/s").upper()]
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{text!r} must be a positive bandwidth")
    return value


def _duration(option: str, text: str, problems: list[FieldProblem], positive: bool) -> float:
    try:
        seconds = parse_duration(text)
    except UnitError as error:
        problems.append(FieldProblem(option, str(error), error.allowed))
        return 0.0
    if positive and seconds <= 0:
        problems.append(FieldProblem(option, f"{text!r} must be longer than zero",
                                     "a duration such as 5m"))
    return seconds


def scenario_from_options(*, gpus: int, days: float, restart: str, storage: str,
                          async_checkpoint: bool, repair: str, spares: int | None, seed: int,
                          repeats: int) -> Scenario:
    """A Scenario from the command's options; SpecError listing every bad option."""
    problems: list[FieldProblem] = []
    if gpus <= 0 or gpus % GPUS_PER_NODE:
        problems.append(FieldProblem("--gpus", f"{gpus} is not a positive multiple of "
                                     f"{GPUS_PER_NODE}", "whole 8-GPU nodes, e.g. 16384"))
    if not (0 < days <= 3650 and math.isfinite(days)):
        problems.append(FieldProblem("--days", f"{days} is out of range", "0 < days <= 3650"))
    restart_s = _duration("--restart-overhead", restart, problems, positive=False)
    repair_s = _duration("--repair-time", repair, problems, positive=True)
    storage_gbs = 0.0
    try:
        storage_gbs = parse_bandwidth_gbs(storage)
    except ValueError as error:
        problems.append(FieldProblem("--storage-bandwidth", str(error), BANDWIDTH_ALLOWED))
    if spares is not None and spares < 0:
        problems.append(FieldProblem("--spares", f"{spares} is negative",
                                     "a node count >= 0 (omit it for Suan's own count)"))
    if not 1 <= repeats <= 1000:
        problems.append(FieldProblem("--repeats", f"{repeats} is out of range", "1 to 1000"))
    if problems:
        raise SpecError("suan sim failures", problems)
    return Scenario(gpus=gpus, days=days, restart_s=restart_s, storage_gbs=storage_gbs,
                    async_checkpoint=async_checkpoint, repair_s=repair_s, spares=spares,
                    seed=seed, repeats=repeats)
