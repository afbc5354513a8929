"""The plugin API reference (docs/api.md) is generated from the code, current, and complete."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from crm_audit import api_doc
from crm_audit.core.probe import Probe, ProbeContext

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "api.md"


def test_no_public_name_is_undocumented() -> None:
    assert api_doc.undocumented() == []


def test_docs_api_md_is_the_generators_output() -> None:
    assert DOC.read_text(encoding="utf-8") == api_doc.render(), \
        "docs/api.md is stale: python -m crm_audit.api_doc > docs/api.md"


def test_the_reference_covers_what_the_issue_names() -> None:
    text = DOC.read_text(encoding="utf-8")
    for heading in ("### Probe", "### ProbeContext", "### Target", "### Exchange", "### Finding", "### Measurement",
                    "### Account", "### ProbeSkipped", "### TargetError", "### OutOfScope", "### BudgetExceeded",
                    "### IncompleteRead", "### Adapter", "### AuthConfig", "### NotAssessed", "### Verdict",
                    "### IndicatorSpec", "## Picking accounts", "## The YAML loader", "## Hooks"):
        assert f"\n{heading}\n" in text, heading
    for row in ("| `bounded_by` | field |", "| `answered` | property |", "| `failure` | field |",
                "| `not_assessed` | property |", "| `json_or_none() -> Any` | method |", "| `hint` | field |",
                "| `assessed` | property |", "| `purpose` | field |", "| `quiet_target` | class attribute |"):
        assert row in text, row
    assert "`finalize(" in text and "`failed_indicator_findings(" in text and "`load_yaml(" in text


def test_every_public_member_of_the_probe_api_is_listed() -> None:
    names = {e.name.split("(")[0] for e in api_doc.class_entries(Probe)}
    assert {n for n in vars(Probe) if not n.startswith("_")} <= names
    fields = {e.name for e in api_doc.class_entries(ProbeContext)}
    assert {"run_id", "profile", "target", "adapter", "options", "allow_writes", "allow_disruptive", "workdir",
            "cancel", "log", "tag", "defer(description: str, fn: Callable[[], None]) -> None"} <= fields


def test_a_new_undocumented_name_is_caught() -> None:
    class Opts(BaseModel):
        model_config = ConfigDict(extra="forbid")
        documented: int = 0  # no description and no #: comment below

    class Fresh(Probe):
        #: documented by its comment
        commented: int = 1
        bare_attribute: int = 2

        def bare_method(self) -> None:
            pass

    meanings = {e.name.split("(")[0]: e.meaning for e in api_doc.class_entries(Fresh)}
    assert meanings["commented"] == "documented by its comment"
    assert meanings["bare_attribute"] == "" and meanings["bare_method"] == ""
    assert [e.meaning for e in api_doc.class_entries(Opts)] == [""]


def test_check_mode_exits_zero_when_complete() -> None:
    run = subprocess.run([sys.executable, "-m", "crm_audit.api_doc", "--check"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout == ""
