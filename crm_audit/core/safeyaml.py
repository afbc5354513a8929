"""The one YAML loader of crm-audit: safe tags only, bounded expansion, one-line errors with a line number.

Every YAML file the tool reads (profiles, hierarchies, evidence, waivers, AHP matrices) goes
through :func:`load_yaml`. It refuses what would hang or exhaust the process instead of
expanding it:

* a text longer than :data:`MAX_CHARS` characters;
* more than :data:`MAX_NODES` nodes *after alias expansion* (an alias costs the size of the
  node it names, a scalar one node per 80 characters), which stops "billion laughs" bombs
  while ordinary anchors and ``<<:`` merge keys keep working;
* recursive aliases (an alias inside the node it names) and nesting deeper than :data:`MAX_DEPTH`;
* a value its tag cannot hold (``!!int abc``, ``!!bool maybe``, a timestamp such as
  ``2024-13-45``): a :class:`YamlError` at its line, never a ValueError or KeyError.

Input *files* (profile, waivers, evidence, hierarchy, AHP matrix, baseline and result JSON)
are read through :func:`load_file` (or :func:`read_file` then :func:`parse_text`), so every
one of them fails the same way: one line ``<file>:<line>: not valid YAML: <problem>``
(``not JSON`` for JSON), or ``<file>: cannot read <what>: <reason>``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, cast

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.scanner import ScannerError

from crm_audit.core.errors import InputFileError, UsageError

MAX_CHARS = 1024 * 1024
MAX_NODES = 50_000
MAX_DEPTH = 100
PROBLEM_CHARS = 160
_SCALAR_CHARS_PER_NODE = 80


class YamlError(UsageError):
    """A YAML text that cannot be read: ``line`` (1-based, or None) and a one-line, bounded ``problem``."""

    def __init__(self, problem: str, line: int | None = None) -> None:
        self.problem = clip(problem, PROBLEM_CHARS)
        self.line = line
        super().__init__(f"line {line}: {self.problem}" if line else self.problem)


class Loaded(NamedTuple):
    """The loaded data and, for every key path (tuple of keys and list indexes), its 1-based line."""

    data: Any
    lines: dict[tuple[Any, ...], int]


def clip(text: object, limit: int = 80) -> str:
    """``text`` on one line (control characters shown as ``\\n``-style escapes), cut to ``limit`` with "…"."""
    s = str(text)
    if len(s) > 4 * limit:
        s = s[: 4 * limit]  # escape only what can be shown
    s = "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)
    return s if len(s) <= limit else s[: limit - 1] + "…"


#: what a loading helper raises: an exception class (or factory) taking the one-line message
ErrorFactory = Callable[[str], Exception]


def read_file(path: str | Path, what: str, error: ErrorFactory = InputFileError) -> str:
    """The UTF-8 text of an input file, or ``error("<path>: cannot read <what>: <reason>")``."""
    shown = clip(path, 200)
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{shown}: cannot read {what}: no such file") from None
    except UnicodeDecodeError as exc:
        raise error(f"{shown}: cannot read {what}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise error(f"{shown}: cannot read {what}: {exc.strerror or exc}") from None


def parse_text(text: str, source: str, error: ErrorFactory = InputFileError, *, as_json: bool = False) -> Loaded:
    """YAML (or, ``as_json``, JSON) text parsed, or ``error("<source>:<line>: not valid YAML: <problem>")``."""
    if as_json:
        try:
            return Loaded(json.loads(text), {})
        except json.JSONDecodeError as exc:
            raise error(f"{source}:{exc.lineno}: not JSON: {exc.msg}") from None
        except RecursionError:
            raise error(f"{source}: not JSON: nested too deeply") from None
    try:
        return load_yaml(text)
    except YamlError as exc:
        where = f"{source}:{exc.line}" if exc.line else source
        raise error(f"{where}: not valid YAML: {exc.problem}") from None


def load_file(path: str | Path, what: str, error: ErrorFactory = InputFileError, *,
              as_json: bool = False) -> Loaded:
    """Read and parse an input file: :func:`read_file` then :func:`parse_text`, same one-line errors."""
    return parse_text(read_file(path, what, error), str(path), error, as_json=as_json)


def load_yaml(text: str) -> Loaded:
    """Parse one YAML document with the safe tags, bounded as described above; raises :class:`YamlError`."""
    if len(text) > MAX_CHARS:
        raise YamlError(f"the file is larger than {MAX_CHARS // (1024 * 1024)} MiB")
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlError(exc.problem or exc.context or type(exc).__name__, mark.line + 1 if mark else None) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "?")
        raise YamlError(f"character U+{char:04X} is not allowed in YAML (quote or remove it)", line) from None
    except yaml.YAMLError as exc:
        raise YamlError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    except RecursionError:
        raise YamlError(f"nested deeper than {MAX_DEPTH} levels") from None
    finally:
        if loader is not None:
            loader.dispose()
    return Loaded(data, _line_map(node) if node is not None else {})


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts expanded nodes, refuses recursive aliases and deep nesting,
    and turns a constructor's ValueError/KeyError into a ConstructorError at the node."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._spent = 0
        self._depth = 0
        self._open: set[str] = set()
        self._sizes: dict[str, int] = {}

    def _spend(self, units: int, mark: Any) -> None:
        self._spent += units
        if self._spent > MAX_NODES:
            raise ComposerError(None, None, f"more than {MAX_NODES:,} nodes (aliases counted expanded): "
                                "an alias bomb or a file too large", mark)

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # the scanner looks ahead over every open bracket, so refuse deep [[[… before it does
        if self.flow_level >= MAX_DEPTH:
            raise ScannerError(None, None, f"nested deeper than {MAX_DEPTH} levels", self.get_mark())
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent: Any, index: Any) -> Any:
        peek_event: Callable[[], Any] = self.peek_event  # unannotated in types-PyYAML
        event = peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise ComposerError(None, None, f"recursive alias *{clip(event.anchor, 40)}: it refers to a node "
                                    "that contains it", cast("yaml.Mark | None", event.start_mark))
            if event.anchor in self.anchors:
                self._spend(self._sizes.get(cast(str, event.anchor), 1), event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        anchor = event.anchor
        size = len(event.value) // _SCALAR_CHARS_PER_NODE if isinstance(event, yaml.ScalarEvent) else 0
        before = self._spent
        self._spend(1 + size, event.start_mark)
        if anchor is not None:
            self._open.add(anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open.discard(anchor)
        if anchor is not None:
            self._sizes[anchor] = self._spent - before
        return node

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, IndexError):
            tag = node.tag.rsplit(":", 1)[-1]
            value = node.value if isinstance(node, yaml.ScalarNode) else "…"
            raise ConstructorError(None, None, f"{clip(value, 40)!r} is not a valid {clip(tag, 30)}",
                                   node.start_mark) from None


def _line_map(root: yaml.Node) -> dict[tuple[Any, ...], int]:
    """Map key paths to lines; each node is walked once (aliases are not followed), so this stays bounded."""
    out: dict[tuple[Any, ...], int] = {}
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        out.setdefault(path, node.start_mark.line + 1)
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode):
                    out.setdefault(path + (k.value,), k.start_mark.line + 1)
                    stack.append((v, path + (k.value,)))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                stack.append((v, path + (i,)))
    return out
