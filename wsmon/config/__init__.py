"""Configuration, one schema: flags, then environment (and a .env in the working directory), then
wsmon.toml in the working directory, then wsmon.toml in the user config directory. The first that
sets a setting wins.

- ``settings``: where values come from (files, .env, environment) and the limits;
- ``options``: every setting of `attach`/`check`/`run` (and ``THEME``, which `demo` and `replay` share),
  defined once (its flag, variable, TOML key,
  help and parser), and the click options made from them;
- ``values`` and ``specs``: the parsers, to typed values (``TapSpec``, ``FeedSpec``, header pairs…);
- ``resolve``: the precedence, and [[log.rules]];
- ``sections``: the sections read whole as msgspec Structs, [delivery] and [baseline].

Every bad value is a ConfigError whose message is one line naming the key, the file and what was
expected.
"""

from wsmon.config.options import SETTINGS, THEME, AttachOptions, click_options
from wsmon.config.resolve import log_rules, resolve_options, untrusted_reason
from wsmon.config.sections import baseline_tolerances
from wsmon.config.settings import ConfigError, Settings, load_settings, read_dotenv
from wsmon.config.specs import TapSpec, parse_tap_spec

__all__ = [
    "SETTINGS",
    "THEME",
    "AttachOptions",
    "ConfigError",
    "Settings",
    "TapSpec",
    "baseline_tolerances",
    "click_options",
    "load_settings",
    "log_rules",
    "parse_tap_spec",
    "read_dotenv",
    "resolve_options",
    "untrusted_reason",
]
