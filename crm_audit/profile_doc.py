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

from crm_audit.core.profile import (
    MAX_ERROR_CHARS,
    MAX_NAME_CHARS,
    MAX_PATH_CHARS,
    Account,
    Actors,
    Allow,
    AuthConfig,
    Endpoint,
    Flow,
    FlowStep,
    Gates,
    Profile,
    TargetConfig,
    ThresholdGate,
)
from crm_audit.core.safeyaml import MAX_CHARS, MAX_DEPTH, MAX_NODES
from crm_audit.protocols.rest import DenialRule, Pagination, ResourceConfig, RestConfig

SECTIONS: list[tuple[str, type[BaseModel], str]] = [
    ("Top level", Profile, ""),
    ("target", TargetConfig, "target"),
    ("accounts[]", Account, "accounts[]"),
    ("accounts[].auth", AuthConfig, "accounts[].auth"),
    ("endpoints[]", Endpoint, "endpoints[]"),
    ("flows[]", Flow, "flows[]"),
    ("flows[].steps[]", FlowStep, "flows[].steps[]"),
    ("actors", Actors, "actors"),
    ("adapter (type: rest)", RestConfig, "adapter"),
    ("adapter.pagination", Pagination, "adapter.pagination"),
    ("adapter.denials[]", DenialRule, "adapter.denials[]"),
    ("adapter.resources.<name>", ResourceConfig, "adapter.resources.<name>"),
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
    if origin is typing.Annotated:
        return type_name(args[0])
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
        "relative to the profile file, and every file the profile names (also a `hierarchy` given as a",
        "path) must exist when the profile is loaded.",
        "",
        "Every YAML file crm-audit reads (profiles, hierarchies, evidence, waivers, AHP matrices) is read",
        f"by one bounded loader (`crm_audit/core/safeyaml.py`): standard tags only, at most {MAX_CHARS // 1024 // 1024} MiB "
        f"of text, at most {MAX_NODES:,}",
        "nodes *counting every alias as the nodes it expands to* (a scalar counts one node per 80",
        f"characters), nesting at most {MAX_DEPTH} deep. Anchors, aliases and `<<:` merge keys work; an",
        "alias bomb, a recursive alias (`&a [*a]`) or a value its tag cannot hold (`!!int abc`,",
        "`2024-13-45`) is refused with one line naming the file line, as is every other mistake",
        f"(exit 2; an error line is at most {MAX_ERROR_CHARS} characters, long names and values cut with \"…\").",
        "",
        f"Strings are checked before anything is contacted: names, roles, tenants and labels 1–{MAX_NAME_CHARS}",
        f"characters; paths and URLs at most {MAX_PATH_CHARS}, ports 1–65535; nothing that reaches an HTTP",
        "request (user names, header names and values, auth schemes, methods, tokens, API keys) may hold",
        "CR, LF or other control characters; header names, methods and schemes are HTTP tokens; header",
        "values, tokens and API keys are Latin-1 without surrounding white space.",
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
    from crm_audit.core.plugins import make_plugin_manager

    reg = make_plugin_manager()
    return render({pid: cls.options_model for pid, cls in reg.probes.items()})


if __name__ == "__main__":
    print(render_installed(), end="")
