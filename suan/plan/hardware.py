"""The hardware the planner models: one accelerator type plus the network between nodes.

Compute, memory and intra-node link figures come from the accelerator catalog
(`suan.catalog`); the catalog does not know the scale-out network, so the per-device inter-node
bandwidth comes from `INTER_NODE_GBS` below unless the caller passes one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from suan.catalog import AcceleratorType, Catalog, default_catalog
from suan.errors import FieldProblem, SpecError, UnknownAcceleratorError

INTER_NODE_GBS: dict[str, float] = {
    "A100-40GB": 25.0,
    "A100-80GB": 25.0,
    "A800": 25.0,
    "H100": 50.0,
    "H800": 50.0,
    "H200": 50.0,
    "H20": 50.0,
    "Ascend-910B": 25.0,
}
"""Scale-out bandwidth per device, GB/s, one direction, by catalog name or alias.

- A100 / A800: one 200 Gb/s HDR InfiniBand NIC per GPU (DGX A100 / Selene) = 25 GB/s;
  Calculon `systems/a100_80g.json` uses 25 GB/s (perf-model.md §5).
- H100 / H800 / H200 / H20: one 400 Gb/s NDR InfiniBand or RoCE NIC per GPU = 50 GB/s;
  Calculon `h100_80g_nvl8.json`, DeepSeek-V3 §3.2.2 (IB 50 GB/s on H800), Llama 3 (400 Gb/s
  RoCE per GPU). H20 clusters are assumed to use the same 400G NIC (unverified).
- Ascend 910B (Atlas 800T A2): 8 × 200 GE RoCE ports per 8-NPU node = 25 GB/s per NPU
  (Huawei Atlas 800T A2 product page, secondary).
"""

KERNEL_FRACTIONS: dict[str, tuple[float, float, float]] = {
    "A100-40GB": (0.859, 0.60, 0.60),
    "A100-80GB": (0.859, 0.60, 0.60),
    "A800": (0.859, 0.60, 0.60),
    "H100": (0.801, 0.35, 0.55),
    "H800": (0.801, 0.35, 0.55),
    "H200": (0.801, 0.35, 0.55),
    "H20": (0.801, 0.35, 0.55),
    "GB200-NVL72": (0.729, 0.50, 0.50),
    "MI300X": (0.514, 0.50, 0.50),
}
"""(GEMM, FlashAttention-2, FlashAttention-3) sustained fractions of the dense bf16 peak, by
catalog name or alias.

- GEMM: the Maximum Achievable Matmul FLOPS of ml-engineering's mamf-finder (S. Bekman,
  compute/accelerator/README.md): A100 SXM 267.9 of 312 TFLOP/s (85.9 %), H100 SXM 792.1 of
  989 (80.1 %); at commit 744d01e (2026-08) also GB200 1822 of 2500 (72.9 %) and MI300X 668.4
  of 1300 (51.4 %, ROCm 6.3). Same-die parts (A800; H800, H200, H20) take their sibling's
  figure. Attention on GB200 and MI300X has no published fraction: the defaults.
- Attention: FlashAttention-2 forward + backward on A100 reaches ~53-64 % of peak for head
  dimensions 64-128 (Dao 2023, Fig. 4; 0.60 taken) but only 35 % on H100 (Shah et al. 2024,
  FlashAttention-3 §1), the kernel generation of the published H100 measurements used here.
- FlashAttention-3 (Hopper only; Shah et al. 2024): forward up to 740 TFLOP/s BF16 (75 % of
  H100 peak), backward 1.5-1.75× FlashAttention-2's; weighting forward 1 : backward 2.5
  (ATTENTION_BACKWARD_FACTOR) with the backward at ~0.5 gives 0.55. cuDNN's fused attention
  is of the same generation. Pre-Hopper parts run FlashAttention-2 for both.
"""

FP8_GEMM_FRACTIONS: dict[str, float] = {
    "H100": 0.709,
    "H800": 0.709,
    "H20": 0.709,
    "H200": 0.734,
    "GB200-NVL72": 0.723,
}
"""Sustained fraction of the dense FP8 peak that FP8 GEMMs reach, by catalog name or alias:
ml-engineering's MAMF table for `float8_e4m3fn` at commit 744d01e (H100 SXM 1402.6 of 1979,
H200 SXM 1453.4, GB200 3615.6 of 5000). FP8 GEMMs sit further below their peak than BF16 ones
(H100 70.9 % against 80.1 %). Types without a measurement use their BF16 GEMM fraction."""

DEFAULT_KERNEL_FRACTIONS = (0.80, 0.50, 0.50)
"""Fractions for accelerators without a published measurement (the H100 GEMM figure, and the
midpoint of the A100 and H100 FlashAttention-2 figures for attention)."""

DEFAULT_INTER_NODE_GBS = 25.0
"""Inter-node bandwidth per device for types missing from INTER_NODE_GBS: one 200 Gb/s NIC."""

LINK_BUSBW_FRACTION = 0.8
"""Ring-collective bus bandwidth reached on the intra-node link, as a fraction of its
one-direction bandwidth: nccl-tests all-reduce busbw ≈ 230-240 GB/s on DGX A100 (300 GB/s per
direction) and ≈ 360-380 GB/s on DGX H100 without NVLS (450 GB/s per direction)."""

NIC_BUSBW_FRACTION = 0.9
"""Fraction of the NIC line rate a ring collective reaches across nodes (Calculon's
`systems/a100_80g.json` network efficiency for the InfiniBand tier)."""


@dataclass(frozen=True)
class Hardware:
    """Figures the planner uses for one accelerator type, all per device.

    TFLOP/s are dense peaks; bandwidths are GB/s in one direction: `link_gbs` is half the
    catalog's bidirectional link figure; `inter_node_gbs` the scale-out NIC share.
    """

    name: str
    bf16_tflops: float
    fp8_tflops: float | None
    memory_gib: float
    hbm_gbs: float
    link_gbs: float
    domain_size: int
    devices_per_node: int
    inter_node_gbs: float
    gemm_fraction: float = DEFAULT_KERNEL_FRACTIONS[0]
    attention_fraction: float = DEFAULT_KERNEL_FRACTIONS[1]
    attention_fraction_flash3: float = DEFAULT_KERNEL_FRACTIONS[2]
    fp8_gemm_fraction: float | None = None
    """FP8_GEMM_FRACTIONS' figure; None: the BF16 `gemm_fraction` applies to FP8 too."""
    peak_caveat: str = ""
    """The catalog's `peak_disputed`: non-empty when the peak behind MFU is uncertain."""

    def gemm_fraction_for(self, precision: str) -> float:
        """The best-shape GEMM fraction of the dense peak at `precision`."""
        if precision == "fp8" and self.fp8_gemm_fraction is not None:
            return self.fp8_gemm_fraction
        return self.gemm_fraction

    def peak_tflops(self, precision: str) -> float:
        """Dense tensor-core peak for `precision` ('bf16' or 'fp8'); fp8 needs catalog support."""
        if precision == "fp8":
            if not self.fp8_tflops:
                raise SpecError("--precision", [FieldProblem(
                    "precision", f"{self.name} has no FP8 tensor throughput in the catalog",
                    "bf16")])
            return self.fp8_tflops
        return self.bf16_tflops

    def group_bandwidth_gbs(self, ranks: int, stride: int = 1) -> float:
        """Ring bus bandwidth of a collective over `ranks` ranks spaced `stride` devices apart.

        A group inside one link domain runs at the link's bus bandwidth. A group that spans
        nodes runs NCCL-style parallel rings, one per NIC: its bandwidth is the NIC share of
        every group member on a node (nccl-tests across DGX A100 nodes with 8 HDR NICs reach
        ~185 GB/s all-reduce busbw, not 25), capped by the intra-node link.
        """
        intra = self.link_gbs * LINK_BUSBW_FRACTION
        if ranks * stride <= self.domain_size:
            return intra
        return min(intra, self._per_node(ranks, stride) * self.inter_node_gbs
                   * NIC_BUSBW_FRACTION)

    def _per_node(self, ranks: int, stride: int) -> int:
        """Members of a `ranks`-rank group `stride` devices apart that share one node."""
        return max(1, min(ranks, self.devices_per_node // max(1, stride)))

    def group_nodes(self, ranks: int, stride: int = 1) -> int:
        """Nodes a group spans (1 when it fits in one link domain)."""
        if ranks * stride <= self.domain_size:
            return 1
        return -(-ranks // self._per_node(ranks, stride))


def _lookup(table: dict[str, Any], accel: AcceleratorType, catalog: Catalog, default: Any) -> Any:
    """The entry of `table` whose key names `accel` in the catalog, or `default`."""
    for key, value in table.items():
        found = catalog.find(key)
        if found is not None and found.name == accel.name:
            return value
    return default


def inter_node_default(accel: AcceleratorType, catalog: Catalog) -> float:
    """The documented inter-node bandwidth for `accel`, or DEFAULT_INTER_NODE_GBS."""
    return float(_lookup(INTER_NODE_GBS, accel, catalog, DEFAULT_INTER_NODE_GBS))


def _link_domain(accel: AcceleratorType) -> int:
    """Devices that reach each other over the scale-up link: the supernode when the catalog
    names one (GB200 NVL72's rack-wide NVLink, CloudMatrix384's UB mesh), else the largest
    link domain of a node, else the node."""
    if accel.supernode_devices:
        return accel.supernode_devices
    return max(accel.link_domains) if accel.link_domains else accel.devices_per_node


def from_accelerator(accel: AcceleratorType, inter_node_gbs: float | None = None,
                     catalog: Catalog | None = None) -> Hardware:
    """Hardware for a catalog entry; `inter_node_gbs` overrides the table default."""
    catalog = catalog or default_catalog()
    network = inter_node_gbs or inter_node_default(accel, catalog)
    gemm, attention, flash3 = _lookup(KERNEL_FRACTIONS, accel, catalog,
                                      DEFAULT_KERNEL_FRACTIONS)
    return Hardware(
        name=accel.name,
        bf16_tflops=accel.bf16_tflops,
        fp8_tflops=accel.fp8_tflops,
        memory_gib=accel.memory_gib,
        hbm_gbs=accel.memory_bandwidth_gbs,
        link_gbs=accel.link_bandwidth_gbs / 2,
        domain_size=_link_domain(accel),
        devices_per_node=accel.devices_per_node,
        inter_node_gbs=network,
        gemm_fraction=gemm,
        attention_fraction=attention,
        attention_fraction_flash3=flash3,
        fp8_gemm_fraction=_lookup(FP8_GEMM_FRACTIONS, accel, catalog, None),
        peak_caveat=accel.peak_disputed,
    )


def hardware_for(name: str | Hardware, inter_node_gbs: float | None = None,
                 catalog: Catalog | None = None) -> Hardware:
    """Hardware for an accelerator name or alias (case-insensitive, via the catalog).

    Raises SpecError naming `--accelerator` and the known types when the name is unknown.
    """
    if isinstance(name, Hardware):
        return replace(name, inter_node_gbs=inter_node_gbs) if inter_node_gbs else name
    if inter_node_gbs is not None and inter_node_gbs <= 0:
        raise SpecError("--inter-node-gbs", [FieldProblem(
            "inter_node_gbs", f"must be positive, got {inter_node_gbs}", "> 0 GB/s")])
    catalog = catalog or default_catalog()
    try:
        accel = catalog.get(name)
    except UnknownAcceleratorError:
        raise SpecError("--accelerator", [FieldProblem(
            "accelerator", f"unknown accelerator {name!r}",
            ", ".join(sorted(catalog.names())))]) from None
    return from_accelerator(accel, inter_node_gbs, catalog)
