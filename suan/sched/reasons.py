"""Telling why one replica group does not fit one accelerator type, in words and a code.

A placement miss is judged against three pictures of the cluster, in order:

1. the *registered* cluster, whatever the nodes' health: a type it lacks, a replica larger
   than its largest node of the type, or more devices than it has of the type can never fit
   (`WaitCode.UNSCHEDULABLE`), so the job is told at once rather than left waiting;
2. the *ready* nodes with nothing running: if they cannot hold the group, the job waits for
   cordoned or down nodes (or unhealthy devices) to come back (`WaitCode.HEALTH`), and the
   sentence names the ready nodes and the ones that are not;
3. otherwise the ready nodes are busy: the strategy's own reason stands (`capacity`, `shape`
   or `constraint`), with the type's nodes that are not ready named after it.

Every check is O(1) over indexes the ledger's layout builds once per cluster.
"""

from __future__ import annotations

from suan.sched.fit import WHOLE
from suan.sched.ledger import Ledger
from suan.sched.placement import ReplicaAsk
from suan.sched.span import never_spans, span_unready

SHOWN_NODES = 4
"""Nodes named in a sentence before the rest are only counted."""


def never_fits(ledger: Ledger, ask: ReplicaAsk) -> str | None:
    """Why the registered cluster, whatever its health, can never hold the group; None when
    it can."""
    accelerator = ask.accelerator
    registered = ledger.registered.get(accelerator, 0)
    if not registered:
        return f"the cluster has no {accelerator} node"
    if ask.parts > 1:
        spans = never_spans(ledger, ask)
        if spans is not None:
            return spans
    largest = ledger.registered_max_node[accelerator]
    if ask.devices > largest and ask.parts == 1:
        return (f"a replica needs {ask.devices} {accelerator} but {accelerator} nodes have "
                f"at most {largest}{_span_limit(ledger, accelerator)}")
    if ask.milli == WHOLE and ask.total > registered:
        return (f"needs {ask.total} {accelerator} ({ask.replicas}x{ask.devices}) but the "
                f"cluster registers {registered}")
    if ask.within and ask.milli == WHOLE and ask.scope is None:
        inside = ledger.layout.registered_tier_max.get((ask.within, accelerator), 0)
        if ask.total > inside:
            where = f"its largest {ask.within} registers {inside}" if inside else (
                f"no {accelerator} node carries a {ask.within} label")
            return (f"needs {ask.total} {accelerator} ({ask.replicas}x{ask.devices}) inside one "
                    f"{ask.within}, but {where}")
    return None


def health_shortfall(ledger: Ledger, ask: ReplicaAsk) -> str | None:
    """Why the ready nodes, even with nothing running, cannot hold the group (nodes that are
    cordoned, down or have unhealthy devices are named); None when they can."""
    accelerator = ask.accelerator
    ready = ledger.layout.ready_nodes.get(accelerator, [])
    if not ready:
        return f"no {accelerator} node is ready ({_not_ready_list(ledger, accelerator)})"
    if ask.parts > 1:
        unready = span_unready(ledger, ask)
        if unready is not None:
            return f"{unready}; {_not_ready_list(ledger, accelerator)}"
    largest = ledger.type_max_node.get(accelerator, 0)
    if ask.devices > largest and ask.parts == 1:
        return (f"a replica needs {ask.devices} {accelerator}, the ready nodes have at most "
                f"{largest} healthy; {_not_ready_list(ledger, accelerator)}")
    healthy = ledger.capacity.get(accelerator, 0)
    if ask.milli == WHOLE and ask.total > healthy:
        return (f"needs {ask.replicas}x{ask.devices} {accelerator}, only "
                f"{_names(ready, 'node')} ready with {healthy} healthy; "
                f"{_not_ready_list(ledger, accelerator)}")
    return None


def _span_limit(ledger: Ledger, accelerator: str) -> str:
    """For a type whose link domain spans a supernode, how far a replica may span it."""
    accel = ledger.catalog.find(accelerator)
    if accel is None or not accel.supernode_devices:
        return ""
    return (f"; a replica may span the nodes of one supernode only up to "
            f"{accel.supernode_devices} devices, in equal parts the allocation rule allows")


def not_ready_note(ledger: Ledger, accelerator: str) -> str:
    """' (not ready: n2 cordoned, n3 down)' for a type with such nodes, else ''."""
    if accelerator not in ledger.layout.not_ready:
        return ""
    return f" (not ready: {_not_ready_list(ledger, accelerator)})"


def _not_ready_list(ledger: Ledger, accelerator: str) -> str:
    found = ledger.layout.not_ready.get(accelerator, [])
    if not found:
        return "every node of the type is ready"
    shown = ", ".join(found[:SHOWN_NODES])
    more = len(found) - SHOWN_NODES
    return shown + (f" and {more} more not ready" if more > 0 else "")


def _names(names: list[str], noun: str) -> str:
    if len(names) <= SHOWN_NODES:
        return ", ".join(names)
    return f"{len(names)} {noun}s"


def shape_code(reason: str) -> bool:
    """Whether a strategy's reason says devices are free but not in a usable shape."""
    return "not in a shape" in reason or reason.startswith("no node can take replica")


def fallback_note(accelerator: str, choice: int, choices: int, first: str, why: str) -> str:
    """Why a group started on a type other than its first choice."""
    return (f"; fell back to {accelerator} (choice {choice} of {choices}): {first}: {why}")
