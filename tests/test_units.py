"""Units are a closed list: an unknown unit is an error, never a silent 1:1 conversion (issue 14)."""

from __future__ import annotations

import pytest

from crm_audit.scoring.units import KNOWN_UNITS, UnitError, check_unit, convert


def test_known_units_convert_and_aliases_agree() -> None:
    assert convert(300, "ms", "seconds") == pytest.approx(0.3)
    assert convert(2, "hours", "min") == pytest.approx(120)
    assert convert(5, "users", "users") == 5 and convert(5, "", "users") == 5


@pytest.mark.parametrize("src,dst", [("ms", "furlongs"), ("parsecs", "s"), ("users", "req/s"), ("ms", "ratio")])
def test_unknown_or_unrelated_units_are_refused(src: str, dst: str) -> None:
    with pytest.raises(UnitError):
        convert(300, src, dst)


def test_check_unit_names_the_known_ones() -> None:
    assert check_unit("req/s") == "req/s" and check_unit(None) is None and check_unit(" ") is None
    with pytest.raises(UnitError, match="unknown unit 'secondz'.*known: "):
        check_unit("secondz")
    assert "findings" in KNOWN_UNITS and "%" in KNOWN_UNITS


def test_a_hierarchy_with_an_unknown_unit_is_refused_at_load(tmp_path) -> None:
    from crm_audit.scoring import HierarchyError, load_hierarchy

    path = tmp_path / "h.yaml"
    path.write_text("name: h\nroot: r\nnodes:\n  - {id: r, title: R, children: [x]}\n"
                    "  - {id: x, title: X, weight: 1, unit: furlongs, source: 'probe:latency', expected: 3,\n"
                    "     better: lower, function: {type: linear, good: 0, bad: 10}}\n", encoding="utf-8")
    with pytest.raises(HierarchyError, match="unknown unit 'furlongs'"):
        load_hierarchy(str(path))
