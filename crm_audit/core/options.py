"""Probe options checked against the loaded profile, every error reported, and ``-o`` overrides.

A probe's ``options_model`` is validated with the profile in pydantic's validation context
(``{"profile": profile}``), so a field typed :data:`AccountName`, :data:`ResourceName` or
:data:`ScopedPath` is checked against the profile's accounts, adapter resources and scope
before anything is contacted. Validated without a profile (a unit test, the docs generator)
those types accept any text.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ValidationError, ValidationInfo

from crm_audit.core.errors import error_lines
from crm_audit.core.profile import Profile, ProfileError, host_in_scope
from crm_audit.core.safeyaml import YamlError, load_yaml


class OptionErrors(ProfileError):
    """Several option problems at once; ``lines`` holds each as one line naming its key."""

    def __init__(self, lines: Sequence[str]) -> None:
        more = len(lines) - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''}; `crm-audit validate` lists them)" if more else ""
        super().__init__(lines[0] + tail)
        #: every problem, one line each: "<source>: plugins.<id>.<key>: <message>"
        self.lines = list(lines)


def _profile(info: ValidationInfo) -> Profile | None:
    context = info.context if isinstance(info.context, dict) else {}
    found = context.get("profile")
    return found if isinstance(found, Profile) else None


def _known_account(value: str, info: ValidationInfo) -> str:
    profile = _profile(info)
    if profile is not None and value not in {a.name for a in profile.accounts}:
        names = ", ".join(a.name for a in profile.accounts) or "none"
        raise ValueError(f"unknown account {value!r} (accounts: {names})")
    return value


def profile_resources(profile: Profile) -> list[str] | None:
    """Resource names of the profile's ``adapter.resources`` mapping; None when it has none."""
    found = profile.adapter.get("resources")
    return [str(k) for k in found] if isinstance(found, dict) else None


def _known_resource(value: str, info: ValidationInfo) -> str:
    profile = _profile(info)
    names = profile_resources(profile) if profile is not None else None
    if names is not None and value not in names:
        raise ValueError(f"unknown resource {value!r} (adapter.resources: {', '.join(names) or 'none'})")
    return value


def _in_scope(value: str, info: ValidationInfo) -> str:
    if not value.strip() or any(ord(c) < 32 for c in value):
        raise ValueError("must be a path or URL without control characters")
    profile = _profile(info)
    if profile is not None and value.lower().startswith(("http://", "https://")):
        host = urlsplit(value).hostname or ""
        if not host_in_scope(host, profile.target.scope):
            raise ValueError(f"host {host!r} is outside target.scope {profile.target.scope}")
    return value


AccountName = Annotated[str, AfterValidator(_known_account)]
"""The name of one of the profile's accounts."""
ResourceName = Annotated[str, AfterValidator(_known_resource)]
"""A resource of the profile's ``adapter.resources`` (not checked for adapters configured otherwise)."""
ScopedPath = Annotated[str, AfterValidator(_in_scope)]
"""A path on the target, or a URL whose host is in ``target.scope``."""


def option_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """Every problem of a failed options validation as (dotted key, message)."""
    return [(".".join(str(x) for x in loc), msg)
            for loc, msg in error_lines(exc, unknown="unknown option", missing="required option is missing")]


def validate_options(model: type[BaseModel], raw: Any, profile: Profile | None) -> BaseModel:
    """``raw`` validated by ``model`` with the profile in the validation context."""
    return model.model_validate(raw, context={"profile": profile})


def apply_overrides(profile: Profile, items: Sequence[str]) -> Profile:
    """The profile with ``plugins.<probe>.<key>[.<key>…]=<value>`` overrides applied.

    The value is read as a YAML scalar or flow collection (``5``, ``true``, ``[a, b]``,
    ``{x: 1}``); anything else is text. Raises ProfileError naming the bad item.
    """
    plugins = copy.deepcopy(profile.plugins)
    for item in items:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 3 or parts[0] != "plugins" or not all(p.strip() for p in parts):
            raise ProfileError(f"-o {item!r}: expected plugins.<probe>.<key>=<value>")
        try:
            value = load_yaml(text).data if text.strip() else None
        except YamlError as exc:
            raise ProfileError(f"-o {key}: value is not valid YAML: {exc.problem}") from None
        section = plugins.setdefault(parts[1], {})
        for part in parts[2:-1]:
            nxt = section.get(part)
            if not isinstance(nxt, dict):
                nxt = section[part] = {}
            section = nxt
        section[parts[-1]] = value
    return profile.model_copy(update={"plugins": plugins})
