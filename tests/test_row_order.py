"""DefaultOrder keeps the connections table's default order by bisection; it must equal a full sort."""

from __future__ import annotations

import random

from wsmon.core.state import Connection, ConnState, State
from wsmon.ui.widgets.row_order import DefaultOrder, order_key


def full_sort(state: State) -> list[str]:
    return [conn.id for conn in sorted(state.connections.values(), key=order_key) if not conn.mirror_of]


def test_rows_stay_in_the_order_a_full_sort_gives_as_state_changes() -> None:
    rng = random.Random(12)
    state = State(connections={f"c{n}": Connection(id=f"c{n}", opened_mono=float(n)) for n in range(300)})
    order = DefaultOrder()
    assert [conn.id for conn in order.rows(state)] == full_sort(state)
    next_id = 300
    for _ in range(200):
        for _ in range(rng.randrange(1, 20)):
            state.seq += 1
            pick = rng.random()
            ids = list(state.connections)
            if pick < 0.5:  # traffic: the row changes, its place does not
                conn = state.connections[rng.choice(ids)]
                conn.msgs_in += 1
            elif pick < 0.65:
                conn = state.connections[rng.choice(ids)]
                conn.state, conn.closed_mono = ConnState.CLOSED, float(state.seq)
            elif pick < 0.75:
                del state.connections[rng.choice(ids)]
                continue
            elif pick < 0.8:  # matched to a tap row: shown once, as the tap's row
                conn = state.connections[rng.choice(ids)]
                conn.mirror_of = "" if conn.mirror_of else "tap-1"
            else:
                next_id += 1
                conn = state.connections[f"c{next_id}"] = Connection(
                    id=f"c{next_id}", opened_mono=float(rng.randrange(400))
                )
            conn.updated_seq = state.seq
        assert [conn.id for conn in order.rows(state)] == full_sort(state)
        closed = sum(
            1 for conn in state.connections.values() if conn.state == ConnState.CLOSED and not conn.mirror_of
        )
        assert order.closed == closed


def test_another_state_or_one_that_went_back_is_read_afresh() -> None:
    order = DefaultOrder()
    later = State(seq=50, connections={"a": Connection(id="a", opened_mono=1.0, updated_seq=50)})
    assert [conn.id for conn in order.rows(later)] == ["a"]
    # A seek back: an older State whose rows carry seqs below the last one seen.
    earlier = State(seq=10, connections={"b": Connection(id="b", opened_mono=2.0, updated_seq=3)})
    assert [conn.id for conn in order.rows(earlier)] == ["b"]
