"""One registry shape for every extension point: backends, sources, trackers and sinks.

A Registry maps a name to an entry. Built-in entries are written as "package.module:attribute" strings and
imported only when that name is used, so a missing optional package matters only when its entry is chosen.
Other packages add entries through Python entry points (group `edgedet.backends`, `edgedet.sources`,
`edgedet.trackers`, `edgedet.sinks`), read the first time a name is looked up that is not built in, or the
valid names are listed. An unknown name raises ConfigError listing the valid ones.

    [project.entry-points."edgedet.sinks"]
    http = "my_package.http_sink:open_http_sink"

What each group's entry must be (a Backend class, a source Scheme or opener, a tracker factory, a sink opener)
is in docs/architecture.md and in the registry's `contract` text.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, Generic, TypeVar

from edgedet.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = ["Registry", "resolve_target"]


def resolve_target(target: str) -> Any:
    """Import "package.module:attribute" (attribute may be dotted) and return the attribute."""
    module_name, _, attr = target.partition(":")
    if not attr:
        raise ConfigError(f"registry target {target!r} must be written package.module:attribute")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """name -> entry, resolved on demand; built-ins first, then entry points of `group`.

    kind: what the entries are, for messages ("backend", "sink"). contract: one line saying what an entry must
    be. adapt: turns a loaded object into the entry type (e.g. wraps a bare function), or raises TypeError.
    """

    def __init__(
        self,
        kind: str,
        group: str,
        builtins: dict[str, str | T] | None = None,
        *,
        contract: str = "",
        adapt: Callable[[str, Any], T] | None = None,
    ) -> None:
        self.kind = kind
        self.group = group
        self.contract = contract
        self._adapt = adapt
        self._targets: dict[str, str | T] = dict(builtins or {})
        self._loaded: dict[str, T] = {}
        self._entry_points: dict[str, metadata.EntryPoint] | None = None

    # --- adding -------------------------------------------------------------------------------------------

    def register(self, name: str, entry: str | T, *, replace: bool = False) -> None:
        """Add `name` -> entry (an object, or a "module:attribute" string resolved on first use)."""
        if name in self._targets and not replace:
            raise ConfigError(f"{self.kind} {name!r} is already registered; pass replace=True to override it")
        self._targets[name] = entry
        self._loaded.pop(name, None)

    def unregister(self, name: str) -> None:
        self._targets.pop(name, None)
        self._loaded.pop(name, None)

    # --- looking up ---------------------------------------------------------------------------------------

    def _plugins(self) -> dict[str, metadata.EntryPoint]:
        if self._entry_points is None:
            self._entry_points = {ep.name: ep for ep in metadata.entry_points(group=self.group)}
        return self._entry_points

    def names(self) -> list[str]:
        """Every valid name: the registered ones in the order they were added, then installed plugins' (sorted)."""
        return [*self._targets, *sorted(n for n in self._plugins() if n not in self._targets)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._targets or name in self._plugins())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def get(self, name: str) -> T:
        """The entry for `name`, imported on first use. ConfigError for an unknown name (lists the valid ones)
        or for a plugin that fails to load (names the package to fix)."""
        if name in self._loaded:
            return self._loaded[name]
        if name in self._targets:
            target = self._targets[name]
            obj = resolve_target(target) if isinstance(target, str) else target
            where = target if isinstance(target, str) else f"the registered {self.kind}"
        elif name in self._plugins():
            ep = self._plugins()[name]
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin must say which package to fix, not crash the CLI
                raise ConfigError(
                    f"{self.kind} {name!r} from entry point {ep.value!r} (group {self.group}) failed to load: "
                    f"{type(exc).__name__}: {exc}; fix or uninstall the package that provides it"
                ) from exc
            where = f"entry point {ep.value!r}"
        else:
            raise ConfigError(f"unknown {self.kind} {name!r}: choose one of {', '.join(self.names())}")
        if self._adapt is not None:
            try:
                obj = self._adapt(name, obj)
            except TypeError as exc:
                raise ConfigError(
                    f"{self.kind} {name!r} ({where}) is not usable: {exc}; {self.contract}"
                ) from exc
        self._loaded[name] = obj
        return obj
