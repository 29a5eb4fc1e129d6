"""One model of a printed document, and the one walker that writes it as plain text or as Markdown.

A renderer builds a ``Document`` (a title, a byline, a preface, sections of blocks) and leaves the
layout to ``to_text`` and ``to_markdown``. Both run the same walk; the two ``_Style``s differ only in
how a heading, a block and a cell are written and in what separates blocks:

- plain text, for a CI log or a terminal: sections apart by one blank line, blocks in a section
  back to back, tables aligned in columns and indented under their heading;
- GitHub-flavoured Markdown, for a CI job summary: every block apart by one blank line, tables as
  pipe tables. Text from outside (cells, list items, paragraphs, quotes) has its ``|`` escaped; the
  title, the byline, a section's summary and a ``Fact`` are written as they are.

A block that renders to nothing still takes its place between the Markdown separators, so an empty
table leaves one more blank line there, as the report always printed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

INDENT = "  "


@dataclass(frozen=True)
class Table:
    headings: Sequence[str]
    rows: Sequence[Sequence[str]]
    caption: str = ""  # plain text only: a line above the table, which is then indented under it


@dataclass(frozen=True)
class Lines:
    """Short lines that belong together: one a line in both formats (hard line breaks in Markdown)."""

    lines: Sequence[str]


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Items:
    """A list. An entry may be a (lead, text) pair, e.g. a time and what happened then."""

    entries: Sequence[str | tuple[str, str]]


@dataclass(frozen=True)
class Fact:
    """A line of the report's own figures, written as it is and flush left; ``label: text`` with the
    label in bold in Markdown."""

    text: str
    label: str = ""


@dataclass(frozen=True)
class Code:
    """Lines quoted verbatim, e.g. a process's last output."""

    lines: Sequence[str]


@dataclass(frozen=True)
class Callout:
    kind: Literal["warning", "note"]
    lines: Sequence[str]


@dataclass(frozen=True)
class Subsection:
    title: str
    blocks: Sequence[Block]


Block = Table | Lines | Paragraph | Items | Fact | Code | Callout | Subsection


@dataclass(frozen=True)
class Section:
    title: str = ""  # untitled: its blocks alone
    gloss: str = ""  # plain text only: said in parentheses after the title
    summary: str = ""  # "Title: summary" in plain text; a paragraph under the heading in Markdown
    blocks: Sequence[Block] = ()


@dataclass(frozen=True)
class Document:
    title: str
    byline: Sequence[str] = ()
    preface: Sequence[Block] = ()  # before the first section, as close to the title as the byline
    sections: Sequence[Section] = ()


def align(rows: Iterable[Sequence[str]], indent: str = "") -> list[str]:
    """Rows as columns two spaces apart, each as wide as its widest cell (counted in characters)."""
    rows = list(rows)
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def escape_markdown(text: str) -> str:
    """Text that cannot break out of a Markdown table cell or list item."""
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(headings: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    out += ["| " + " | ".join(escape_markdown(cell) for cell in row) + " |" for row in rows]
    return out


class _Style(Protocol):
    gap: tuple[str, ...]  # what separates two blocks

    def head(self, document: Document) -> list[list[str]]: ...
    def section_head(self, section: Section) -> list[list[str]]: ...
    def block(self, block: Block, indent: str) -> list[str]: ...


class _Text:
    gap: tuple[str, ...] = ()

    def head(self, document: Document) -> list[list[str]]:
        return [[document.title, *document.byline]]

    def section_head(self, section: Section) -> list[list[str]]:
        if not section.title:
            return []
        gloss = f" ({section.gloss})" if section.gloss else ""
        summary = f": {section.summary}" if section.summary else ""
        return [[f"{section.title}{gloss}{summary}"]]

    def block(self, block: Block, indent: str) -> list[str]:
        match block:
            case Table(headings, rows, caption):
                if not rows:
                    return []
                if caption:
                    return [f"{indent}{caption}:", *align([headings, *rows], indent + INDENT)]
                return align([headings, *rows], indent)
            case Lines(lines):
                return [indent + line for line in lines]
            case Paragraph(text):
                return [indent + text]
            case Items(entries):
                return [indent + (f"{e[0]}  {e[1]}" if isinstance(e, tuple) else e) for e in entries]
            case Fact(text, label):
                return [f"{label}: {text}" if label else text]
            case Code(lines):
                return [indent + INDENT + line for line in lines]
            case Callout(kind, lines):
                prefix = "WARNING: " if kind == "warning" else "Note: "
                return [prefix + line for line in lines]
            case Subsection(title, blocks):
                out = ["", indent + title]
                for inner in blocks:
                    out += self.block(inner, indent + INDENT)
                return out


class _Markdown:
    gap: tuple[str, ...] = ("",)

    def head(self, document: Document) -> list[list[str]]:
        byline = [f"{line}  " for line in document.byline]  # a trailing double space breaks the line
        return [[f"## {document.title}"], *([byline] if byline else [])]

    def section_head(self, section: Section) -> list[list[str]]:
        heading = [[f"### {section.title}"]] if section.title else []
        return heading + ([[section.summary]] if section.summary else [])

    def block(self, block: Block, indent: str) -> list[str]:
        match block:
            case Table(headings, rows):
                return markdown_table(headings, rows) if rows else []
            case Lines(lines):
                return [f"{escape_markdown(line)}  " for line in lines]
            case Paragraph(text):
                return [escape_markdown(text)]
            case Items(entries):
                return [
                    f"- {e[0]} {escape_markdown(e[1])}" if isinstance(e, tuple) else f"- {escape_markdown(e)}"
                    for e in entries
                ]
            case Fact(text, label):
                return [f"**{label}**: {text}" if label else text]
            case Code(lines):
                return ["```", *lines, "```"]
            case Callout(kind, lines):
                prefix = "> **Warning:** " if kind == "warning" else "> "
                return [prefix + escape_markdown(line) for line in lines]
            case Subsection(title, blocks):
                chunks = [
                    [f"#### {escape_markdown(title)}"],
                    *(self.block(inner, indent) for inner in blocks),
                ]
                return _joined(chunks, self.gap)


def _joined(chunks: Iterable[list[str]], gap: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for number, chunk in enumerate(chunks):
        out += [*(gap if number else ()), *chunk]
    return out


def _walk(document: Document, style: _Style) -> str:
    head = [*style.head(document), *(style.block(block, INDENT) for block in document.preface)]
    lines = _joined(head, style.gap)
    for section in document.sections:
        chunks = [*style.section_head(section), *(style.block(block, INDENT) for block in section.blocks)]
        lines += ["", *_joined(chunks, style.gap)]
    return "\n".join(lines) + "\n"


def to_text(document: Document) -> str:
    return _walk(document, _Text())


def to_markdown(document: Document) -> str:
    return _walk(document, _Markdown())
