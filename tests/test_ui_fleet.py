"""A fleet's State on the dashboard: the connections table's node column, with the same connection id
on two nodes kept apart (events translated by core.fleet as `wsmon fleet` translates them)."""

from __future__ import annotations

from ui_support import ReducerFeed, screen_clock, settle, widget_text

from wsmon.core import events as ev
from wsmon.core.fleet import NODE_KIND, to_fleet
from wsmon.ui.app import WsmonApp
from wsmon.ui.widgets import ConnectionsTable

at = screen_clock()


def _node_events(node: str, close_code: int) -> list[ev.Event]:
    own = [
        ev.ConnectionOpened(**at(2), conn="c1", peer="10.0.0.7:5000", source="tap"),
        ev.ConnectionClosed(**at(3), conn="c1", code=close_code, closed_by="client", source="tap"),
    ]
    return [
        ev.TargetAdded(**at(1), target=node, kind=NODE_KIND),
        *(to_fleet(event, node, event.mono) for event in own),
    ]


async def test_the_table_has_a_node_column_and_one_id_on_two_nodes_is_two_rows() -> None:
    feed = ReducerFeed()
    feed.apply(*_node_events("node-a", 1000), *_node_events("node-b", 1006))
    app = WsmonApp(feed)
    async with app.run_test(size=(180, 50)) as pilot:
        await settle(app, pilot)
        table = app.query_one(ConnectionsTable)
        assert sorted(table.row_ids) == ["node-a/c1", "node-b/c1"]
        lines = [line.strip("│ ") for line in widget_text(table).splitlines()]  # without the border
        header = next(line for line in lines if line.startswith("id ") and "peer" in line)
        assert header.endswith("closed by node")
        rows = {line.split()[-1]: line for line in lines if line.endswith(("node-a", "node-b"))}
        assert set(rows) == {"node-a", "node-b"}
        assert "1000 Normal Closure" in rows["node-a"] and "1006 Abnormal Closure" in rows["node-b"]
        # The id column shows the node's own id; the node says where it is.
        assert all(row.startswith("c1 ") for row in rows.values())
        # Peers are prefixed in State (a node's rows match only its witnesses), shown as its node saw them.
        assert all(row.split()[1] == "10.0.0.7:5000" for row in rows.values())
        app.query_one(ConnectionsTable).filter_text = "peer:10.0.0.7 id:c1 code:1006"
        await settle(app, pilot)
        assert app.query_one(ConnectionsTable).row_ids == ["node-b/c1"]
    state = feed.state
    assert {conn.id: conn.node for conn in state.connections.values()} == {
        "node-a/c1": "node-a",
        "node-b/c1": "node-b",
    }
