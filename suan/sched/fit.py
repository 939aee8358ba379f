"""Choosing device ids on one node for one replica, under the vendor's allocation rule.

Whole-device requests stay inside one intra-node link domain whenever one can hold them (best
fit: the domain with the fewest free devices that suffices), and must do so when the rule's
`domain_local_max` or the job's `replica_in_domain` says so. Modules (Ascend 910C die pairs)
are taken whole and aligned. Fractional requests go to the device whose free share fits most
tightly, preferring devices already shared so that whole devices stay whole.
"""

from __future__ import annotations

from suan.catalog.model import AllocationRule

WHOLE = 1000


def pick_share(free: list[int], milli: int) -> tuple[int, ...] | None:
    """The device with the least free share that still holds `milli`, or None."""
    best, best_free = -1, WHOLE + 1
    for device, share in enumerate(free):
        if milli <= share < best_free:
            best, best_free = device, share
            if share == milli:
                break
    return (best,) if best >= 0 else None


def _free_units(ids: tuple[int, ...], free: list[int], module: int) -> list[tuple[int, ...]]:
    """Whole-free units of a domain: single devices, or aligned modules of `module` devices."""
    if module <= 1:
        return [(d,) for d in ids if free[d] == WHOLE]
    units = []
    for start in range(0, len(ids) - module + 1, module):
        unit = ids[start : start + module]
        if all(free[d] == WHOLE for d in unit):
            units.append(unit)
    return units


def pick_whole(
    free: list[int],
    domains: tuple[tuple[int, ...], ...],
    count: int,
    rule: AllocationRule | None,
    replica_in_domain: bool = False,
) -> tuple[int, ...] | None:
    """`count` wholly free device ids honouring link domains and modules, or None. A count that
    would split a module (an odd count above 1 of Ascend 910C dies) gets None."""
    module = rule.module_size if rule and count > 1 else 1
    if count % module:
        return None
    if module == 1 and len(domains) == 1:
        ids = [d for d in domains[0] if free[d] == WHOLE]
        return tuple(ids[:count]) if len(ids) >= count else None
    units_needed = -(-count // module)
    per_domain = [_free_units(ids, free, module) for ids in domains]
    fitting = [units for units in per_domain if len(units) >= units_needed]
    if fitting:
        units = min(fitting, key=len)
        return _flatten(units[:units_needed])[:count]
    local_max = rule.domain_local_max if rule else 0
    if replica_in_domain or count <= local_max:
        return None
    chosen: list[tuple[int, ...]] = []
    for units in sorted(per_domain, key=len, reverse=True):
        chosen.extend(units[: units_needed - len(chosen)])
        if len(chosen) == units_needed:
            return _flatten(chosen)[:count]
    return None


def _flatten(units: list[tuple[int, ...]]) -> tuple[int, ...]:
    return tuple(device for unit in units for device in unit)
