"""What the built-in adapters (``rest``, ``jsonrpc``) share about the records they create.

A create fills the profile's values template of the resource with the run tag and a number
unique in the run (``{tag}``, ``{n}``) and puts the tag in the config's ``tag_field``; the
update template of that record is later filled with the same tag and number, so that an
update keeps the values unique the same way.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from crm_audit.core.adapter import Adapter, fill
from crm_audit.core.target import Target


class TaggedAdapter(Adapter):
    """An adapter whose config has ``tag_field`` and values templates; remembers what it created."""

    #: the numbers ``{n}`` of new records (a subclass may keep its own counter under this name)
    _ids: ClassVar[Iterator[int]] = itertools.count(1)

    def __init__(self, config: dict[str, Any], target: Target) -> None:
        super().__init__(config, target)  # validates config with config_model
        self._created: dict[tuple[str, str], tuple[str, int]] = {}

    def create_values(self, template: Mapping[str, Any], tag: str, n: int = 0) -> tuple[dict[str, Any], int]:
        """``template`` filled for a new record with the tag in ``tag_field``, and its number (``n``, else the next)."""
        n = n or next(self._ids)
        values: dict[str, Any] = fill(template, tag=tag, n=n)
        if self.config.tag_field and self.config.tag_field not in values:
            values[self.config.tag_field] = [tag]
        return values, n

    def remember(self, resource: str, record: dict[str, Any] | None, tag: str, n: int) -> None:
        """Note the tag and number a just-created ``record`` was made with (for :meth:`update_values`)."""
        if record is not None and self.record_id(record) is not None:
            self._created[(resource, str(self.record_id(record)))] = (tag, n)

    def update_values(self, resource: str, record_id: Any, template: Mapping[str, Any]) -> dict[str, Any]:
        """``template`` filled with the tag and number the record was created with (else a fresh number)."""
        tag, n = self._created.get((resource, str(record_id)), ("crm-audit", next(self._ids)))
        values: dict[str, Any] = fill(template, tag=tag, n=n)
        return values
