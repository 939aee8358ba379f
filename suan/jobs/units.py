"""Quantities in spec files: durations, memory sizes and CPU amounts.

Each `parse_*` function accepts what a user writes in YAML and returns the internal unit
(seconds, MiB, milli-cores); on bad input it raises `UnitError`, whose `allowed` text says what
would have been accepted. Each `format_*` function writes the internal unit back as text that
the matching `parse_*` reads to the same value.
"""

from __future__ import annotations

import math
import re
from typing import Any

DURATION_UNITS: dict[str, int] = {"d": 86400, "h": 3600, "m": 60, "s": 1}
DURATION_ALLOWED = 'a number of seconds, or a duration such as "90s", "30m", "2h", "1h30m", "1d"'

MEMORY_UNITS: dict[str, float] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
}
MEMORY_ALLOWED = (
    'a number of MiB, or a size with a unit: "512Mi", "64Gi", "1.5Ti" (powers of 1024) or '
    '"500M", "64G" (powers of 1000), optionally followed by B ("64GiB")'
)
MAX_MEMORY_MIB = 2**30
"""1 PiB per replica: more is a mistake (often a byte count written as a bare number)."""
MAX_CPU_CORES = 1_000_000
CPU_ALLOWED = 'a number of cores (2, 0.5) or milli-cores as a string ("500m")'

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_DURATION_PART = re.compile(rf"({_NUMBER})([dhms])")
_DURATION_FULL = re.compile(rf"(?:{_NUMBER}[dhms])+")
_MEMORY = re.compile(rf"({_NUMBER})\s*(Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P)B?")
_MILLI = re.compile(r"(\d+)m")


class UnitError(ValueError):
    """A quantity that could not be read. `allowed` describes the accepted forms."""

    def __init__(self, message: str, allowed: str):
        super().__init__(message)
        self.allowed = allowed


def _finite_number(value: Any) -> float | None:
    """`value` as a float when it is a real int or float (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def parse_duration(value: Any) -> float:
    """Seconds from a number of seconds or a string like "2h", "90m", "1h30m", "3600s", "1.5d".

    A bare number (int, float, or a numeric string) is seconds. Negative values are rejected;
    whether zero is acceptable is the caller's decision.
    """
    number = _finite_number(value)
    if number is None and isinstance(value, str):
        text = value.strip()
        if re.fullmatch(_NUMBER, text):
            number = float(text)
        elif _DURATION_FULL.fullmatch(text):
            units = [unit for _, unit in _DURATION_PART.findall(text)]
            if len(set(units)) != len(units):
                raise UnitError(f"duration {value!r} repeats a unit", DURATION_ALLOWED)
            number = sum(float(n) * DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
    if number is None or not math.isfinite(number):
        raise UnitError(f"{value!r} is not a duration", DURATION_ALLOWED)
    if number < 0:
        raise UnitError(f"duration {value!r} is negative", DURATION_ALLOWED)
    return number


def format_duration(seconds: float) -> str:
    """Compact text for `seconds` ("2h", "1h30m", "45s", "12.5s"); parse_duration reads it back."""
    if seconds != int(seconds):
        return f"{seconds!r}s"
    rest = int(seconds)
    parts = []
    for unit, size in DURATION_UNITS.items():
        amount, rest = divmod(rest, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"


def parse_memory_mib(value: Any) -> int:
    """MiB (rounded up) from a size with a unit ("64Gi", "512Mi", "80G") or a bare number of MiB.

    Bare numbers are MiB, as in cluster spec files (not bytes, as in Kubernetes).
    """
    number = _finite_number(value)
    if number is None and isinstance(value, str):
        text = value.strip()
        match = _MEMORY.fullmatch(text)
        if match:
            number = float(match.group(1)) * MEMORY_UNITS[match.group(2)] / 2**20
        elif re.fullmatch(_NUMBER, text):
            number = float(text)
    if number is None or not math.isfinite(number) or number < 0:
        raise UnitError(f"{value!r} is not a memory size", MEMORY_ALLOWED)
    if number > MAX_MEMORY_MIB:
        raise UnitError(f"{value!r} is more than 1 PiB", MEMORY_ALLOWED + "; at most 1Pi")
    return math.ceil(number)


def format_memory(mib: int) -> str:
    """Text for `mib` in the largest binary unit that divides it exactly ("64Gi", "1536Mi")."""
    for unit, size in (("Ti", 2**20), ("Gi", 2**10)):
        if mib and mib % size == 0:
            return f"{mib // size}{unit}"
    return f"{mib}Mi"


def parse_cpu_milli(value: Any) -> int:
    """Milli-cores from cores (2, 0.5, "1.5") or a milli-core string ("500m"). Not negative."""
    number = _finite_number(value)
    if number is None and isinstance(value, str):
        text = value.strip()
        milli = _MILLI.fullmatch(text)
        if milli:
            number = int(milli.group(1)) / 1000
        elif re.fullmatch(_NUMBER, text):
            number = float(text)
    if number is None or not math.isfinite(number) or number < 0:
        raise UnitError(f"{value!r} is not a CPU amount", CPU_ALLOWED)
    if number > MAX_CPU_CORES:
        raise UnitError(f"{value!r} is more than {MAX_CPU_CORES} cores", CPU_ALLOWED)
    return round(number * 1000)


def format_cpu(milli: int) -> int | str:
    """Whole cores as an int (4), anything else as milli-cores ("1500m")."""
    return milli // 1000 if milli % 1000 == 0 else f"{milli}m"
