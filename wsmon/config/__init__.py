"""Configuration, one schema: flags, then environment (and a .env in the working directory), then
wsmon.toml in the working directory, then wsmon.toml in the user config directory. The first that
sets a setting wins.

- ``settings``: where values come from (files, .env, environment) and the limits;
- ``options``: every setting of `attach`/`check`/`run`, defined once (its flag, variable, TOML key,
  help and parser), and the click options made from them;
- ``values`` and ``specs``: the parsers, to typed values (``TapSpec``, ``FeedSpec``, header pairs…);
- ``resolve``: the precedence, and the sections read whole ([delivery], [[log.rules]]).

Every bad value is a ConfigError whose message is one line naming the key, the file and what was
expected.
"""

from wsmon.config.options import SETTINGS, AttachOptions, Option, click_options
from wsmon.config.resolve import check_config_tables, log_rules, resolve_options, untrusted_reason
from wsmon.config.settings import (
    CONFIG_NAME,
    ConfigError,
    Settings,
    config_files,
    load_settings,
    load_toml,
    parse_limit_flags,
    read_dotenv,
    user_config_dir,
)
from wsmon.config.specs import TapSpec, parse_tap_spec

__all__ = [
    "CONFIG_NAME",
    "SETTINGS",
    "AttachOptions",
    "ConfigError",
    "Option",
    "Settings",
    "TapSpec",
    "check_config_tables",
    "click_options",
    "config_files",
    "load_settings",
    "load_toml",
    "log_rules",
    "parse_limit_flags",
    "parse_tap_spec",
    "read_dotenv",
    "resolve_options",
    "untrusted_reason",
    "user_config_dir",
]
