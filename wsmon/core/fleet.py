"""The node dimension of a fleet (docs/design.md, "The node dimension"): what the publisher
(outputs/publish.py) and the fleet's reader (sources/fleet.py) agree on — key names, the entry's
layout — and how a node's event becomes the fleet's: its connection ids, targets, sources and message
ids prefixed ``NODE/``, so two nodes never collide and every row, target and log line says its node.

Pure: no I/O. ``node_of_event`` reads the node back out, for the report's per-node figures
(core/fleetreport.py).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from wsmon.core import events as ev

KEY_PREFIX = "wsmon:fleet:"
REGISTRY = KEY_PREFIX + "nodes"  # the set of node names: how `wsmon fleet` finds their streams
FORMAT = b"1"  # the stream entry's layout; a reader skips (and says so) any other
NODE_KIND = "node"  # the TargetAdded kind of a node: its UP/DOWN is its heartbeat
SEPARATOR = "/"
_NODE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
# The fields that name something of the node's own: prefixed so nodes never collide.
LOST_EVENTS = "lost_events"  # the LogLine field of the events a node lost (its full outage buffer)
LOST_ENTRIES = "lost_entries"  # ... of the entries trimmed from its stream before the fleet read them
# Peers too: the reducer matches a server log's row to a tap's or probe's by the address each saw, and
# two machines can see the same 127.0.0.1:PORT; prefixed, a node's rows match only its own.
_PREFIXED = ("conn", "target", "source", "ref", "message_id", "peer", "local")
_TARGET_EVENTS = (ev.TargetAdded, ev.TargetUp, ev.TargetDown, ev.Hint)


def stream_key(node: str) -> str:
    return KEY_PREFIX + "stream:" + node


def check_node_name(node: str) -> str:
    """The node's name as given, or ValueError: it prefixes connection ids as ``NODE/ID``."""
    if not _NODE_NAME.fullmatch(node):
        raise ValueError(f"node name {node!r}: use 1-100 letters, digits, '.', '_', ':' or '-'")
    return node


def _prefixed_fields(cls: type[ev.Event]) -> tuple[str, ...]:
    return tuple(name for name in _PREFIXED if name in cls.__struct_fields__)


_FIELDS: dict[type[ev.Event], tuple[str, ...]] = {cls: _prefixed_fields(cls) for cls in ev.EVENT_TYPES}


def to_fleet(event: ev.Event, node: str, mono: float) -> ev.Event:
    """A node's event as the fleet's: names prefixed ``NODE/``, ``mono`` on the fleet's clock.

    The node's own alerts become log lines: the fleet judges its combined figures itself, and a node's
    alert must not raise or clear the fleet's.
    """
    prefix = node + SEPARATOR
    if isinstance(event, ev.AlertRaised):
        text = f"{node}: {event.level} {event.figure} {event.value:g} (limit {event.limit:g}) {event.message}"
        return ev.LogLine(wall=event.wall, mono=mono, level="warn", text=text.rstrip(), source=node)
    if isinstance(event, ev.AlertCleared):
        text = f"{node}: cleared {event.figure} {event.value:g}"
        return ev.LogLine(wall=event.wall, mono=mono, level="info", text=text, source=node)
    changes: dict[str, Any] = {"mono": mono}
    for name in _FIELDS[type(event)]:
        value = getattr(event, name)
        if value:
            changes[name] = prefix + value
    if isinstance(event, ev.TargetAdded) and event.covers:
        changes["covers"] = [prefix + name for name in event.covers]
    elif isinstance(event, ev.Marker):
        changes["text"] = f"{node}: {event.text}"
    return msgspec.structs.replace(event, **changes)


def node_prefix(name: str) -> str:
    """The ``NODE`` of ``NODE/ID``; "" for a name without one."""
    head, sep, _ = name.partition(SEPARATOR)
    return head if sep else ""


def node_of_event(event: ev.Event) -> str:
    """The node an event of a fleet recording came from, or a name that is no node (the caller keeps
    only known nodes): a node's own target events carry its bare name; its gap lines their source."""
    if isinstance(event, _TARGET_EVENTS) and SEPARATOR not in event.target:
        return event.target
    for name in _FIELDS[type(event)]:
        found = node_prefix(getattr(event, name))
        if found:
            return found
    if isinstance(event, ev.LogLine):
        return event.source
    if isinstance(event, ev.Marker):
        return event.text.partition(":")[0]
    return ""
