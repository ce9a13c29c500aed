"""Scorer registry: one flat name table, keyword-only hyperparameters you can list, shared execution."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch

from maskbench.errors import InputError
from maskbench.scorers._common import ChunkScore, Queries, run_scorers


@dataclass(frozen=True)
class _Entry:
    fn: Callable[..., ChunkScore]
    defaults: Mapping[str, object]
    check: Callable[[dict], dict] | None


_REGISTRY: dict[str, _Entry] = {}


@dataclass(frozen=True, eq=False)
class Scorer:
    """A named scorer with its hyperparameters bound: ``scorer(class_logits, mask_logits) -> (H, W)`` float32."""

    name: str
    _params: Mapping[str, object]
    _entry: _Entry

    @property
    def params(self) -> dict:
        """Every hyperparameter (defaults included) as a fresh JSON-ready dict, to record with the results."""
        return dict(self._params)

    def prepare(self, queries: Queries) -> ChunkScore:
        """Query-level work for one image; returns the per-chunk pixel function."""
        return self._entry.fn(queries, **self._params)

    def __call__(self, class_logits: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor:
        return score_all({self.name: self}, class_logits, mask_logits)[self.name]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"Scorer({self.name}{', ' if args else ''}{args})"


def register_scorer(
    name: str,
    fn: Callable[..., ChunkScore],
    *,
    check: Callable[[dict], dict] | None = None,
) -> None:
    """Register ``fn(queries, *, **hyperparameters) -> chunk function`` under ``name``.

    Every hyperparameter must be keyword-only with a default. ``check(params) -> params`` validates and
    normalises user values (raising :class:`InputError`).
    """
    if name in _REGISTRY:
        raise InputError(f"scorer {name!r} is already registered")
    defaults = {}
    for p in list(inspect.signature(fn).parameters.values())[1:]:
        if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.default is inspect.Parameter.empty:
            raise TypeError(f"scorer {name!r}: hyperparameter {p.name!r} must be keyword-only with a default")
        defaults[p.name] = p.default
    _REGISTRY[name] = _Entry(fn, MappingProxyType(defaults), check)


def list_scorers() -> list[str]:
    """Registered scorer names, in registration order."""
    return list(_REGISTRY)


def get_scorer(name: str, **params) -> Scorer:
    """The scorer ``name`` with hyperparameters ``params`` (the others keep their defaults)."""
    if name not in _REGISTRY:
        raise InputError(f"unknown scorer {name!r}; known scorers: {', '.join(_REGISTRY)}")
    entry = _REGISTRY[name]
    unknown = sorted(set(params) - set(entry.defaults))
    if unknown:
        known = ", ".join(entry.defaults) or "none"
        raise InputError(f"scorer {name!r}: unknown hyperparameter(s) {unknown}; it takes: {known}")
    merged = {**entry.defaults, **params}
    if entry.check is not None:
        merged = entry.check(merged)
    return Scorer(name, MappingProxyType(merged), entry)


def score_all(
    scorers: Iterable[str | Scorer] | Mapping[str, str | Scorer],
    class_logits: torch.Tensor,
    mask_logits: torch.Tensor,
    *,
    chunk_pixels: int | None = None,
    out: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Run several scorers on one forward output, computing softmax, sigmoid and S once.

    ``scorers``: names or :class:`Scorer` objects (keyed by their name), or a mapping
    ``label -> scorer`` to run one scorer under several settings. Returns ``label -> (H, W)`` float32;
    ``out`` (``label -> (H, W)`` float32 maps) are written and returned instead of new maps
    (:func:`maskbench.scorers._common.run_scorers`).
    """
    if isinstance(scorers, Mapping):
        items = list(scorers.items())
    else:
        items = [(s if isinstance(s, str) else s.name, s) for s in scorers]
    resolved: dict[str, Scorer] = {}
    for label, s in items:
        if label in resolved:
            raise InputError(f"scorers: {label!r} given twice; pass a mapping label -> scorer to run several settings")
        resolved[label] = get_scorer(s) if isinstance(s, str) else s
    return run_scorers(
        {label: s.prepare for label, s in resolved.items()},
        class_logits,
        mask_logits,
        chunk_pixels=chunk_pixels,
        out=out,
    )
