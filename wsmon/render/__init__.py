"""What wsmon prints: the report, the baseline comparison and the target tables, as plain text,
Markdown, JSON or JUnit XML. Pure, like the core it reads (no I/O, no Textual, no network): a renderer
takes a model the core built and returns a string.

- ``document``: the one section model of a printed document, and the walker that writes it as plain
  text or Markdown (one table aligner, one Markdown escape);
- ``report``: the report (``render(report, fmt)``), its verdict line;
- ``baseline``: the baseline comparison, alone or after the report;
- ``junit``: JUnit XML of both;
- ``cells``: a figure as table cells, shared by the tables and JUnit;
- ``testwindows``: a failed test's window in words;
- ``targets``: ``wsmon check``'s table and JSON, and ``wsmon run``'s readiness table.
"""
