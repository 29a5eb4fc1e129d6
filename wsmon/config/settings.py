"""Where settings come from: the environment (and a .env in the working directory, read once, by
python-dotenv's parser), wsmon.toml in the working directory, then wsmon.toml in the user config
directory; and the limits, merged figure by figure from those files and --limit.

Every bad value is a ConfigError whose message is one line naming the key, the file and what was
expected.
"""

from __future__ import annotations

import io
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv.parser import parse_stream

from wsmon.core.limits import DEFAULT_LIMITS, Limit, LimitError, with_overrides
from wsmon.core.redact import MASK, redact_text

CONFIG_NAME = "wsmon.toml"


class ConfigError(ValueError):
    pass


def user_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "wsmon"


def config_files(cwd: Path | None = None) -> list[Path]:
    """Existing config files, highest precedence first."""
    cwd = cwd or Path.cwd()
    candidates = [cwd / CONFIG_NAME, user_config_dir() / CONFIG_NAME]
    return [p for p in candidates if p.is_file()]


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 text (byte {exc.start})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def read_dotenv(path: Path) -> dict[str, str]:
    """The .env's KEY=VALUE lines, as python-dotenv reads them: '#' comments (inline ones too, outside
    quotes), optional 'export ', quotes and escapes. No interpolation: a '$' is kept as written."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    text = path.read_text(encoding="utf-8", errors="replace")
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        got = binding.original.string.strip()
        if binding.error or (binding.key is not None and binding.value is None):
            raise ConfigError(f"{path}:{line}: expected KEY=VALUE, got {_shown_line(got)!r}")
        if binding.key is not None and binding.value is not None:
            values[binding.key] = binding.value
    return values


def _shown_line(line: str) -> str:
    """A bad .env line as an error may echo it: a line without '=' ("PASSWORD hunter2") is likely a
    name and its secret value, so only its first word is shown; any other secrets masked."""
    name, space, _rest = line.partition(" ")
    if "=" not in line and space:
        return f"{redact_text(name)} {MASK}"
    return redact_text(line)


@dataclass
class Settings:
    limits: tuple[Limit, ...] = DEFAULT_LIMITS
    files: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    tables: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    # Variables that came from the .env file rather than the process environment, and that file.
    dotenv_keys: frozenset[str] = frozenset()
    dotenv_path: Path | None = None

    def env_where(self, key: str) -> str:
        """Where an environment value came from, for error messages: the .env file or the environment."""
        if key in self.dotenv_keys and self.dotenv_path is not None:
            return f"{self.dotenv_path} {key}"
        return f"environment {key}"

    def lookup(self, section: str, key: str) -> tuple[Any, str] | None:
        """(value, where) from the highest-precedence config file that sets [section].key."""
        for path, data in self.tables:
            table = data.get(section)
            if isinstance(table, dict) and key in table:
                return table[key], f"{path} [{section}].{key}"
        return None


def parse_limit_flags(flags: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for flag in flags:
        key, sep, value = flag.partition("=")
        if not sep:
            raise ConfigError(f"--limit {flag}: expected KEY=VALUE, e.g. --limit rss_mib=256")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--limit {flag}: expected a number after '=', got {value!r}") from None
    return out


def load_settings(limit_flags: Sequence[str] = (), cwd: Path | None = None) -> Settings:
    cwd = cwd or Path.cwd()
    dotenv_path = cwd / ".env"
    dotenv = read_dotenv(dotenv_path)
    # An empty variable in the environment counts as unset, so it does not hide the .env value.
    process_env = {key: value for key, value in os.environ.items() if value}
    env = {**dotenv, **process_env}
    files = config_files(cwd)
    tables = [(path, load_toml(path)) for path in files]
    merged: dict[str, Any] = {}
    # Lowest precedence first, so higher ones overwrite.
    for path, data in reversed(tables):
        limits = data.get("limits", {})
        if not isinstance(limits, Mapping):
            raise ConfigError(f"{path} [limits]: expected a table of figure = number, got {limits!r}")
        try:
            with_overrides(limits, where=f"{path} [limits]")
        except LimitError as exc:
            raise ConfigError(str(exc)) from None
        merged.update(limits)
    flags = parse_limit_flags(limit_flags)
    try:
        with_overrides(flags, where="--limit")
    except LimitError as exc:
        raise ConfigError(str(exc)) from None
    merged.update(flags)
    return Settings(
        limits=with_overrides(merged),
        files=files,
        env=env,
        tables=tables,
        dotenv_keys=frozenset(dotenv.keys() - process_env.keys()),
        dotenv_path=dotenv_path if dotenv else None,
    )
