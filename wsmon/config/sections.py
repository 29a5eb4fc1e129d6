"""The wsmon.toml sections read whole, as msgspec Structs: [delivery] (how the tap pairs a message with its
acknowledgement) and [baseline] (the tolerances of `report --baseline`).

msgspec checks each table's keys, types and bounds (``forbid_unknown_fields``: a typo is an error). Its
error names the key by its path (`$.timeout_s`); the key's own parser (wsmon.config.values,
wsmon.core.baseline) then says what is wrong in the one line every other setting gives, so a bad value
reads the same in every section. A key msgspec accepts is one those parsers accept, and the reverse.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from typing import Annotated, Any, NoReturn, TypeVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

from wsmon.config import values as v
from wsmon.config.settings import ConfigError, Settings
from wsmon.core import baseline as baselines
from wsmon.core.sanitize import shown_key
from wsmon.sources.delivery import DeliveryRules

StructT = TypeVar("StructT", bound=msgspec.Struct)

# A string is a list of one, as v.strings reads it.
Strings = str | list[str] | UnsetType
Bound = Annotated[int, Meta(ge=1)] | UnsetType
# Finite: a tolerance of inf, or a wait of inf seconds, is a mistake.
Fraction = Annotated[float, Meta(ge=0, le=sys.float_info.max)]
DEFAULT_DELIVERY_TIMEOUT = 5.0


class DeliverySection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """[delivery] as written; a key left out keeps DeliveryRules' default."""

    id_paths: Strings = UNSET
    ack_paths: Strings = UNSET
    status_paths: Strings = UNSET
    reason_paths: Strings = UNSET
    pending_directions: Strings = UNSET
    ack_directions: Strings = UNSET
    failure_values: Strings = UNSET
    request_types: Strings = UNSET
    ack_types: Strings = UNSET
    value_max_depth: Bound = UNSET
    value_max_strings: Bound = UNSET
    value_max_bytes: Bound = UNSET
    value_min_chars: Bound = UNSET
    success_path: str | UnsetType = UNSET
    type_path: str | UnsetType = UNSET
    # A number, or a string holding one (as a flag's value would be).
    timeout_s: Annotated[float, Meta(gt=0, le=sys.float_info.max)] | str = DEFAULT_DELIVERY_TIMEOUT
    enabled: bool | UnsetType = UNSET
    match_values: bool | UnsetType = UNSET

    def rules(self, where: str) -> tuple[DeliveryRules, float]:
        given = {k: value for k, value in msgspec.structs.asdict(self).items() if value is not UNSET}
        timeout = v.positive(given.pop("timeout_s"), f"{where}.timeout_s")
        for key in ("pending_directions", "ack_directions"):
            if key in given and not set(_tuple(given[key])) <= {"in", "out"}:
                raise ConfigError(f'{where}.{key}: expected a list of "in" and "out"')
        for key in DELIVERY_LISTS:
            if key in given:
                given[key] = _tuple(given[key])
        for key in DELIVERY_SETS:
            if key in given:
                given[key] = frozenset(_tuple(given[key]))
        return DeliveryRules(**given), timeout


def _tuple(value: str | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


DELIVERY_LISTS = (
    "id_paths",
    "ack_paths",
    "status_paths",
    "reason_paths",
    "pending_directions",
    "ack_directions",
)
DELIVERY_SETS = ("failure_values", "request_types", "ack_types")
_path = v.string_of("a dotted JSON path")
# The parser that says what is wrong with a key's value, in the words of every other setting.
_DELIVERY_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    **dict.fromkeys((*DELIVERY_LISTS, *DELIVERY_SETS), v.strings),
    **dict.fromkeys(("value_max_depth", "value_max_strings", "value_max_bytes", "value_min_chars"), v.count),
    **dict.fromkeys(("success_path", "type_path"), _path),
    **dict.fromkeys(("enabled", "match_values"), v.boolean),
    "timeout_s": v.positive,
}


def delivery_rules(settings: Settings) -> tuple[DeliveryRules, float]:
    """[delivery] from the highest-precedence config file that has it."""
    for path, data in settings.tables:
        table = data.get("delivery")
        if table is None:
            continue
        where = f"{path} [delivery]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table")

        def refuse(key: str, problem: str, where: str = where, table: dict[str, Any] = table) -> NoReturn:
            at = f"{where}.{shown_key(key)}"
            if key not in _DELIVERY_PARSERS:
                raise ConfigError(
                    f"{at}: unknown key; expected one of {', '.join(sorted(_DELIVERY_PARSERS))}"
                )
            _DELIVERY_PARSERS[key](table[key], at)
            raise ConfigError(f"{at}: {problem}")  # the parser let it pass: still one line, never a traceback

        return _decode(table, DeliverySection, refuse).rules(where)
    return DeliveryRules(), DEFAULT_DELIVERY_TIMEOUT


class BaselineSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """[baseline]: the default tolerance, and one per figure ([baseline.tolerances])."""

    tolerance: Fraction | UnsetType = UNSET
    tolerances: dict[str, Any] | UnsetType = UNSET  # checked figure by figure by Tolerances


Tolerances = msgspec.defstruct(
    "Tolerances",
    [(figure, Fraction | UnsetType, UNSET) for figure in baselines.FIGURES],
    kw_only=True,
    forbid_unknown_fields=True,
)


def baseline_tolerances(settings: Settings) -> tuple[float, dict[str, float]]:
    """[baseline] tolerance and tolerances, each from the highest-precedence config file that sets it.
    Raises ToleranceError (a ValueError) for a bad one."""
    tolerance: float | None = None
    tolerances: dict[str, float] | None = None
    for path, data in settings.tables:
        table = data.get("baseline")
        if not isinstance(table, dict):
            continue
        where = f"{path} [baseline]"

        def refuse(key: str, problem: str, where: str = where, table: Mapping[str, Any] = table) -> NoReturn:
            if key == "tolerance":
                baselines.parse_tolerance(table[key], f"{where}.tolerance")
            elif key == "tolerances":
                baselines.parse_tolerances(table[key], f"{where}.tolerances")
            else:
                raise baselines.ToleranceError(
                    f"{where}.{shown_key(key)}: unknown key; expected one of tolerance, tolerances"
                )
            raise baselines.ToleranceError(f"{where}.{key}: {problem}")  # one line, never a traceback

        # tolerance is judged first, then tolerances, whatever their order in the file.
        ordered = {key: table[key] for key in BaselineSection.__struct_fields__ if key in table} | table
        section = _decode(ordered, BaselineSection, refuse)
        if tolerance is None and not isinstance(section.tolerance, UnsetType):
            tolerance = section.tolerance
        if tolerances is None and not isinstance(section.tolerances, UnsetType):
            figures = _decode(
                section.tolerances, Tolerances, lambda _key, problem: refuse("tolerances", problem)
            )
            given = msgspec.structs.asdict(figures).items()
            tolerances = {figure: value for figure, value in given if value is not UNSET}
        if tolerance is not None and tolerances is not None:
            break  # a file further down is not read, as a key further down is not
    default = baselines.DEFAULT_TOLERANCE if tolerance is None else tolerance
    return default, tolerances or {}


_AT_KEY = re.compile(r" - at `\$\.(\w+)")


def _decode(table: Mapping[str, Any], into: type[StructT], refuse: Callable[[str, str], NoReturn]) -> StructT:
    """``table`` as ``into``; else ``refuse`` the first key msgspec stopped at (it reads in the table's
    order, as the parsers did), with msgspec's own words for when no parser has better ones."""
    try:
        return msgspec.convert(table, into)
    except msgspec.ValidationError as exc:
        problem = str(exc)
        found = _AT_KEY.search(problem)
        if found is not None:
            refuse(found.group(1), problem[: found.start()])
        fields = set(into.__struct_fields__)
        refuse(next(key for key in table if key not in fields), problem)  # "unknown field"
