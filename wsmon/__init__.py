"""wsmon: a terminal dashboard for WebSocket servers, their Redis and PostgreSQL."""

__version__ = "0.1.0"
