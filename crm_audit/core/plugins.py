"""Plugin manager factory and the registry of probes, reporters, adapters and auth methods it yields.

Built-in plugins are found exactly as third-party ones: through the ``crm_audit``
entry-point group. No global state: every call builds a fresh manager. What only one command
needs (its report sections, the sub-commands plugins add) is asked of the plugins when that
command needs it, so start-up stays fast.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import pluggy

from crm_audit.core import hookspecs
from crm_audit.core.adapter import Adapter
from crm_audit.core.auth import AuthMethod
from crm_audit.core.errors import CannotRun
from crm_audit.core.probe import Probe, Reporter

if TYPE_CHECKING:  # pragma: no cover
    import click

    from crm_audit.report.section import ReportSection


class PluginError(CannotRun):
    """A plugin is broken or clashes with another (one line for the user)."""


@dataclass
class Registry:
    """What the loaded plugins provide, by id, with the plugin that provided each."""

    pm: pluggy.PluginManager
    probes: dict[str, type[Probe]] = field(default_factory=dict)
    reporters: dict[str, type[Reporter]] = field(default_factory=dict)
    adapters: dict[str, type[Adapter]] = field(default_factory=dict)
    #: auth methods by the name ``accounts[].auth.method`` picks (``crm_audit_register_auth``)
    auth_methods: dict[str, type[AuthMethod]] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: entry-point name -> (distribution name, version)
    distributions: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def hook(self) -> pluggy.HookRelay:
        return self.pm.hook

    def report_sections(self) -> dict[str, ReportSection]:
        """The HTML report section of each probe that has one, by probe id (``crm_audit_register_report_sections``).

        Raises PluginError when two plugins draw the same probe or a plugin returns something else.
        """
        from crm_audit.report.section import ReportSection

        out: dict[str, ReportSection] = {}
        origin: dict[str, str] = {}
        for impl in self.pm.hook.crm_audit_register_report_sections.get_hookimpls():
            source = _plugin_name(self.pm, impl)
            for section in cast("Iterable[object]", impl.function() or []):
                if not isinstance(section, ReportSection) or not section.probe:
                    raise PluginError(f"plugin {source!r} registered a report section that is not a ReportSection "
                                      f"with a probe id: {section!r}")
                if section.probe in out and out[section.probe] is not section:
                    raise PluginError(f"the report section of probe {section.probe!r} is registered twice: "
                                      f"by {origin[section.probe]!r} and {source!r}")
                out[section.probe], origin[section.probe] = section, source
        return out

    def register_commands(self, cli: click.Group) -> list[str]:
        """Let every plugin add its sub-commands to ``cli`` (``crm_audit_register_commands``); returns warnings.

        A plugin whose hook fails, or that takes a command name already in use, adds none of its
        commands and gets a warning naming the problem (and both plugins); the others still work.
        """
        warnings: list[str] = []
        owner = {name: "crm-audit" for name in cli.commands}
        for impl in self.pm.hook.crm_audit_register_commands.get_hookimpls():
            source = _plugin_name(self.pm, impl)
            before = dict(cli.commands)
            try:
                impl.function(cli=cli)
                taken = [name for name, cmd in cli.commands.items() if name in before and before[name] is not cmd]
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the command line
                taken, problem = [], f"plugin {source!r} could not add its commands: {type(exc).__name__}: {exc}"
            else:
                problem = "; ".join(f"command {name!r} is registered twice: by {owner[name]!r} and {source!r} "
                                    f"(the latter's commands are left out)" for name in taken)
            if problem:
                cli.commands.clear()
                cli.commands.update(before)
                warnings.append(problem)
                continue
            for name in cli.commands:
                owner.setdefault(name, source)
        return warnings

    def plugin_versions(self) -> dict[str, str]:
        """Distribution name → version of every plugin distribution, plus each probe's own."""
        out = {name: version for name, version in self.distributions.values()}
        out.update({f"probe:{pid}": cls.version for pid, cls in self.probes.items()})
        return out


def make_plugin_manager(extra_plugins: Iterable[object] = (), entry_points: bool = True) -> Registry:
    """Build a plugin manager, load the entry-point plugins and collect what they register."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    warnings: list[str] = []
    distributions: dict[str, tuple[str, str]] = {}
    if entry_points:
        for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT):
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the tool
                warnings.append(f"plugin {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}")
                continue
            pm.register(plugin, name=ep.name)
            dist = getattr(ep, "dist", None)
            if dist is not None:
                distributions[ep.name] = (dist.metadata["Name"], dist.version)
    for plugin in extra_plugins:
        pm.register(plugin)
    reg = Registry(pm=pm, warnings=warnings, distributions=distributions)
    _collect(reg)
    return reg


def _plugin_name(pm: pluggy.PluginManager, impl: pluggy.HookImpl) -> str:
    return pm.get_name(impl.plugin) or repr(impl.plugin)


def _collect(reg: Registry) -> None:
    pm = reg.pm
    kinds: tuple[tuple[str, pluggy.HookCaller, dict[str, type[Any]], str, type[Any]], ...] = (
        ("probe", pm.hook.crm_audit_register_probes, reg.probes, "id", Probe),
        ("reporter", pm.hook.crm_audit_register_reporters, reg.reporters, "format", Reporter),
        ("adapter", pm.hook.crm_audit_register_adapters, reg.adapters, "type", Adapter),
        ("auth method", pm.hook.crm_audit_register_auth, reg.auth_methods, "name", AuthMethod),
    )
    for kind, caller, table, attr, base in kinds:
        for impl in caller.get_hookimpls():
            source = _plugin_name(pm, impl)
            for cls in cast("Iterable[object]", impl.function() or []):
                key = getattr(cls, attr, "")
                if not (isinstance(cls, type) and issubclass(cls, base)) or not key:
                    raise PluginError(f"plugin {source!r} registered a {kind} without a {attr}: {cls!r}")
                if key in table and table[key] is not cls:
                    raise PluginError(
                        f"{kind} {key!r} is registered twice: by {reg.origin[f'{kind}:{key}']!r} and {source!r}"
                    )
                table[key] = cls
                reg.origin[f"{kind}:{key}"] = source
