"""Quantities in spec files: durations, memory sizes and CPU amounts, one grammar for all.

Every file kind that holds a quantity (job and queue files, cluster specs, the server config,
the cluster generator's arguments) reads it with these functions, so the same text means the
same amount everywhere (docs/job-spec.md, Units):

- a number is written as YAML or JSON write it, as digits with an optional fraction and an
  optional decimal exponent: `12`, `0.5`, `.5`, `1e3`, `1.5E-2` (no sign, no `_`); a string
  may hold spaces around the number and between the number and its unit;
- memory: a bare number is MiB; a unit `Ki Mi Gi Ti Pi` (powers of 1024) or `k K M G T P`
  (powers of 1000), optionally followed by `B`; computed exactly and **rounded up** to whole
  MiB (`0.4Mi` is 1 MiB, `64G` 61036 MiB); at most 1 PiB;
- CPU: cores, or milli-cores with the unit `m` (`500m`); computed exactly and rounded to the
  nearest milli-core (ties to even); at most 1,000,000 cores;
- durations: seconds, or number+unit parts with `d h m s`, each at most once.

Each `parse_*` function accepts what a user writes in YAML and returns the internal unit
(seconds, MiB, milli-cores); on bad input it raises `UnitError` (a ValueError), whose
`allowed` text says what would have been accepted. Each `format_*` function writes the
internal unit back as text that the matching `parse_*` reads to the same value.
"""

from __future__ import annotations

import decimal
import math
import re
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import Any

DURATION_UNITS: dict[str, int] = {"d": 86400, "h": 3600, "m": 60, "s": 1}
DURATION_ALLOWED = 'a number of seconds, or a duration such as "90s", "30m", "2h", "1h30m", "1d"'

MEMORY_UNITS: dict[str, int] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
}
"""Bytes per memory unit; each may be followed by `B` (`64GiB`, `80GB`, `500kB`)."""
MEMORY_ALLOWED = (
    'a number of MiB, or a size with a unit: "512Mi", "64Gi", "1.5Ti" (powers of 1024) or '
    '"500M", "64G" (powers of 1000), optionally followed by B ("64GiB"); rounded up to MiB'
)
MAX_MEMORY_MIB = 2**30
"""1 PiB per replica or node: more is a mistake (often a byte count written as a bare
number)."""
MAX_CPU_CORES = 1_000_000
CPU_ALLOWED = 'a number of cores (2, 0.5) or milli-cores as a string ("500m")'

NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
"""The number forms every quantity accepts: digits, an optional fraction, an optional
decimal exponent."""
_DURATION_PART = re.compile(rf"({NUMBER})([dhms])")
_DURATION_FULL = re.compile(rf"(?:{NUMBER}[dhms])+")
_MEMORY = re.compile(rf"({NUMBER})\s*(?:({'|'.join(MEMORY_UNITS)})B?)?")
_CPU = re.compile(rf"({NUMBER})\s*(m?)")


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


def _exact(value: Any, pattern: re.Pattern[str]) -> tuple[Decimal, str] | None:
    """(the number, its unit) of a quantity, exactly: a finite int or float (unit ""), or a
    string that `pattern` matches whole after stripping spaces; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return (Decimal(value), "") if _finite_number(value) is not None else None
    if not isinstance(value, str):
        return None
    match = pattern.fullmatch(value.strip())
    if match is None:
        return None
    try:
        return Decimal(match.group(1)), match.group(2) or ""
    except decimal.InvalidOperation:  # an exponent beyond what Decimal holds
        return None


def _context(number: Decimal) -> decimal.Context:
    """A context in which products and quotients of `number` with unit sizes are exact."""
    digits = len(number.as_tuple().digits)
    return decimal.Context(prec=digits + 60, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def parse_duration(value: Any) -> float:
    """Seconds from a number of seconds or a string like "2h", "90m", "1h30m", "3600s", "1.5d".

    A bare number (int, float, or a numeric string) is seconds. Negative values are rejected;
    whether zero is acceptable is the caller's decision.
    """
    number = _finite_number(value)
    if number is None and isinstance(value, str):
        text = value.strip()
        if re.fullmatch(NUMBER, text):
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
    """MiB from a size with a unit ("64Gi", "512Mi", "80G", "0.4Mi") or a bare number of MiB,
    computed exactly and rounded up to a whole MiB.

    Bare numbers are MiB, in every file kind (not bytes, as in Kubernetes).
    """
    parsed = _exact(value, _MEMORY)
    if parsed is None or parsed[0] < 0:
        raise UnitError(f"{value!r} is not a memory size", MEMORY_ALLOWED)
    number, unit = parsed
    with decimal.localcontext(_context(number)):
        mib = number * MEMORY_UNITS[unit] / 2**20 if unit else number
        if mib > MAX_MEMORY_MIB:
            raise UnitError(
                f"{value!r} is more than 1 PiB (a byte count written as a bare number?)",
                MEMORY_ALLOWED + "; at most 1Pi",
            )
        return int(mib.to_integral_value(rounding=ROUND_CEILING))


def format_memory(mib: int) -> str:
    """Text for `mib` in the largest binary unit that divides it exactly ("64Gi", "1536Mi")."""
    for unit, size in (("Ti", 2**20), ("Gi", 2**10)):
        if mib and mib % size == 0:
            return f"{mib // size}{unit}"
    return f"{mib}Mi"


def parse_cpu_milli(value: Any) -> int:
    """Milli-cores from cores (2, 0.5, "1.5", "1e3") or milli-cores ("500m"), computed
    exactly and rounded to the nearest milli-core (ties to even). Not negative."""
    parsed = _exact(value, _CPU)
    if parsed is None or parsed[0] < 0:
        raise UnitError(f"{value!r} is not a CPU amount", CPU_ALLOWED)
    number, unit = parsed
    with decimal.localcontext(_context(number)):
        milli = number if unit == "m" else number * 1000
        if milli > MAX_CPU_CORES * 1000:
            raise UnitError(f"{value!r} is more than {MAX_CPU_CORES} cores", CPU_ALLOWED)
        return int(milli.to_integral_value(rounding=ROUND_HALF_EVEN))


def format_cpu(milli: int) -> int | str:
    """Whole cores as an int (4), anything else as milli-cores ("1500m")."""
    return milli // 1000 if milli % 1000 == 0 else f"{milli}m"
