"""One exception base with the exit code on each class, one pydantic-error formatter, one input-file loader."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from crm_audit.cli import handle_errors
from crm_audit.core.errors import (
    CannotRun,
    CrmAuditError,
    InputFileError,
    UsageError,
    first_error,
)
from crm_audit.core.safeyaml import load_file


def _classes() -> dict[type[Exception], int]:
    from crm_audit.ci.baseline import BaselineError
    from crm_audit.ci.gates import GateSyntaxError
    from crm_audit.ci.signing import SigningError, VerificationError
    from crm_audit.ci.waivers import WaiverError
    from crm_audit.core.auth import AuthFailed
    from crm_audit.core.bounded import CapHit, DeadlineHit
    from crm_audit.core.catalogue import CatalogueError
    from crm_audit.core.options import OptionErrors
    from crm_audit.core.plugins import PluginError
    from crm_audit.core.profile import ProfileError
    from crm_audit.core.runner import UsageError as RunnerUsageError
    from crm_audit.core.safeyaml import YamlError
    from crm_audit.core.target import BudgetExceeded, OutOfScope, TargetError
    from crm_audit.report.render import ReportError
    from crm_audit.scoring.ahp import AhpError
    from crm_audit.scoring.compare import CompareError
    from crm_audit.scoring.evidence import EvidenceError
    from crm_audit.scoring.functions import FunctionSpecError
    from crm_audit.scoring.grades import GradeScaleError
    from crm_audit.scoring.hierarchy import HierarchyError
    from crm_audit.scoring.units import UnitError
    from crm_audit_plugins.load.cluster import LoadRunError

    usage = (ProfileError, OptionErrors, RunnerUsageError, YamlError, WaiverError, BaselineError, GateSyntaxError,
             SigningError, HierarchyError, EvidenceError, FunctionSpecError, CompareError, UnitError, AhpError,
             GradeScaleError, CatalogueError)
    cannot_run = (TargetError, OutOfScope, BudgetExceeded, AuthFailed, PluginError, ReportError, LoadRunError,
                  DeadlineHit, CapHit)
    return {**{c: 2 for c in usage}, **{c: 3 for c in cannot_run}, VerificationError: 1}


def test_every_error_class_derives_from_the_base_and_carries_its_exit_code() -> None:
    classes = _classes()
    assert len(classes) >= 20
    for cls, code in classes.items():
        assert issubclass(cls, CrmAuditError), cls
        assert cls.exit_code == code, (cls, cls.exit_code)
    from crm_audit.core.runner import UsageError as RunnerUsageError

    assert RunnerUsageError is UsageError  # still importable where tests and plugins use it


@pytest.mark.parametrize("error, code", [(UsageError("bad -o"), 2), (CannotRun("target gone"), 3),
                                         (InputFileError("f.yaml:3: not valid YAML: x"), 2)])
def test_the_cli_takes_the_exit_code_from_the_class(error: Exception, code: int, capsys: pytest.CaptureFixture[str]) -> None:
    class Odd(CrmAuditError):
        exit_code = 4

    @handle_errors
    def command(exc: Exception) -> None:
        raise exc

    for exc, want in ((error, code), (Odd("a plugin's own"), 4)):
        with pytest.raises(SystemExit) as done:
            command(exc)
        assert done.value.code == want
        err = capsys.readouterr().err
        assert err == f"crm-audit: error: {exc}\n"


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    port: int


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Inner]


@pytest.mark.parametrize("data, prefix, line", [
    ({"items": [{"name": "a", "port": 1}, {"name": "b"}]}, "plugins.x", "plugins.x.items[1].port: required key is missing"),
    ({"items": [{"name": "a", "port": 1, "colour": "red"}]}, "", "items[0].colour: unknown key"),
    ({"items": [{"name": "a", "port": "many"}]}, "adapter",
     "adapter.items[0].port: Input should be a valid integer, unable to parse string as an integer"),
])
def test_first_pydantic_error_as_one_line(data: dict, prefix: str, line: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Outer.model_validate(data)
    assert first_error(exc.value, prefix) == line


def test_first_error_counts_the_rest_when_asked() -> None:
    with pytest.raises(ValidationError) as exc:
        Outer.model_validate({"items": [{}, {}]})
    assert first_error(exc.value, count_more=True) == "items[0].name: required key is missing (and 3 more problems)"


def test_input_files_fail_with_one_line_naming_file_and_line(tmp_path: Path) -> None:
    class MyError(InputFileError):
        pass

    (tmp_path / "a.yaml").write_text("ok: 1\nlist: [1, 2\n")
    (tmp_path / "b.json").write_text('{\n  "a": 1,\n}\n')
    (tmp_path / "c.yaml").write_bytes(b"name: \xff\n")
    cases = {tmp_path / "a.yaml": ("thing", False, f"{tmp_path / 'a.yaml'}:3: not valid YAML: "),
             tmp_path / "b.json": ("result", True, f"{tmp_path / 'b.json'}:3: not JSON: "),
             tmp_path / "c.yaml": ("thing", False, f"{tmp_path / 'c.yaml'}: cannot read thing: not UTF-8 text"),
             tmp_path / "none.yaml": ("waivers file", False, f"{tmp_path / 'none.yaml'}: cannot read waivers file: no such file")}
    for path, (what, as_json, start) in cases.items():
        with pytest.raises(MyError) as exc:
            load_file(path, what, MyError, as_json=as_json)
        assert str(exc.value).startswith(start) and "\n" not in str(exc.value), str(exc.value)
    (tmp_path / "d.yaml").write_text("a: [1, 2]\n")
    loaded = load_file(tmp_path / "d.yaml", "thing")
    assert loaded.data == {"a": [1, 2]} and loaded.lines[("a",)] == 1
