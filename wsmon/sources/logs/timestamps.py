"""The time a log line says it was written: pure, synchronous, apart from the recogniser's hot path.

A recorded log is replayed on its own clock (``wsmon report server.log``), so each line's timestamp is
read where real loggers put it:

- JSON: ``time`` (pino: epoch ms; bunyan, slog: ISO 8601), ``timestamp`` (winston, structlog: ISO or
  epoch seconds), ``ts`` (zap: epoch seconds), ``@timestamp`` (ECS, logstash), ``asctime`` (Python
  logging's JSON formatters), ``datetime``, ``date``;
- text: an ISO 8601 date-time near the start (Python logging's ``2026-12-02 03:00:00,123``, structlog's
  console renderer, ``time=…`` in logfmt), Go's ``2026/12/02 03:00:00``, syslog's ``Dec  2 03:00:00``
  (with or without a ``<PRI>``), the common log format's ``[02/Dec/2026:03:00:00 +0000]``, and an epoch
  number after ``ts=``/``time=``.

Numbers are epoch seconds, milliseconds, microseconds or nanoseconds, told apart by their size. A
date-time without an offset is local time, as the logger wrote it. Syslog stamps have no year: the
first takes the year that puts it at or before the file's last change (``reference``), and a stamp that
jumps back by more than half a year is the new year's.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import msgspec

_MONTHS = {
    m: n
    for n, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
_ISO = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)(?P<zone>Z|[+-]\d{2}:?\d{2})?"
)
_SLASHED = re.compile(r"\b(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})[ T](?P<time>\d{2}:\d{2}:\d{2}(?:\.\d+)?)")
_SYSLOG = re.compile(
    r"^(?:<\d{1,3}>)?(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<d>\d{1,2}) (?P<H>\d{2}):(?P<M>\d{2}):(?P<S>\d{2})"
    r"(?P<frac>\.\d+)?\s"
)
_CLF = re.compile(
    r"\[(?P<d>\d{2})/(?P<mon>[A-Z][a-z]{2})/(?P<y>\d{4}):(?P<time>\d{2}:\d{2}:\d{2}) (?P<zone>[+-]\d{4})\]"
)
_EPOCH_KEY = re.compile(r"\b(?:ts|time|timestamp|t)=\"?(?P<n>\d{9,19}(?:\.\d+)?)\b")
SEARCHED_CHARS = 120  # a text line's timestamp is near its start; the rest of the line is not searched
HALF_YEAR_S = 183 * 86_400


class _Stamps(msgspec.Struct):
    """The fields a JSON line's timestamp is found in, in this order; every other field is skipped."""

    time: Any = None
    timestamp: Any = None
    ts: Any = None
    at_timestamp: Any = msgspec.field(default=None, name="@timestamp")
    asctime: Any = None
    datetime: Any = None
    date: Any = None


_stamps_decoder = msgspec.json.Decoder(_Stamps)


def epoch_seconds(number: float) -> float | None:
    """Epoch seconds from seconds, milliseconds, microseconds or nanoseconds; None for a small number
    (an uptime, a counter) that cannot be a date after 2001."""
    if number >= 1e17:
        return number / 1e9
    if number >= 1e14:
        return number / 1e6
    if number >= 1e11:
        return number / 1e3
    if number >= 1e9:
        return float(number)
    return None


def iso_seconds(text: str) -> float | None:
    """Epoch seconds of an ISO 8601 date-time (``Z``, an offset, or none: local time), else None."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        try:  # "2026-12-02 03:00:00,123 " with spaces around: rarely, so only after the fast try
            return datetime.fromisoformat(text.strip()).timestamp()
        except ValueError:
            return None


class LineClock:
    """Reads one log's line timestamps. Holds the syslog year, so one instance a log file."""

    def __init__(self, reference: float | None = None) -> None:
        self.reference = time.time() if reference is None else reference
        self._syslog_year: int | None = None
        self._syslog_last = 0.0

    def stamp(self, line: str) -> float | None:
        """Epoch seconds the line says it was written at, or None when it says nothing."""
        head = line.lstrip()
        if head.startswith("{"):
            found = self._json_stamp(head.partition("\n")[0])
            if found is not None:
                return found
        return self._text_stamp(head[:SEARCHED_CHARS])

    def value(self, raw: Any) -> float | None:
        """A timestamp field's value: a number, a numeric string, or a date-time string."""
        if isinstance(raw, bool) or raw is None:
            return None
        if isinstance(raw, int | float):
            return epoch_seconds(float(raw))
        if isinstance(raw, str) and raw:
            if raw[0].isdigit() and raw.replace(".", "", 1).isdigit():
                return epoch_seconds(float(raw))
            return iso_seconds(raw) or self._text_stamp(raw)
        return None

    def _json_stamp(self, head: str) -> float | None:
        try:
            stamps = _stamps_decoder.decode(head)
        except (msgspec.DecodeError, RecursionError):
            return None
        for raw in (
            stamps.time,
            stamps.timestamp,
            stamps.ts,
            stamps.at_timestamp,
            stamps.asctime,
            stamps.datetime,
            stamps.date,
        ):
            if raw is not None:
                found = self.value(raw)
                if found is not None:
                    return found
        return None

    def _text_stamp(self, text: str) -> float | None:
        match = _ISO.search(text)
        if match is not None:
            zone = match.group("zone") or ""
            return iso_seconds(f"{match.group('date')}T{match.group('time').replace(',', '.')}{zone}")
        match = _SYSLOG.match(text)
        if match is not None:
            return self._syslog(match)
        match = _SLASHED.search(text)
        if match is not None:
            return iso_seconds(f"{match['y']}-{match['m']}-{match['d']}T{match['time']}")
        match = _CLF.search(text)
        if match is not None and match["mon"].lower() in _MONTHS:
            month = _MONTHS[match["mon"].lower()]
            return iso_seconds(f"{match['y']}-{month:02d}-{match['d']}T{match['time']}{match['zone']}")
        match = _EPOCH_KEY.search(text)
        if match is not None:
            return epoch_seconds(float(match.group("n")))
        return None

    def _syslog(self, match: re.Match[str]) -> float | None:
        month = _MONTHS.get(match["mon"].lower())
        if month is None:
            return None
        clock = f"{match['H']}:{match['M']}:{match['S']}{match['frac'] or ''}"
        day = int(match["d"])
        if self._syslog_year is None:
            year = time.localtime(self.reference).tm_year
            first = iso_seconds(f"{year}-{month:02d}-{day:02d}T{clock}")
            if first is not None and first > self.reference + 86_400:
                year -= 1  # written last December, read in January
            self._syslog_year = year
        found = iso_seconds(f"{self._syslog_year}-{month:02d}-{day:02d}T{clock}")
        if found is not None and found < self._syslog_last - HALF_YEAR_S:  # Dec 31 → Jan 1
            self._syslog_year += 1
            found = iso_seconds(f"{self._syslog_year}-{month:02d}-{day:02d}T{clock}")
        if found is not None:
            self._syslog_last = found
        return found


__all__ = ["LineClock", "epoch_seconds", "iso_seconds"]
