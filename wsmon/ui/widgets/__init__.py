"""The dashboard's widgets, one a module."""

from wsmon.ui.widgets.close_codes import CloseCodesPanel
from wsmon.ui.widgets.connections_table import ConnectionsTable
from wsmon.ui.widgets.failures import FailuresPanel
from wsmon.ui.widgets.header_bar import HeaderBar
from wsmon.ui.widgets.hidden_note import HiddenNote
from wsmon.ui.widgets.http_panel import HttpPanel
from wsmon.ui.widgets.limits_strip import LimitsStrip
from wsmon.ui.widgets.log_panel import LogPanel
from wsmon.ui.widgets.postgres_panel import PostgresPanel
from wsmon.ui.widgets.redis_panel import RedisPanel
from wsmon.ui.widgets.replay_bar import ReplayBar
from wsmon.ui.widgets.resources import ResourcesPanel
from wsmon.ui.widgets.target_panel import TargetPanel
from wsmon.ui.widgets.text_panel import TextPanel
from wsmon.ui.widgets.trends import TrendsPanel

__all__ = [
    "CloseCodesPanel",
    "ConnectionsTable",
    "FailuresPanel",
    "HeaderBar",
    "HiddenNote",
    "HttpPanel",
    "LimitsStrip",
    "LogPanel",
    "PostgresPanel",
    "RedisPanel",
    "ReplayBar",
    "ResourcesPanel",
    "TargetPanel",
    "TextPanel",
    "TrendsPanel",
]
