"""The one exception base of crm-audit, its exit codes, and the one pydantic-error formatter.

Every error the tool raises on purpose derives from :class:`CrmAuditError` and carries the
exit code the command line ends with (``exit_code``), so the CLI maps errors to codes in one
place (``crm_audit.cli.handle_errors``) instead of listing classes. Exit codes: 2 usage,
profile or input file; 3 the audit could not run or finish.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # pragma: no cover - the CLI imports this module first thing: keep it light
    from pydantic import ValidationError

#: exit codes of the command line (0 ok and 1 a gate failed are not errors)
EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_CANNOT_RUN = 0, 1, 2, 3


class CrmAuditError(Exception):
    """Base of every error crm-audit raises on purpose; ``exit_code`` is what the CLI exits with."""

    exit_code: ClassVar[int] = EXIT_CANNOT_RUN


class UsageError(CrmAuditError):
    """Bad selection, options or input on the command line (exit code 2)."""

    exit_code: ClassVar[int] = EXIT_USAGE


class InputFileError(UsageError, ValueError):
    """An input file (profile, hierarchy, evidence, waivers, baseline, result) cannot be used (exit 2)."""


class CannotRun(CrmAuditError):
    """The audit could not run or finish: target, login, plugin or subprocess trouble (exit code 3)."""


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """A pydantic location without the ``function-after[…]`` steps validators add."""
    return tuple(x for x in loc if not (isinstance(x, str) and x.startswith("function-")))


def error_lines(exc: ValidationError, *, unknown: str = "unknown key",
                missing: str = "required key is missing") -> list[tuple[tuple[Any, ...], str]]:
    """Every problem of a failed validation as (location, one-line message).

    ``unknown`` and ``missing`` replace pydantic's wording for an extra or a missing key;
    the "Value error, " prefix of a validator's own message is dropped.
    """
    out: list[tuple[tuple[Any, ...], str]] = []
    for err in exc.errors():
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = unknown
        elif err["type"] == "missing":
            msg = missing
        out.append((_clean_loc(tuple(err["loc"])), msg))
    return out


def dotted(loc: tuple[Any, ...]) -> str:
    """``("accounts", 0, "auth")`` as ``accounts[0].auth``; each key cut to 40 characters, the whole to 160."""
    from crm_audit.core.safeyaml import clip  # safeyaml imports this module

    s = ""
    for part in loc:
        s += f"[{part}]" if isinstance(part, int) else (f".{clip(part, 40)}" if s else clip(part, 40))
    return clip(s, 160) if s else ""


def first_error(exc: ValidationError, prefix: str = "", *, unknown: str = "unknown key",
                missing: str = "required key is missing", count_more: bool = False) -> str:
    """The first problem of a failed validation as one line: ``<prefix>.<key>: <message>``.

    ``count_more`` adds "(and N more problems)" when there are several.
    """
    problems = error_lines(exc, unknown=unknown, missing=missing)
    if not problems:
        return f"{prefix}: invalid" if prefix else "invalid"
    loc, msg = problems[0]
    key = ".".join(p for p in (prefix, dotted(loc)) if p)
    more = len(problems) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if count_more and more else ""
    return f"{key}: {msg}{tail}" if key else f"{msg}{tail}"
