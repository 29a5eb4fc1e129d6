"""Writes a night of a device router's log through Python's real ``logging`` (and python-json-logger),
its clock stepped through logging's own API: a ``Filter`` sets each record's ``created``, which the
formatter turns into the line's timestamp as it does for a real one. Prints the night's tally as JSON.

Usage: night_logger.py STYLE OUT START STEP CONNECTIONS [SEED]
STYLE: json (python-json-logger, ISO ``timestamp``), text (``%(asctime)s``), syslog (``%b %d %H:%M:%S``).
"""

from __future__ import annotations

import json
import logging
import random
import sys
from collections import Counter


class SteppingClock(logging.Filter):
    """Each record is written ``step`` seconds (give or take a jitter) after the one before."""

    def __init__(self, start: float, step: float, rng: random.Random) -> None:
        super().__init__()
        self.now = start
        self.step = step
        self.rng = rng
        self.first: float | None = None
        self.last = start

    def filter(self, record: logging.LogRecord) -> bool:
        self.now += self.step * self.rng.uniform(0.5, 1.5)
        record.created = self.now
        record.msecs = (self.now - int(self.now)) * 1000
        self.first = self.now if self.first is None else self.first
        self.last = self.now
        return True


def main() -> None:
    style, out, start, step, connections = sys.argv[1:6]
    rng = random.Random(int(sys.argv[6]) if len(sys.argv) > 6 else 9)
    handler = logging.FileHandler(out, encoding="utf-8")
    if style == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s", timestamp=True))
    elif style == "syslog":
        handler.setFormatter(logging.Formatter("%(asctime)s host router[7]: %(message)s", "%b %d %H:%M:%S"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
    clock = SteppingClock(float(start), float(step), rng)
    log = logging.getLogger("router")
    log.addHandler(handler)
    log.addFilter(clock)
    log.setLevel(logging.INFO)
    log.propagate = False
    tally = night(log, int(connections), rng, f"{sys.argv[6] if len(sys.argv) > 6 else 9}")
    handler.close()
    tally.update(first=clock.first, last=clock.last)
    print(json.dumps(tally))


def night(log: logging.Logger, connections: int, rng: random.Random, instance: str) -> dict[str, object]:
    """Message ids are unique to the instance (clients make them); connection ids are not."""
    closes: Counter[int] = Counter()
    delivered = failed = 0
    log.info("server listening on port %d", 3001)
    for n in range(1, connections + 1):
        conn = f"c-{n}"
        log.info("client %s connected from 10.0.0.%d:%d", conn, n % 250, 40000 + n)
        for m in range(rng.randint(1, 4)):
            log.info(
                "message m-%s-%d-%d delivered to client %s in %d ms", instance, n, m, conn, rng.randint(1, 40)
            )
            delivered += 1
        if n % 7 == 0:
            log.warning("dropping message m-%s-%d-x: recipient ghost-%d is not connected", instance, n, n)
            failed += 1
        if n % 11 == 0:
            try:
                raise ConnectionError("received 1006 (abnormal closure); then sent 1006 (abnormal closure)")
            except ConnectionError:  # a traceback: lines without a timestamp of their own
                log.exception("could not send message m-%s-%d-t to client %s", instance, n, conn)
            failed += 1
        code = rng.choice([1000, 1000, 1001, 1006, 1005])
        log.info("client %s disconnected (code %d)", conn, code)
        closes[code] += 1
    return {
        "opened": connections,
        "closes": {str(k): v for k, v in closes.items()},
        "delivered": delivered,
        "failed": failed,
    }


if __name__ == "__main__":
    main()
