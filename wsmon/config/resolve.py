"""Resolving `attach`/`check`/`run` settings: for each setting the flag (None = not given), then the
environment (WSMON_URL, REDIS_URL, DATABASE_URL; a .env in the working directory counts), then its
section of wsmon.toml (working directory first, then the user config directory). Also the sections
read whole from the highest-precedence file that has them: [delivery] (wsmon.config.sections) and
[[log.rules]].
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wsmon.config import values as v
from wsmon.config.options import SECTIONS, SETTINGS, AttachOptions
from wsmon.config.sections import delivery_rules
from wsmon.config.settings import ConfigError, Settings
from wsmon.core.sanitize import shown_key
from wsmon.sources.logs.rules import Rule, RuleError, load_rules


def check_config_tables(settings: Settings) -> None:
    """A section of ours that is not a table, or a key in it that nothing reads, is a mistake (a typo
    would otherwise be silently ignored). Other sections belong to other commands and are left alone."""
    for path, data in settings.tables:
        for section in sorted(set(SECTIONS.values())):
            if section not in data:
                continue
            table = data[section]
            known = sorted(key for key, home in SECTIONS.items() if home == section)
            if not isinstance(table, dict):
                raise ConfigError(
                    f"{path} [{section}]: expected a table with keys {', '.join(known)}, got {table!r}"
                )
            for key in table:
                if key not in known:
                    raise ConfigError(
                        f"{path} [{section}].{shown_key(key)}: unknown key; "
                        f"expected one of {', '.join(known)}"
                    )


def resolve_options(flags: Mapping[str, Any], settings: Settings) -> AttachOptions:
    """Flags (keyed by setting name; None or empty = not given), then environment, then the config
    files. ``follow`` and ``trust_config`` are flags only."""
    check_config_tables(settings)
    options = AttachOptions(follow=flags.get("follow"))
    for setting in SETTINGS:
        key, option = setting.key, setting.option
        value: Any = flags.get(key)
        if isinstance(value, tuple):
            value = list(value)  # a repeatable flag, as click gives it: the same list TOML would
        where = setting.where
        if value is None or value == () or value == []:
            value, where = None, ""
            if option.env and settings.env.get(option.env):
                value, where = settings.env[option.env], settings.env_where(option.env)
            else:
                found = settings.lookup(option.section, key)
                if found is not None:
                    value, where = found
        if value is None:
            continue
        parsed = option.parse(value, where)
        if key == "headers":
            parsed = v.resolve_env_refs(parsed, settings, where)
        if key == "server":
            options.server_where = where
            _refuse_untrusted_command(settings, where, trusted=bool(flags.get("trust_config")))
        setattr(options, key, parsed)
    options.log_rules = log_rules(settings)
    options.delivery_rules, options.delivery_timeout = delivery_rules(settings)
    return options


def _refuse_untrusted_command(settings: Settings, where: str, *, trusted: bool) -> None:
    """A command from a wsmon.toml runs on a plain `wsmon attach`: like git with safe.directory, refuse
    one from a file another user owns or may write to (a shared or downloaded checkout), unless the
    user says it is trusted."""
    path = next((p for p, data in settings.tables if where.startswith(f"{p} [")), None)
    if path is None or trusted:
        return  # a flag: the user typed it
    reason = untrusted_reason(path)
    if reason:
        raise ConfigError(
            f"{where}: refusing to run a command from a file {reason}; check it, then fix it "
            f"(chown, chmod go-w) or pass --trust-config"
        )


def untrusted_reason(path: Path) -> str:
    """Why a config file may not give commands to run: '' when it is the user's own and only theirs."""
    try:
        info = path.stat()
    except OSError as exc:
        return f"that cannot be checked ({exc.strerror})"
    if info.st_uid != os.getuid():
        return f"owned by another user (uid {info.st_uid}, you are {os.getuid()})"
    writable = [who for who, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH)) if info.st_mode & bit]
    if writable:
        return f"writable by {' and '.join(writable)} (mode {stat.S_IMODE(info.st_mode):04o})"
    return ""


def log_rules(settings: Settings) -> list[Rule]:
    """[[log.rules]] from the highest-precedence config file that has any."""
    for path, data in settings.tables:
        if isinstance(data.get("log"), dict) and "rules" in data["log"]:
            try:
                return load_rules(data, str(path))
            except RuleError as exc:
                raise ConfigError(str(exc)) from None
    return []
