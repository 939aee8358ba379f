"""Run one vendor tool and turn whatever happens into a `ToolReport`.

    report = run_tool("nvidia", ("nvidia-smi", "-q", "-x"), nvidia.parse, timeout_s=5)

The caller is never blocked for longer than `timeout_s` (plus the time to kill the tool) and
never sees an exception for a tool's failure: a missing tool, a non-zero exit, a tool that
hangs, or output its parser does not recognise all give a report whose `unknown` says so in
words an operator can act on ("npu-smi: not found on PATH", "nvidia-smi: no answer in 5 s",
"amd-smi printed something unexpected: ...").
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Sequence

from suan.devices.model import DeviceReading, ToolReport, UnexpectedOutput

DEFAULT_TIMEOUT_S = 5.0
"""How long a tool may take. nvidia-smi answers in well under a second on a healthy node;
one that takes seconds is itself a sign of trouble (a GPU falling off the bus makes the
driver wait), and the reading must not hold the inventory up."""

QUOTE_CHARS = 160
"""How much of a tool's own words goes into a message: enough for its error line."""

Parser = Callable[[str], list[DeviceReading]]


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """`text` on one line, cut to `limit` characters (with "..." when cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def run_tool(
    vendor: str,
    argv: Sequence[str],
    parse: Parser,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    env: dict[str, str] | None = None,
) -> ToolReport:
    """Run `argv`, parse its standard output, and report; see the module docstring."""
    tool = os.path.basename(argv[0])
    path = shutil.which(argv[0], path=(env or os.environ).get("PATH"))
    if path is None:
        return ToolReport(vendor, tool, unknown=f"{tool}: not found on PATH")
    finished = _run(path, argv, timeout_s, env)
    if isinstance(finished, str):
        return ToolReport(vendor, tool, unknown=f"{tool}: {finished}")
    out, err, code = finished
    if code != 0:
        said = quote(err or out) or "no output"
        return ToolReport(vendor, tool, unknown=f"{tool}: exited with status {code}: {said}")
    try:
        devices = parse(out)
    except UnexpectedOutput as exc:
        return ToolReport(vendor, tool, unknown=f"{tool} printed something unexpected: {exc}")
    return ToolReport(vendor, tool, devices=tuple(devices))


def _run(
    path: str, argv: Sequence[str], timeout_s: float, env: dict[str, str] | None
) -> tuple[str, str, int] | str:
    """(stdout, stderr, exit status), or the reason there is none. A tool that outlives
    `timeout_s` is killed with its whole process group (a wrapper script's children too)."""
    try:
        child = subprocess.Popen(
            [path, *argv[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        return f"could not be started: {exc.strerror or exc}"
    try:
        out, err = child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(child)
        return f"no answer in {timeout_s:g} s"
    decode = lambda data: data.decode("utf-8", errors="replace")  # noqa: E731
    return decode(out), decode(err), child.returncode


def _kill_group(child: subprocess.Popen) -> None:
    """Kill `child` and every process of its group, then reap it (briefly: a process stuck
    in the kernel cannot be reaped, and the caller must not wait on it)."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except OSError:
        child.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.communicate(timeout=1.0)
