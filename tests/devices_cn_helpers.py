"""Shared pieces of the device-parser tests: reading a captured fixture, picking a signal out of
a reading, and the property that a damaged capture is either read or refused with
`UnexpectedOutput`, never met with another exception."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from suan.devices.model import DeviceReading, UnexpectedOutput

FIXTURES = Path(__file__).parent / "fixtures" / "devices"

DAMAGE = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
"""Derandomised, so a failure reproduces; 150 examples cover every line of the largest
fixture (73 lines) about twice."""

GLYPHS = "|+-=/%:() 0123456789xNA"
"""Characters a damaged table line is given: the table's own punctuation and digits, which
are the ones a parser could misread as structure or numbers."""


def fixture(vendor: str, name: str) -> str:
    """The captured tool output `name` of `vendor` (see that folder's SOURCE file)."""
    return (FIXTURES / vendor / name).read_text(encoding="utf-8")


def value(reading: DeviceReading, name: str) -> float | str | None:
    """The value of signal `name` in `reading`, or None when the parser emitted none."""
    found = [signal.value for signal in reading.signals if signal.name == name]
    assert len(found) <= 1, f"signal {name} emitted {len(found)} times"
    return found[0] if found else None


@st.composite
def damaged(draw: st.DrawFn, text: str) -> str:
    """`text` with one line deleted, repeated, cut short, or one character replaced."""
    lines = text.splitlines()
    at = draw(st.integers(0, len(lines) - 1))
    line = lines[at]
    how = draw(st.sampled_from(["delete", "repeat", "cut", "replace"]))
    if how == "delete":
        lines[at : at + 1] = []
    elif how == "repeat":
        lines[at:at] = [line]
    elif how == "cut":
        lines[at] = line[: draw(st.integers(0, len(line)))]
    elif line:
        spot = draw(st.integers(0, len(line) - 1))
        lines[at] = line[:spot] + draw(st.sampled_from(GLYPHS)) + line[spot + 1 :]
    return "\n".join(lines)


def read_or_refuse(parse: Callable[[str], list[DeviceReading]], text: str) -> None:
    """`parse(text)` returns readings whose signal values are numbers or words, or raises
    `UnexpectedOutput`; any other exception fails the test."""
    try:
        readings = parse(text)
    except UnexpectedOutput:
        return
    for reading in readings:
        assert reading.index >= 0
        for signal in reading.signals:
            assert isinstance(signal.value, float | str), signal
