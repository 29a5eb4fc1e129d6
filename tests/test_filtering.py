"""The `/` filter's language (wsmon.ui.filtering): fields, whole-token words, AND — without the UI."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wsmon.core.state import Connection, ConnState
from wsmon.ui.filtering import Term, matches, parse_query, tokens

CLOSED_1006 = Connection(
    id="c-7",
    peer="10.0.3.4:41006",
    state=ConnState.CLOSED,
    close_code=1006,
    close_reason="",
    closed_by="neither",
    server_conn="srv-12",
)
OPEN_ON_PORT_41006 = Connection(id="c-8", peer="10.0.3.5:41006", state=ConnState.OPEN)
CLOSED_BYE = Connection(
    id="c-9",
    peer="192.168.1.9:50000",
    state=ConnState.CLOSED,
    close_code=4000,
    close_reason="bye now",
    closed_by="client",
)
ALL = (CLOSED_1006, OPEN_ON_PORT_41006, CLOSED_BYE)


def kept(text: str) -> list[str]:
    query = parse_query(text)
    return [conn.id for conn in ALL if matches(conn, query)]


def test_a_plain_code_matches_the_close_code_not_a_port_that_contains_it() -> None:
    assert kept("1006") == ["c-7"]
    assert kept("41006") == []  # the peer is searched only with peer:
    assert kept("abnormal") == ["c-7"]  # a word of the code's name


def test_fields_match_code_state_peer_prefix_id_reason_and_closer() -> None:
    assert kept("code:1006") == ["c-7"]
    assert kept("state:closed") == ["c-7", "c-9"]
    assert kept("state:OPEN") == ["c-8"]
    assert kept("peer:10.0.") == ["c-7", "c-8"]
    assert kept("peer:10.0.3.5") == ["c-8"]
    assert kept("peer:0.3") == []  # a prefix, not a substring
    assert kept("id:c-") == ["c-7", "c-8", "c-9"]
    assert kept("id:srv") == ["c-7"]  # the server log's id of the connection finds it too
    assert kept("reason:bye") == ["c-9"]
    assert kept("by:neither") == ["c-7"]


def test_terms_are_anded_and_case_does_not_matter() -> None:
    assert kept("code:1006 state:closed peer:10.0.") == ["c-7"]
    assert kept("state:closed peer:10.0.") == ["c-7"]
    assert kept("STATE:Closed BYE") == ["c-9"]
    assert kept("") == ["c-7", "c-8", "c-9"]


def test_words_are_whole_tokens_of_ids_reasons_and_states() -> None:
    assert kept("c-7") == ["c-7"]
    assert kept("c") == ["c-7", "c-8", "c-9"]  # a piece of "c-7"
    assert kept("srv-12") == ["c-7"]
    assert kept("bye") == ["c-9"] and kept("by") == []
    assert kept("closed") == ["c-7", "c-9"]


def test_an_unknown_field_is_a_plain_word() -> None:
    assert parse_query("colour:red code:1006 code:") == (
        Term("", "colour:red"),
        Term("code", "1006"),
        Term("", "code:"),
    )
    assert tokens("1006 Abnormal Closure") == {"1006 abnormal closure", "1006", "abnormal", "closure"}


CODES = st.sampled_from([1000, 1001, 1005, 1006, 1011, 4000, None])
PORTS = st.integers(min_value=1, max_value=65535)


@st.composite
def connections(draw: st.DrawFn) -> Connection:
    code = draw(CODES)
    return Connection(
        id="conn-" + draw(st.text(alphabet="abcdef", min_size=1, max_size=6)),
        peer=f"10.{draw(st.integers(0, 255))}.0.1:{draw(PORTS)}",
        state=ConnState.OPEN if code is None else ConnState.CLOSED,
        close_code=code,
    )


@given(connections(), st.sampled_from([1000, 1001, 1005, 1006, 1011, 4000]))
def test_a_code_typed_alone_matches_exactly_the_connections_closed_with_it(
    conn: Connection, code: int
) -> None:
    assert matches(conn, parse_query(str(code))) == (conn.close_code == code)
    assert matches(conn, parse_query(f"code:{code}")) == (conn.close_code == code)


@given(
    connections(),
    st.lists(st.sampled_from(["1006", "state:closed", "peer:10.1", "open", "conn", "x"]), max_size=4),
)
def test_a_query_is_the_and_of_its_terms_whatever_the_case(conn: Connection, words: list[str]) -> None:
    whole = matches(conn, parse_query(" ".join(words)))
    assert whole == all(matches(conn, parse_query(word)) for word in words)
    assert whole == matches(conn, parse_query(" ".join(words).upper()))


@given(connections())
def test_a_peer_prefix_always_matches_its_own_connection(conn: Connection) -> None:
    for end in range(1, len(conn.peer) + 1):
        assert matches(conn, parse_query(f"peer:{conn.peer[:end]}"))
