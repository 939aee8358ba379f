"""The packing placers by name (`suan.sched.packing`, `suan.sched.lookahead`), for the
scheduler's `PLACERS` registry and `suan sim pack`."""

from __future__ import annotations

from suan.sched.lookahead import Constants, Lookahead, fgd_ahead_score
from suan.sched.packing import (
    bestfit_score,
    dotprod_score,
    fgd_score,
    gpu_clustering_score,
    gpu_packing_score,
    packer_class,
)

CHOSEN = Constants(scale=None, strand=2.0)
"""The constants of `pack-lookahead`: the candidate that leave-one-list-out cross-validation
chooses on all nine pod lists with published FGD figures (`bench/pack_cv.py`, seeds 42 and
43; docs/simulator.md): nodes tie when their values differ by less than the smallest GPU
share a typical pod asks for (`share_scale`), the stranding growth counted twice, the typed
shortage once, typical pods covering 95 % of the pods."""

PACKERS: dict[str, type] = {cls.name: cls for cls in (
    packer_class("pack-random", None, "random feasible node"),
    packer_class("pack-bestfit", bestfit_score, "least CPU and GPU left"),
    packer_class("pack-dotprod", dotprod_score, "smallest free-request dot product"),
    packer_class("pack-gpu-packing", gpu_packing_score, "shared GPU, then used node"),
    packer_class("pack-gpu-clustering", gpu_clustering_score, "beside pods of its kind"),
    packer_class("pack-fgd", fgd_score, "least fragmentation growth"),
    packer_class("pack-fgd-ahead", fgd_ahead_score,
                 "least fragmentation growth, less what later arrivals lose"),
    packer_class("pack-lookahead", Lookahead(**CHOSEN.score_args()),
                 "least fragmentation growth, less what later arrivals lose "
                 "(cross-validated constants)", CHOSEN.coverage),
)}
