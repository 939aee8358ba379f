"""Drain this node in Slurm when its device verdict takes it out: `suan devices check
--slurm-drain`, run as Slurm's HealthCheckProgram.

    said = drain_in_slurm("n4", "drain: device 0 (NVIDIA A10G) ecc_uncorrectable: ...")
    # "slurm: drained n4", or what was done instead

The reason Slurm keeps is `suan: <the verdict's findings>`, cut to `REASON_BYTES`; it is passed
to `scontrol update NodeName=<node> State=DRAIN Reason=<reason>` as one argument (no shell, no
quotes). A node Slurm already has drained or down for another reason (an admin's, another
health check's) is left as it is, so its reason is not overwritten; one already drained by
this check with the same reason is not updated again. Suan's Slurm inventory reads the reason
back (`severity_in_reason`): a node drained here for a `drain` verdict is drained in Suan too.
"""

from __future__ import annotations

import json
import re
import subprocess

from suan.devices.model import Severity
from suan.devices.runner import quote

REASON_PREFIX = "suan: "
"""What every reason this check gives Slurm starts with."""
REASON_BYTES = 255
"""slurmdbd records a node's reason in the `reason` column of its event table, a MySQL
TINYTEXT, which holds at most 255 bytes."""
SCONTROL_TIMEOUT_S = 20.0
"""slurmd kills a HealthCheckProgram after 60 s; the tools' reading takes at most their
timeout (5 s), which leaves this much for each of the two Slurm calls."""

_SEVERITY = re.compile(rf"^{re.escape(REASON_PREFIX)}(cordon|drain):")


def slurm_reason(reason: str) -> str:
    """`suan: <reason>` on one line, cut to REASON_BYTES of UTF-8 (with "..." when cut)."""
    text = REASON_PREFIX + " ".join(reason.split())
    if len(text.encode()) <= REASON_BYTES:
        return text
    cut = text.encode()[: REASON_BYTES - 3].decode(errors="ignore")
    return cut + "..."


def severity_in_reason(reason: str) -> Severity | None:
    """The severity a reason written by this check starts with (None for any other reason)."""
    match = _SEVERITY.match(reason.strip())
    return Severity(match.group(1)) if match else None


def drain_in_slurm(node: str, reason: str, env: dict[str, str] | None = None) -> str:
    """Drain `node` with `suan: <reason>` unless Slurm already holds it out (see the module
    docstring); one line saying what was done. Never raises for Slurm's failure."""
    wanted = slurm_reason(reason)
    state = _node_state(node, env)
    if isinstance(state, str):
        return state
    flags, current = state
    if flags & {"DRAIN", "DRAINED", "DRAINING", "DOWN", "FAIL", "MAINT"}:
        if current == wanted:
            return f"slurm: {node} already drained with this reason"
        if not current.startswith(REASON_PREFIX):
            held = "+".join(sorted(flags))
            return f"slurm: {node} already out ({held}: {current}); left as it is"
    argv = ["scontrol", "update", f"NodeName={node}", "State=DRAIN", f"Reason={wanted}"]
    _, failure = _run(argv, env)
    if failure:
        return f"slurm: could not drain {node}: {failure}"
    return f"slurm: drained {node}"


def _node_state(node: str, env: dict[str, str] | None) -> tuple[set[str], str] | str:
    """(Slurm's state words of `node`, upper case; its reason), or why they are unknown."""
    out, failure = _run(["sinfo", "--json"], env)
    if failure:
        return f"slurm: could not read {node}'s state: {failure}"
    try:
        records = json.loads(out).get("nodes") or []
    except (ValueError, AttributeError):
        return f"slurm: could not read {node}'s state: sinfo --json printed no JSON object"
    record = next((r for r in records if r.get("name") == node), None)
    if record is None:
        return f"slurm: no node named {node!r} (use --node with the node's Slurm name)"
    state = record.get("state") or []
    words = state if isinstance(state, list) else [state]
    words = [*words, *(record.get("state_flags") or [])]
    return {str(word).upper() for word in words}, str(record.get("reason") or "").strip()


def _run(argv: list[str], env: dict[str, str] | None) -> tuple[str, str]:
    """(standard output of `argv`, ""), or ("", why) when it cannot run or fails."""
    try:
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=SCONTROL_TIMEOUT_S
        )
    except FileNotFoundError:
        return "", f"{argv[0]} not found on PATH"
    except subprocess.TimeoutExpired:
        return "", f"{argv[0]} gave no answer in {SCONTROL_TIMEOUT_S:g} s"
    if done.returncode != 0:
        said = quote(done.stderr or done.stdout) or "no output"
        return "", f"{argv[0]} exited with status {done.returncode}: {said}"
    return done.stdout, ""
