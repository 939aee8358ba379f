"""The ledger's undo log: any sequence of bookings rolled back restores the exact state, and
its indexes always agree with the per-device truth."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from sched_helpers import cluster, node, snapshot

from suan.catalog import default_catalog
from suan.sched.fit import WHOLE
from suan.sched.ledger import Ledger


def _state(ledger: Ledger):  # type: ignore[no-untyped-def]
    buckets = {a: [sorted(b) for b in bs] for a, bs in ledger.buckets.items()}
    hists = [(g.hist[:], g.whole) for g in ledger.groups]
    return ([row[:] for row in ledger.free], ledger.whole[:], ledger.cpu[:], buckets, hists,
            dict(ledger.type_whole))


def _check_indexes(ledger: Ledger) -> None:
    for position, free in enumerate(ledger.free):
        assert ledger.whole[position] == sum(1 for share in free if share == WHOLE)
        accel = ledger.nodes[position].accelerator
        assert position in ledger.buckets[accel][ledger.offset[position] + ledger.whole[position]]
    for group in ledger.groups:
        assert group.whole == sum(ledger.whole[p] for p in group.members)
        assert sum(group.hist) == len(group.members)


operations = st.lists(
    st.tuples(st.integers(0, 3), st.lists(st.integers(0, 7), min_size=1, max_size=4, unique=True),
              st.sampled_from([250, 500, 1000])),
    max_size=12,
)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(first=operations, second=operations)
def test_rollback_restores_everything(first, second):  # type: ignore[no-untyped-def]
    nodes = cluster(*(node(f"n{i}", rack=f"r{i // 2}") for i in range(4)))
    ledger = Ledger(snapshot(nodes), default_catalog())

    def apply(ops):  # type: ignore[no-untyped-def]
        for position, devices, milli in ops:
            if all(ledger.free[position][d] >= milli for d in devices):
                ledger.take(position, tuple(devices), milli, 1000, 10)

    apply(first)
    before = _state(ledger)
    mark = ledger.savepoint()
    apply(second)
    _check_indexes(ledger)
    ledger.rollback(mark)
    assert _state(ledger) == before
    _check_indexes(ledger)
