"""Writes the corpus scenario through one real Python logger, in its default or common configuration.

Usage: emit_python.py structlog-json|structlog-kv|structlog-console|logging-text|logging-json
"""

from __future__ import annotations

import logging
import sys

STYLE = sys.argv[1]
CLOSED = "received 1006 (abnormal closure); then sent 1006 (abnormal closure)"


def structlog_scenario(renderer: object) -> None:
    import structlog

    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            renderer,
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
    )
    log = structlog.get_logger()
    log.info("server listening", port=3001)
    log.info("client connected", conn_id="c-1", peer="127.0.0.1:50000")
    log.info("message relayed", conn_id="c-1", message_id="m-1", latency_ms=3)
    try:
        raise ConnectionError(CLOSED)
    except ConnectionError:
        log.exception("failed to deliver message", conn_id="c-1", message_id="m-2")
    log.warning("unknown recipient", message_id="m-3", recipient="ghost")
    log.info("client disconnected", conn_id="c-1", code=1006, reason="")
    try:
        raise LookupError('relation "devices" does not exist')
    except LookupError:
        log.exception("query failed")
    log.info("connected to redis", url="redis://127.0.0.1:6379/0")


def logging_scenario(handler: logging.Handler) -> None:
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    log = logging.getLogger("router")
    log.info("server listening on port %d", 3001)
    log.info("client %s connected from %s", "c-1", "127.0.0.1:50000", extra={"connection_id": "c-1"})
    log.info("message %s delivered to client %s in %d ms", "m-1", "c-1", 3, extra={"message_id": "m-1"})
    try:
        raise ConnectionError(CLOSED)
    except ConnectionError:
        log.exception("could not send message %s to client %s", "m-2", "c-1", extra={"message_id": "m-2"})
    log.warning(
        "dropping message %s: recipient %s is not connected", "m-3", "ghost", extra={"message_id": "m-3"}
    )
    log.info("client %s disconnected (code %d)", "c-1", 1006, extra={"connection_id": "c-1", "code": 1006})
    try:
        raise LookupError('relation "devices" does not exist')
    except LookupError:
        log.exception("query failed")
    log.info("connected to redis at %s", "redis://127.0.0.1:6379/0")


if STYLE.startswith("structlog"):
    import structlog

    renderers = {
        "structlog-json": structlog.processors.JSONRenderer(),
        "structlog-kv": structlog.processors.KeyValueRenderer(key_order=["event"]),
        "structlog-console": structlog.dev.ConsoleRenderer(),
    }
    structlog_scenario(renderers[STYLE])
else:
    handler = logging.StreamHandler(sys.stdout)
    if STYLE == "logging-json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
    logging_scenario(handler)
