"""Units of indicator values: parse quantities such as ``"5 min"`` and convert between units.

Hierarchy files and evidence may state a figure in the unit the source document uses
("respond within 5 minutes") while the indicator is kept in the unit of
``docs/indicators.md`` (hours); conversion happens here, once, so scoring never mixes units.
"""

from __future__ import annotations

import math
import re

from crm_audit.core.errors import InputFileError

#: unit -> (family, factor to the family's base unit)
_UNITS: dict[str, tuple[str, float]] = {
    "ms": ("time", 1e-3),
    "s": ("time", 1.0),
    "sec": ("time", 1.0),
    "min": ("time", 60.0),
    "h": ("time", 3600.0),
    "d": ("time", 86400.0),
    "day": ("time", 86400.0),
    "days": ("time", 86400.0),
    "week": ("time", 7 * 86400.0),
    "weeks": ("time", 7 * 86400.0),
    "month": ("time", 365.25 / 12 * 86400.0),
    "months": ("time", 365.25 / 12 * 86400.0),
    "year": ("time", 365.25 * 86400.0),
    "years": ("time", 365.25 * 86400.0),
    "ratio": ("ratio", 1.0),
    "%": ("ratio", 0.01),
}
for _alias, _unit in {"second": "s", "seconds": "s", "minute": "min", "minutes": "min", "hour": "h",
                      "hours": "h", "millisecond": "ms", "milliseconds": "ms", "percent": "%"}.items():
    _UNITS[_alias] = _UNITS[_unit]

#: units that are counts or scales of their own: never converted, but known
COUNTED_UNITS = frozenset({"score", "0-100", "findings", "pass/fail", "pass/partial/fail", "users", "req/s",
                           "req/s/user", "currency", "count", "records"})
#: every unit a hierarchy, an evidence file or a measurement may use (docs/scoring.md, "Units")
KNOWN_UNITS = frozenset(_UNITS) | COUNTED_UNITS


def check_unit(unit: str | None) -> str | None:
    """``unit`` itself when it is known (or empty); else UnitError naming the known ones."""
    if unit is None or not str(unit).strip():
        return None
    if str(unit).strip() not in KNOWN_UNITS:
        raise UnitError(f"unknown unit {str(unit)[:40]!r} (known: {', '.join(sorted(KNOWN_UNITS))})")
    return str(unit).strip()

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\d\s].*?)?\s*$")


class UnitError(InputFileError):
    """A quantity that cannot be parsed or converted to the wanted unit."""


def convert(value: float, from_unit: str | None, to_unit: str | None) -> float:
    """Convert ``value`` from one unit to another of the same family.

    Empty or identical units leave the value as is (an empty unit is taken to be the other
    one); an unknown unit, a counted unit against another unit, and two units of different
    families (seconds vs ratio) raise ``UnitError``: a value is never scored in a unit it
    is not in.
    """
    src = (from_unit or "").strip()
    dst = (to_unit or "").strip()
    if not src or not dst or src == dst:
        return value
    check_unit(src)
    check_unit(dst)
    if src not in _UNITS or dst not in _UNITS:
        raise UnitError(f"cannot convert {src} to {dst}")
    src_family, src_factor = _UNITS[src]
    dst_family, dst_factor = _UNITS[dst]
    if src_family != dst_family:
        raise UnitError(f"cannot convert {src} to {dst}")
    return value * src_factor / dst_factor


def parse_quantity(raw: object, unit: str | None) -> float:
    """A number, or a string ``"<number> <unit>"``, expressed in ``unit``.

    ``"5 min"`` with unit ``h`` gives 0.0833…; ``"80 %"`` with unit ``ratio`` gives 0.8;
    ``"inf"`` is accepted. Booleans are refused (YAML ``yes``/``no`` is rarely meant as 1/0).
    """
    if isinstance(raw, bool):
        raise UnitError(f"expected a number, got {raw!r}")
    if isinstance(raw, (int, float)):
        return float(raw)
    if not isinstance(raw, str):
        raise UnitError(f"expected a number, got {raw!r}")
    text = raw.strip()
    if text.lower() in ("inf", "+inf", "infinity"):
        return math.inf
    match = _QUANTITY.match(text)
    if not match:
        raise UnitError(f"expected a number or '<number> <unit>', got {raw!r}")
    number = float(match.group(1))
    given = (match.group(2) or "").strip()
    if given and given not in _UNITS:
        raise UnitError(f"unknown unit {given!r} in {raw!r}")
    if given and given != unit and (unit not in _UNITS or _UNITS[given][0] != _UNITS[unit][0]):
        raise UnitError(f"{raw!r} is not in a unit convertible to {unit or 'a plain number'}")
    return convert(number, given, unit)


def split_quantity(raw: object) -> tuple[float, str | None]:
    """A number or ``"<number> <unit>"`` as (number, unit or None), unit left unconverted."""
    if isinstance(raw, bool):
        raise UnitError(f"expected a number, got {raw!r}")
    if isinstance(raw, (int, float)):
        return float(raw), None
    if not isinstance(raw, str):
        raise UnitError(f"expected a number, got {raw!r}")
    text = raw.strip()
    if text.lower() in ("inf", "+inf", "infinity"):
        return math.inf, None
    match = _QUANTITY.match(text)
    if not match:
        raise UnitError(f"expected a number or '<number> <unit>', got {raw!r}")
    return float(match.group(1)), (match.group(2) or "").strip() or None
