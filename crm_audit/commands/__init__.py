"""Sub-commands that live in their own modules; each module exports ``COMMANDS``."""

from __future__ import annotations

import importlib
import pkgutil

import click

COMMANDS: list[click.Command] = []
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    COMMANDS.extend(importlib.import_module(f"{__name__}.{_info.name}").COMMANDS)
