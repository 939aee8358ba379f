"""Accelerator types and the catalog that holds them.

An `AcceleratorType` is one catalog entry: performance figures, the node layout (devices per node,
intra-node link domains), the allocation rule the vendor's runtime imposes, and the software
contract (visible-devices variable, collective library, PyTorch device plugin). Every figure
carries a source in `sources`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from suan.errors import UnknownAcceleratorError


@dataclass(frozen=True)
class AllocationRule:
    """How many devices of one node a single replica may take, and how they must be grouped.

    - `counts`: the allowed per-node device counts; empty means any count from 1 to the node size.
    - `domain_local_max`: a request of at most this many devices must sit inside one intra-node
      link domain (Kunlunxin P800: 4). 0 means no such rule.
    - `module_size`: devices come in modules of this size (Ascend 910C: 2 dies per package);
      a request larger than one device must take whole, aligned modules. 1 means no modules.
    """

    counts: tuple[int, ...] = ()
    domain_local_max: int = 0
    module_size: int = 1

    def allows(self, count: int, devices_per_node: int) -> bool:
        """True when a replica may take `count` devices on one node."""
        if count < 1 or count > devices_per_node:
            return False
        if self.counts:
            return count in self.counts
        return not (self.module_size > 1 and count > 1 and count % self.module_size)

    def describe(self, devices_per_node: int) -> str:
        """Human text for error messages: which counts are allowed."""
        if self.counts:
            allowed = ", ".join(str(c) for c in self.counts)
        elif self.module_size > 1:
            allowed = f"1 or a multiple of {self.module_size} up to {devices_per_node}"
        else:
            allowed = f"1 to {devices_per_node}"
        if self.domain_local_max:
            allowed += f"; up to {self.domain_local_max} must sit in one link domain"
        return allowed


@dataclass(frozen=True)
class AcceleratorType:
    """One accelerator model. Units: GiB, GB/s, TFLOP/s (dense, no sparsity).

    Figures are per *visible device* (the unit a visible-devices variable selects): one die of
    a dual-die package such as the Ascend 910C or the Cambricon MLU370-X8. `collective_backend`
    names the vendor's collective library; `dist_backend` is the name a job passes to
    `torch.distributed.init_process_group` (empty means the same as `collective_backend`).
    `kubernetes_resource` is the extended resource name the vendor's Kubernetes device plugin
    advertises (`nvidia.com/gpu`, `huawei.com/Ascend910`; empty when none is known).
    """

    name: str
    vendor: str
    memory_gib: float
    memory_bandwidth_gbs: float
    bf16_tflops: float
    fp8_tflops: float | None
    devices_per_node: int
    link_domains: tuple[int, ...]
    link: str
    link_bandwidth_gbs: float
    allocation: AllocationRule
    visible_devices_env: str
    collective_backend: str
    torch_device: str
    torch_plugin: str
    aliases: tuple[str, ...] = ()
    supernode_devices: int = 0
    relative_speed: float = 1.0
    notes: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    peak_disputed: str = ""
    """Non-empty when sources disagree on the compute peak (or it is a placeholder): why, with
    the range; MFU against such a peak is printed with this caveat."""
    dist_backend: str = ""
    kubernetes_resource: str = ""

    def span_parts(self, count: int) -> int:
        """Into how many per-node parts a replica of `count` whole devices is split.

        1 when `count` fits one node (`devices_per_node`; whether the allocation rule allows
        it is the rule's to say). Above that, a replica may span nodes only where the type's
        link domain spans a supernode (`supernode_devices`) that holds `count`: it takes the
        fewest equal parts, each a per-node count the allocation rule allows, one part per
        node (equal parts give every node the same LOCAL_WORLD_SIZE, as torchrun expects).
        0 when no such split exists: the replica can never be placed.
        """
        size = self.devices_per_node
        if count <= size:
            return 1
        if not self.supernode_devices or count > self.supernode_devices:
            return 0
        most = self.supernode_devices // size
        for parts in range(-(-count // size), most + 1):
            if count % parts == 0 and self.allocation.allows(count // parts, size):
                return parts
        return 0

    def domain_layout(self, devices: int | None = None) -> tuple[tuple[int, ...], ...]:
        """Device ids grouped by intra-node link domain for a node with `devices` devices."""
        total = devices if devices is not None else self.devices_per_node
        groups: list[tuple[int, ...]] = []
        start = 0
        for size in self.link_domains:
            if start >= total:
                break
            end = min(total, start + size)
            groups.append(tuple(range(start, end)))
            start = end
        if start < total:
            groups.append(tuple(range(start, total)))
        return tuple(groups)


REFERENCE_TFLOPS = 125.0
"""Dense FP16 tensor peak of the reference device, NVIDIA V100-SXM2-16GB (relative_speed 1.0)."""
REFERENCE_BANDWIDTH_GBS = 900.0
"""Memory bandwidth of the reference device, NVIDIA V100-SXM2-16GB."""


def roofline_relative_speed(bf16_tflops: float, memory_bandwidth_gbs: float) -> float:
    """Rough training speed relative to a V100-16GB, from peak compute and memory bandwidth.

    A weighted geometric mean: (tflops / 125) ** (2/3) * (bandwidth / 900) ** (1/3), rounded to
    two decimals. Training time is mostly dense matrix products (compute-bound), the rest
    (attention, normalisation, optimizer) is bandwidth-bound; hence the 2:1 weights.
    """
    compute = (bf16_tflops / REFERENCE_TFLOPS) ** (2 / 3)
    memory = (memory_bandwidth_gbs / REFERENCE_BANDWIDTH_GBS) ** (1 / 3)
    return round(compute * memory, 2)


def accelerator_record(accel: AcceleratorType) -> dict[str, Any]:
    """Every field of `accel` as JSON-ready data, plus `allocation_text` (the rule in words)."""
    record = asdict(accel)
    record["link_domains"] = list(accel.link_domains)
    record["aliases"] = list(accel.aliases)
    record["allocation"]["counts"] = list(accel.allocation.counts)
    record["allocation_text"] = accel.allocation.describe(accel.devices_per_node)
    return record


def normalise_name(name: str) -> str:
    """The lookup key of a type name or alias: case-folded, with separators removed."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())


class Catalog:
    """A set of accelerator types, looked up by name or alias, case-insensitively."""

    def __init__(self, types: Iterable[AcceleratorType] = ()):
        self._types: dict[str, AcceleratorType] = {}
        self._keys: dict[str, str] = {}
        for accel in types:
            self.add(accel)

    def add(self, accel: AcceleratorType, *, replace: bool = False) -> None:
        """Register `accel`; an operator file may `replace` a built-in entry of the same name.

        A replaced entry keeps its position in iteration order. Raises ValueError (and changes
        nothing) when the name exists without `replace`, or a name or alias already names
        another type.
        """
        if accel.name in self._types and not replace:
            raise ValueError(f"accelerator {accel.name!r} is already in the catalog")
        keys = [normalise_name(key) for key in (accel.name, *accel.aliases)]
        for key, text in zip(keys, (accel.name, *accel.aliases), strict=True):
            owner = self._keys.get(key)
            if owner is not None and owner != accel.name:
                raise ValueError(f"alias {text!r} of {accel.name!r} already names {owner!r}")
        self._keys = {k: v for k, v in self._keys.items() if v != accel.name}
        self._types[accel.name] = accel
        self._keys.update(dict.fromkeys(keys, accel.name))

    def get(self, name: str) -> AcceleratorType:
        """The type named `name` (or one of its aliases). Raises UnknownAcceleratorError."""
        found = self.find(name)
        if found is None:
            known = ", ".join(sorted(self._types))
            raise UnknownAcceleratorError(f"unknown accelerator {name!r}; known: {known}")
        return found

    def find(self, name: str) -> AcceleratorType | None:
        """The type named `name` or None."""
        exact = self._types.get(name)
        if exact is not None:
            return exact
        canonical = self._keys.get(normalise_name(name))
        return self._types[canonical] if canonical else None

    def canonical(self, name: str) -> str:
        """The catalog name behind `name` (an alias or a differently cased name)."""
        return self.get(name).name

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None

    def __iter__(self) -> Iterator[AcceleratorType]:
        return iter(self._types.values())

    def __len__(self) -> int:
        return len(self._types)

    def names(self) -> list[str]:
        return list(self._types)
