"""One small registry helper for every named family (scorers, datasets, tasks, ...), detectron2 style.

A :class:`Registry` maps names to objects in registration order; a second registration of a name raises, and an
unknown name raises :class:`~maskbench.errors.InputError` listing the known names, so the runner, the tables and
the CLI all speak the same vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from maskbench.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named objects of one ``kind`` (used in messages: "unknown scorer 'x'; known scorers: ...")."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T) -> T:
        """Add ``obj`` under ``name`` (a non-empty string not yet registered); returns ``obj``."""
        if not isinstance(name, str) or not name:
            raise InputError(f"{self.kind} name: expected a non-empty string, got {name!r}")
        if name in self._items:
            raise InputError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj
        return obj

    def unregister(self, name: str) -> None:
        """Remove ``name`` (used to roll back a plug-in whose import failed half-way)."""
        self._items.pop(name, None)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise InputError(f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(self._items)}") from None

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._items)

    def copy(self) -> Registry[T]:
        """A new registry with the same entries (tests register temporary names on a copy)."""
        other = Registry(self.kind)
        other._items = dict(self._items)
        return other

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._items)})"


class ClassRegistry(Registry[type]):
    """Classes registered by their ``name`` attribute with ``@REGISTRY.register`` (datasets, tasks).

    base: the class every registered class subclasses; unknown: ``unknown(name, names) -> exception`` for an
    unknown name (default: the :class:`Registry` message); sort_names: list names alphabetically.
    """

    def __init__(self, kind: str, base: type, *, unknown=None, sort_names: bool = False):
        super().__init__(kind)
        self.base, self._unknown, self._sort = base, unknown, sort_names

    def register(self, cls: type) -> type:  # a decorator: the name comes from the class
        if not (isinstance(cls, type) and issubclass(cls, self.base)) or not getattr(cls, "name", None):
            raise TypeError(f"{cls!r} is not a named {self.base.__name__} subclass")
        return super().register(cls.name, cls)

    def get(self, name: str) -> type:
        if name not in self and self._unknown is not None:
            raise self._unknown(name, self.names())
        return super().get(name)

    def names(self) -> list[str]:
        return sorted(super().names()) if self._sort else super().names()
