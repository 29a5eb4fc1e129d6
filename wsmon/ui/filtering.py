"""The `/` filter's language, pure: which connections a query keeps.

A query is terms separated by spaces, all of which must match (AND), case-insensitive:

- ``code:1006`` the close code; ``state:closed`` the state; ``by:neither`` who closed;
  ``peer:10.0.`` a prefix of the peer address; ``id:c-4`` a prefix of the connection id (or of the
  server log's id for it); ``reason:bye`` a piece of the close reason.
- a plain word matches a whole token of the id, the server log's id, the state, the close code with
  its name ("1006 Abnormal Closure") or the close reason. Whole tokens, so ``1006`` finds the 1006
  closes and not the peer on port 41006; the peer is searched only with ``peer:``.

A term whose field is not one of these is a plain word (an id may hold a colon).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from wsmon.core.closecodes import close_code_label
from wsmon.core.state import Connection

FIELDS = frozenset({"code", "state", "peer", "id", "reason", "by"})
_TOKEN_SPLIT = re.compile(r"[^\w.]+")


class Term(NamedTuple):
    field: str  # one of FIELDS, or "" for a plain word
    value: str  # lower-case


def parse_query(text: str) -> tuple[Term, ...]:
    terms: list[Term] = []
    for word in text.lower().split():
        field, colon, value = word.partition(":")
        if colon and field in FIELDS and value:
            terms.append(Term(field, value))
        else:
            terms.append(Term("", word))
    return tuple(terms)


def tokens(text: str) -> set[str]:
    """The text whole, and its pieces between spaces and punctuation (dots kept: '1.2' is one number)."""
    lowered = text.lower()
    pieces = {piece.strip(".") for piece in _TOKEN_SPLIT.split(lowered)}
    return {lowered, *(piece for piece in pieces if piece)}


def _words(conn: Connection) -> set[str]:
    words = tokens(conn.id) | tokens(conn.state)
    if conn.server_conn:
        words |= tokens(conn.server_conn)
    if conn.close_code is not None:
        words |= tokens(close_code_label(conn.close_code))
    if conn.close_reason:
        words |= tokens(conn.close_reason)
    return words


def _field_matches(conn: Connection, term: Term) -> bool:
    value = term.value
    match term.field:
        case "code":
            return conn.close_code is not None and str(conn.close_code) == value
        case "state":
            return conn.state.lower() == value
        case "peer":
            return conn.node_peer.lower().startswith(value)
        case "id":
            return conn.node_id.lower().startswith(value) or (
                bool(conn.server_conn) and conn.server_conn.lower().startswith(value)
            )
        case "reason":
            return value in conn.close_reason.lower()
        case "by":
            return conn.closed_by.lower() == value
        case _:
            return False  # parse_query turns an unknown field into a plain word


def matches(conn: Connection, query: tuple[Term, ...]) -> bool:
    """True when every term of the query matches the connection (an empty query keeps everything)."""
    words: set[str] | None = None  # built once, and only for a query with plain words
    for term in query:
        if term.field:
            if not _field_matches(conn, term):
                return False
            continue
        if words is None:
            words = _words(conn)
        if term.value not in words:
            return False
    return True
