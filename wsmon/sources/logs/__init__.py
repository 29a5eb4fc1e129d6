"""A server's log as a source of events: following it, recognising its lines, replaying a saved one.

- ``source``      the live sources: a file followed like ``tail -F``, or stdin
- ``folding``     bytes into lines, and stack traces folded into the error line above them
- ``parser``      ``LogParser``: one line (or folded block) in, events out — the recognisers
- ``text``        what free text says: levels, close codes, connection ids, crashes (regexes)
- ``memos``       what a message or a logger's keys say, worked out once and remembered (bounded)
- ``scan``        a text line's words in one pass: cues, level, gate words, secret words (remembered)
- ``quickre``     patterns compiled to skip, in C, the positions where no match can start
- ``lines``       a raw line decoded: JSON, key=value, plain text, a crash's output
- ``fields``      the connection, message id, close code, closer, peer and latency of a line
- ``vocabulary``  the words and field names real servers log with
- ``rules``       custom ``[[log.rules]]`` from wsmon.toml, tried before the recognisers
- ``timestamps``  the time a line says it was written, for replaying a saved log on its own clock
- ``replay``      a saved log (or several, merged by time) as a stream of events
- ``explain``     ``wsmon logs explain``: what each line was recognised as, and why

Names with a leading underscore are the package's own: shared between its modules, not used outside.
"""
