"""Hierarchy files: the bundled variants, and one clear error per kind of mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from crm_audit.scoring import HierarchyError, available_hierarchies, load_hierarchy

DOCS = Path(__file__).resolve().parents[1] / "docs" / "indicators.md"
BUNDLED = ["default", "security", "vendor-selection"]


def documented_indicators() -> dict[str, tuple[str, str]]:
    """id -> (unit, source) from the table in docs/indicators.md."""
    rows = re.findall(r"^\| ([a-z]+\.[a-z0-9_]+) \| [^|]+ \| ([^|]+) \| ([^|]+) \|$", DOCS.read_text(), re.M)
    return {i: (unit.strip(), source.strip()) for i, unit, source in rows}


def write(tmp_path: Path, nodes: list[dict], **top) -> Path:
    path = tmp_path / "h.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "title": "T", **top, "nodes": nodes}, sort_keys=False))
    return path


def leaf(nid: str, weight: float | None = None, source: str = "probe:latency", **extra) -> dict:
    node = {"id": nid, "title": nid, "unit": "ms", "source": source, "expected": 300,
            "function": {"type": "lognormal", "p90": 300, "p50": 1000}, **extra}
    if weight is not None:
        node["weight"] = weight
    return node


def small(tmp_path: Path, **changes) -> Path:
    nodes = [
        {"id": "root", "title": "Root", "children": ["a", "b"]},
        {"id": "a", "title": "A", "weight": 0.6, "children": ["a.1", "a.2"]},
        {"id": "b", "title": "B", "weight": 0.4, "children": ["b.1"]},
        leaf("a.1", 0.5), leaf("a.2", 0.5), leaf("b.1", 1.0),
    ]
    for nid, patch in changes.items():
        node = next(n for n in nodes if n["id"] == nid.replace("_", "."))
        node.update(patch)
    return write(tmp_path, nodes)


# ---------------------------------------------------------------- bundled hierarchies

def test_bundled_hierarchies_are_listed():
    assert set(BUNDLED) <= set(available_hierarchies())


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_hierarchy_has_every_documented_indicator(name):
    h = load_hierarchy(name)
    documented = documented_indicators()
    assert len(documented) == 41
    leaves = {n.id: n for n in h.leaves()}
    assert set(leaves) == set(documented)
    for nid, (unit, source) in documented.items():
        node = leaves[nid]
        assert node.title and node.function is not None and node.function.describe()
        assert node.unit == unit, nid
        assert node.parent == nid.split(".")[0]
        for alternative in source.split(" / "):
            assert alternative.strip() in node.sources, nid
        if nid not in ("cost.tco", "cost.irr"):  # these take their target from the evidence
            assert node.expected is not None, nid


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_weights_sum_to_one(name):
    h = load_hierarchy(name)
    for node in h.walk():
        if node.children:
            assert sum(h.nodes[k].weight for k in node.children) == pytest.approx(1.0, abs=1e-9)
    assert sum(h.global_weights[n.id] for n in h.leaves()) == pytest.approx(1.0)


def test_vendor_selection_puts_cost_benefit_at_40_percent():
    h = load_hierarchy("vendor-selection")
    assert h.nodes["cost"].weight == 0.40


def test_security_weights_come_from_ahp():
    h = load_hierarchy("security")
    root = h.nodes["crm"]
    assert root.ahp is not None and root.ahp.consistent and root.weighting.startswith("AHP")
    assert max(root.children, key=lambda k: h.nodes[k].weight) == "sec"
    assert h.nodes["sec"].weight + h.nodes["bak"].weight > 0.5


def test_expected_values_from_the_source_documents():
    h = load_hierarchy("default")
    assert h.nodes["svc.response_time"].expected == pytest.approx(5 / 60)  # 5 minutes, in hours
    assert h.nodes["svc.resolution_rate"].expected == 0.80
    assert h.nodes["bak.rto"].expected == 900  # 15 min in s
    assert h.nodes["bak.rpo"].expected == 86400  # 24 h in s
    assert h.nodes["perf.response_time_p95"].expected == 300


def test_load_by_path(tmp_path):
    h = load_hierarchy(str(small(tmp_path)))
    assert h.name == "t" and h.root == "root"
    assert [n.id for n in h.walk()] == ["root", "a", "a.1", "a.2", "b", "b.1"]
    assert h.global_weights["a.1"] == pytest.approx(0.3)
    assert h.nodes["a"].kind == "dimension" and h.nodes["a.1"].kind == "indicator" and h.nodes["root"].kind == "root"


def test_unknown_name():
    with pytest.raises(HierarchyError, match="unknown hierarchy.*default"):
        load_hierarchy("no-such-hierarchy")


# ---------------------------------------------------------------- one error per mistake

def assert_one_line(exc: pytest.ExceptionInfo, path: Path, node: str | None) -> None:
    message = str(exc.value)
    assert "\n" not in message and message.startswith(str(path))
    if node:
        assert f"'{node}'" in message


def test_unknown_probe(tmp_path):
    path = small(tmp_path, b_1={"source": "probe:telepathy"})
    with pytest.raises(HierarchyError, match="unknown probe 'telepathy'") as exc:
        load_hierarchy(str(path))
    assert_one_line(exc, path, "b.1")


def test_known_probes_can_be_extended(tmp_path):
    path = small(tmp_path, b_1={"source": "probe:telepathy"})
    h = load_hierarchy(str(path), known_probes={"telepathy"})
    assert h.nodes["b.1"].sources == ("probe:telepathy",)


def test_weights_not_summing_to_one(tmp_path):
    path = small(tmp_path, a_2={"weight": 0.5 + 2e-9})
    with pytest.raises(HierarchyError, match="sum to") as exc:
        load_hierarchy(str(path))
    assert_one_line(exc, path, "a")


def test_weights_within_tolerance_are_accepted(tmp_path):
    path = small(tmp_path, a_1={"weight": 0.1 + 0.2}, a_2={"weight": 0.7})  # 0.30000000000000004
    assert load_hierarchy(str(path)).nodes["a.2"].weight == 0.7


def test_missing_weight(tmp_path):
    nodes = yaml.safe_load(small(tmp_path).read_text())["nodes"]
    del nodes[3]["weight"]
    path = write(tmp_path, nodes)
    with pytest.raises(HierarchyError, match="no 'weight'") as exc:
        load_hierarchy(str(path))
    assert_one_line(exc, path, "a.1")


def test_cycle(tmp_path):
    path = small(tmp_path, b_1={"children": ["b"]})
    with pytest.raises(HierarchyError, match="cycle") as exc:
        load_hierarchy(str(path))
    assert_one_line(exc, path, None)
    assert "b → b.1 → b" in str(exc.value)


def test_duplicate_id(tmp_path):
    nodes = yaml.safe_load(small(tmp_path).read_text())["nodes"]
    nodes.append(leaf("a.1", 0.5))
    path = write(tmp_path, nodes)
    with pytest.raises(HierarchyError, match="duplicate id") as exc:
        load_hierarchy(str(path))
    assert_one_line(exc, path, "a.1")


def test_undefined_child_and_two_parents_and_unreachable(tmp_path):
    with pytest.raises(HierarchyError, match="child 'a.9' is not defined"):
        load_hierarchy(str(small(tmp_path, a={"children": ["a.1", "a.2", "a.9"]})))
    with pytest.raises(HierarchyError, match="child of both"):
        load_hierarchy(str(small(tmp_path, b={"children": ["b.1", "a.1"]})))
    nodes = yaml.safe_load(small(tmp_path).read_text())["nodes"]
    nodes.append(leaf("orphan", 1.0))
    with pytest.raises(HierarchyError, match="root"):
        load_hierarchy(str(write(tmp_path, nodes)))
    with pytest.raises(HierarchyError, match="'orphan': not reachable"):
        load_hierarchy(str(write(tmp_path, nodes, root="root")))


def test_ahp_weights_in_a_hierarchy(tmp_path):
    path = small(tmp_path, a={"weight": None}, b={"weight": None},
                 root={"weights": {"ahp": {"matrix": [[1, 3], ["1/3", 1]]}}})
    nodes = yaml.safe_load(path.read_text())["nodes"]
    for n in nodes:
        if n["id"] in ("a", "b"):
            del n["weight"]
    h = load_hierarchy(str(write(tmp_path, nodes)))
    assert h.nodes["a"].weight == pytest.approx(0.75) and h.nodes["b"].weight == pytest.approx(0.25)


def test_inconsistent_ahp_is_refused_naming_the_pair(tmp_path):
    nodes = [
        {"id": "root", "title": "R", "children": ["x", "y", "z"],
         "weights": {"ahp": {"matrix": [[1, 3, 5], ["1/3", 1, 7], ["1/5", "1/7", 1]]}}},
        leaf("x"), leaf("y"), leaf("z"),
    ]
    path = write(tmp_path, nodes)
    with pytest.raises(HierarchyError, match=r"CR = 0\.20\d ≥ 0\.10; most inconsistent pair: \w vs \w") as exc:
        load_hierarchy(str(path))
    assert_one_line(exc, path, "root")


def test_non_reciprocal_ahp_is_refused(tmp_path):
    nodes = [{"id": "root", "title": "R", "children": ["x", "y"], "weights": {"ahp": {"matrix": [[1, 3], [3, 1]]}}},
             leaf("x"), leaf("y")]
    with pytest.raises(HierarchyError, match="not reciprocal"):
        load_hierarchy(str(write(tmp_path, nodes)))


def test_weights_given_twice(tmp_path):
    path = small(tmp_path, root={"weights": "equal"})
    with pytest.raises(HierarchyError, match="given twice"):
        load_hierarchy(str(path))


def test_equal_weights(tmp_path):
    nodes = [{"id": "root", "title": "R", "children": ["x", "y", "z", "w"], "weights": "equal"},
             leaf("x"), leaf("y"), leaf("z"), leaf("w")]
    h = load_hierarchy(str(write(tmp_path, nodes)))
    assert [h.nodes[k].weight for k in "xyzw"] == [0.25] * 4


@pytest.mark.parametrize(
    "patch, fragment",
    [
        ({"function": {"type": "cubic"}}, "unknown function type"),
        ({"function": None}, "mapping"),
        ({"source": None}, "needs a 'source'"),
        ({"source": "ldap"}, "must be 'probe:<id>' or 'evidence'"),
        ({"colour": "red"}, "unknown key"),
        ({"better": "higher"}, "says lower"),
        ({"expected": "5 parsecs"}, "expected"),
        ({"function": {"type": "findings"}, "source": "evidence"}, "probe sources only"),
    ],
)
def test_leaf_mistakes(tmp_path, patch, fragment):
    path = small(tmp_path, b_1=patch)
    with pytest.raises(HierarchyError, match=fragment) as exc:
        load_hierarchy(str(path))
    assert_one_line(exc, path, "b.1")


def test_invalid_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("nodes: [\n  - id: a\n")
    with pytest.raises(HierarchyError, match="not valid YAML") as exc:
        load_hierarchy(str(path))
    assert "\n" not in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(HierarchyError, match="cannot read"):
        load_hierarchy(str(tmp_path / "nope.yaml"))
