"""Renders the profile reference (docs/profile.md) from the models themselves, so it cannot drift.

``python -m crm_audit.profile_doc > docs/profile.md``; a test keeps the file equal to the output.
"""

from __future__ import annotations

import enum
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .profile import Account, Allow, AuthConfig, Endpoint, Flow, FlowStep, Gates, Profile, TargetConfig, ThresholdGate

SECTIONS: list[tuple[str, type[BaseModel], str]] = [
    ("Top level", Profile, ""),
    ("target", TargetConfig, "target"),
    ("accounts[]", Account, "accounts[]"),
    ("accounts[].auth", AuthConfig, "accounts[].auth"),
    ("endpoints[]", Endpoint, "endpoints[]"),
    ("flows[]", Flow, "flows[]"),
    ("flows[].steps[]", FlowStep, "flows[].steps[]"),
    ("allow", Allow, "allow"),
    ("gates", Gates, "gates"),
    ("gates.thresholds[]", ThresholdGate, "gates.thresholds[]"),
]


def type_name(annotation: Any) -> str:
    """A short, readable name for a field's type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is type(None):
        return "null"
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " \\| ".join(type_name(a) for a in args)
    if origin in (list, tuple, set):
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"map {type_name(args[0])} → {type_name(args[1])}" if args else "map"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(repr(m.value) for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"`{annotation.__name__}`"
    name = getattr(annotation, "__name__", str(annotation))
    return {"SecretStr": "secret (${ENV})", "str": "string", "int": "integer", "float": "number", "bool": "boolean",
            "Any": "any"}.get(name, name)


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    value = field.default
    if value is PydanticUndefined:
        value = field.default_factory() if field.default_factory else None  # type: ignore[call-arg]
    if isinstance(value, BaseModel):
        return "see below"
    if value in ({}, []):
        return "empty"
    return f"`{value!r}`" if value is not None else "none"


def model_table(model: type[BaseModel]) -> list[str]:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        desc = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{name}` | {type_name(field.annotation)} | {default_text(field)} | {desc} |")
    return rows


def render(probe_options: dict[str, type[BaseModel]] | None = None) -> str:
    """The whole reference as Markdown."""
    out = [
        "# Profile reference",
        "",
        "Generated from the models by `python -m crm_audit.profile_doc` — do not edit by hand.",
        "`crm-audit init FILE` writes a commented starter profile; `crm-audit validate FILE` checks one.",
        "Secrets (`password`, `token`, `api_key`, `secret`) must be `${ENV_VAR}` references; any string",
        "may use `${ENV_VAR}`. Unknown keys are errors. Paths (`ca_bundle`, `evidence`, `waivers`) are",
        "relative to the profile file.",
        "",
    ]
    for title, model, _ in SECTIONS:
        out += [f"## {title}", "", (model.__doc__ or "").strip(), "", *model_table(model), ""]
    if probe_options:
        out += ["## plugins.<probe id>", "",
                "Each probe validates its own section with its options model (errors name `plugins.<id>.<key>`).", ""]
        for pid, model in sorted(probe_options.items()):
            if model.model_fields:
                out += [f"### plugins.{pid}", "", *model_table(model), ""]
    return "\n".join(out).rstrip() + "\n"


def render_installed() -> str:
    """The reference including the options of every installed probe."""
    from .plugins import make_plugin_manager

    reg = make_plugin_manager()
    return render({pid: cls.options_model for pid, cls in reg.probes.items()})


if __name__ == "__main__":
    print(render_installed(), end="")
