"""The shared document model (wsmon.render.document): one walker, two styles.

A small document exercises every block in both formats, byte for byte; then the table aligner with
cells beyond ASCII, and Markdown's escaping of ``|``.
"""

from __future__ import annotations

from wsmon.render.document import (
    Callout,
    Code,
    Document,
    Fact,
    Items,
    Lines,
    Paragraph,
    Section,
    Subsection,
    Table,
    align,
    escape_markdown,
    markdown_table,
    to_markdown,
    to_text,
)


def sample() -> Document:
    return Document(
        title="wsmon report: BREACH",
        byline=["source run.wsmon", "started 2025-06-15T15:06:40.000Z"],
        preface=[Callout("warning", ["2 batches unreadable"]), Callout("note", ["no client traffic"])],
        sections=[
            Section("Tests", blocks=[Lines(["FAIL — 1 failed", "1 tests: 1 failed"]), _failed_test()]),
            Section(
                "Limits",
                gloss="judged on the p95",
                blocks=[Table(("Figure", "Verdict"), [["connect", "ok"]])],
            ),
            Section(
                "Delivery",
                summary="3 delivered, 1 failed",
                blocks=[
                    Table(("Reason", "Count"), [["timeout", "1"]]),
                    Table(("At", "Reason"), [["12:00", "timeout"]], caption="last failures"),
                ],
            ),
            Section("Connections", summary="2 opened", blocks=[Fact("probes: p95 2 ms")]),
            Section(
                "Alerts",
                summary="1 raised",
                blocks=[
                    Items(["BREACH delivery"]),
                    Fact("server (pid 1) code 1", label="Server exit"),
                    Code(["boom"]),
                ],
            ),
            Section("Markers", blocks=[Items([("12:00", "load start")])]),
            Section(blocks=[Fact("Log lines: error 1")]),
        ],
    )


def _failed_test() -> Subsection:
    return Subsection("FAILED test_x", [Paragraph("ran 1.00 s; while it ran:"), Items(["closes: 1× 1006"])])


def test_a_document_in_plain_text() -> None:
    assert to_text(sample()) == (
        "wsmon report: BREACH\n"
        "source run.wsmon\n"
        "started 2025-06-15T15:06:40.000Z\n"
        "WARNING: 2 batches unreadable\n"
        "Note: no client traffic\n"
        "\n"
        "Tests\n"
        "  FAIL — 1 failed\n"
        "  1 tests: 1 failed\n"
        "\n"
        "  FAILED test_x\n"
        "    ran 1.00 s; while it ran:\n"
        "    closes: 1× 1006\n"
        "\n"
        "Limits (judged on the p95)\n"
        "  Figure   Verdict\n"
        "  connect  ok\n"
        "\n"
        "Delivery: 3 delivered, 1 failed\n"
        "  Reason   Count\n"
        "  timeout  1\n"
        "  last failures:\n"
        "    At     Reason\n"
        "    12:00  timeout\n"
        "\n"
        "Connections: 2 opened\n"
        "probes: p95 2 ms\n"
        "\n"
        "Alerts: 1 raised\n"
        "  BREACH delivery\n"
        "Server exit: server (pid 1) code 1\n"
        "    boom\n"
        "\n"
        "Markers\n"
        "  12:00  load start\n"
        "\n"
        "Log lines: error 1\n"
    )


def test_the_same_document_in_markdown() -> None:
    assert to_markdown(sample()) == (
        "## wsmon report: BREACH\n"
        "\n"
        "source run.wsmon  \n"
        "started 2025-06-15T15:06:40.000Z  \n"
        "\n"
        "> **Warning:** 2 batches unreadable\n"
        "\n"
        "> no client traffic\n"
        "\n"
        "### Tests\n"
        "\n"
        "FAIL — 1 failed  \n"
        "1 tests: 1 failed  \n"
        "\n"
        "#### FAILED test_x\n"
        "\n"
        "ran 1.00 s; while it ran:\n"
        "\n"
        "- closes: 1× 1006\n"
        "\n"
        "### Limits\n"
        "\n"
        "| Figure | Verdict |\n"
        "|---|---|\n"
        "| connect | ok |\n"
        "\n"
        "### Delivery\n"
        "\n"
        "3 delivered, 1 failed\n"
        "\n"
        "| Reason | Count |\n"
        "|---|---|\n"
        "| timeout | 1 |\n"
        "\n"
        "| At | Reason |\n"
        "|---|---|\n"
        "| 12:00 | timeout |\n"
        "\n"
        "### Connections\n"
        "\n"
        "2 opened\n"
        "\n"
        "probes: p95 2 ms\n"
        "\n"
        "### Alerts\n"
        "\n"
        "1 raised\n"
        "\n"
        "- BREACH delivery\n"
        "\n"
        "**Server exit**: server (pid 1) code 1\n"
        "\n"
        "```\n"
        "boom\n"
        "```\n"
        "\n"
        "### Markers\n"
        "\n"
        "- 12:00 load start\n"
        "\n"
        "Log lines: error 1\n"
    )


def test_an_empty_table_prints_nothing_but_keeps_its_place_in_markdown() -> None:
    document = Document(
        "title", sections=[Section("Close codes", summary="0 closes", blocks=[Table(("Code",), [])])]
    )
    assert to_text(document) == "title\n\nClose codes: 0 closes\n"
    assert to_markdown(document) == "## title\n\n### Close codes\n\n0 closes\n\n"


def test_columns_align_on_characters_beyond_ascii() -> None:
    lines = align([["Change", "Verdict"], ["−1.95 pt", "regression"], ["±0 msg/s", "same"], ["é", "—"]], "  ")
    assert lines == [
        "  Change    Verdict",
        "  −1.95 pt  regression",
        "  ±0 msg/s  same",
        "  é         —",
    ]
    words = ["Verdict", "regression", "same", "—"]
    assert len({line.index(word) for line, word in zip(lines, words, strict=True)}) == 1


def test_wide_cells_are_padded_by_characters_not_terminal_columns() -> None:
    # Width is counted in code points, as it always was: a CJK cell takes two terminal columns a
    # character, so the column after it starts later on screen, never earlier or cut.
    lines = align([["name", "state"], ["漢字", "up"], ["redis", "down"]])
    assert lines == ["name   state", "漢字     up", "redis  down"]


def test_trailing_blanks_are_trimmed_and_an_empty_table_is_nothing() -> None:
    assert align([["a", ""], ["bb", ""]]) == ["a", "bb"]
    assert align([]) == []


def test_markdown_escapes_pipes_in_cells_lists_lines_and_quotes() -> None:
    pipe = "a | b"
    document = Document(
        "head | kept",
        byline=["command: sh -c 'x | y'"],
        preface=[Callout("warning", [pipe])],
        sections=[
            Section(
                "S",
                summary="sum | kept",
                blocks=[
                    Table(("H",), [[pipe], ["two\nlines"]]),
                    Items([pipe, ("12:00", pipe)]),
                    Lines([pipe]),
                    Paragraph(pipe),
                    Fact("fact | kept"),
                    Code(["code | kept"]),
                    Subsection(pipe, [Paragraph("x")]),
                ],
            )
        ],
    )
    markdown = to_markdown(document)
    assert "| a \\| b |" in markdown and "| two lines |" in markdown
    for escaped in ("- a \\| b", "- 12:00 a \\| b", "a \\| b  ", "> **Warning:** a \\| b", "#### a \\| b"):
        assert escaped in markdown.splitlines()
    # The title, byline, summaries, facts and code are the report's own words: written as they are.
    for kept in ("## head | kept", "command: sh -c 'x | y'  ", "sum | kept", "fact | kept", "code | kept"):
        assert kept in markdown.splitlines()
    assert "a | b" in to_text(document)  # plain text escapes nothing


def test_markdown_table_and_escape() -> None:
    assert escape_markdown("x|y\nz") == "x\\|y z"
    assert markdown_table(("A", "B"), [["1", "|"]]) == ["| A | B |", "|---|---|", "| 1 | \\| |"]
