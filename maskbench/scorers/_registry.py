"""Scorer registry: one flat name table, keyword-only hyperparameters you can list, shared execution.

Two kinds of scorer, both registered here and resolved by :func:`get_scorer`:

* per-pixel (:func:`register_scorer`): ``fn(queries, *, **hyperparameters) -> chunk function``; the chunk function
  maps the shared context of a chunk of pixels (:class:`~maskbench.scorers._common.Pixels`: P, σ(M), S) to one
  score per pixel, so any number of them share one pass over the mask logits;
* whole-map (:func:`register_map_scorer`): ``fn(class_logits (Q, K+1), mask_logits (Q, H, W), *,
  **hyperparameters) -> (H, W)`` for scorers that need spatial context.

Any scorer also takes ``smoothing`` (:mod:`maskbench.scorers.smoothing`), a post-process of its finished map.
Installed packages add scorers through the entry-point group ``maskbench.scorers``: each entry point names a
module that registers its scorers when imported; they are loaded once, lazily (when a name is not registered,
or when the scorers are listed), and one that fails to load is reported by name (:func:`plugin_errors`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch

from maskbench.errors import InputError
from maskbench.registry import Registry
from maskbench.scorers._common import ChunkScore, Queries, check_finite, check_inputs
from maskbench.scorers._run import check_outputs, run_scorers
from maskbench.scorers.smoothing import check_smoothing, smooth

ENTRY_POINT_GROUP = "maskbench.scorers"
PER_PIXEL, MAP = "per-pixel", "map"
RESERVED = ("smoothing",)  # a parameter every scorer takes (the map post-process)


@dataclass(frozen=True)
class _Entry:
    name: str
    kind: str
    fn: Callable
    defaults: Mapping[str, object]
    check: Callable[[dict], dict] | None
    reference: str | None
    source: Mapping[str, object]


@dataclass(frozen=True)
class PluginError:
    """A plug-in that failed to load: its name (entry point or spec), what it points to, and the error."""

    name: str
    target: str
    error: str


_REGISTRY: Registry[_Entry] = Registry("scorer")
_ORIGINS: list[dict] = []  # source records of the plug-ins being imported (innermost last)
_PLUGIN_ERRORS: list[PluginError] = []
_entry_points_loaded = False


@dataclass(frozen=True, eq=False)
class Scorer:
    """A named scorer with its hyperparameters bound: ``scorer(class_logits, mask_logits) -> (H, W)`` float32."""

    name: str
    _params: Mapping[str, object]
    _entry: _Entry

    @property
    def kind(self) -> str:
        """``"per-pixel"`` or ``"map"``."""
        return self._entry.kind

    @property
    def params(self) -> dict:
        """Every hyperparameter (defaults included, ``smoothing`` when set) as a fresh JSON-ready dict."""
        return dict(self._params)

    @property
    def smoothing(self) -> str | None:
        return self._params.get("smoothing")

    @property
    def source(self) -> dict:
        """Where the scorer comes from (built-in module, or plug-in module / file with its sha256)."""
        return dict(self._entry.source)

    def _hyperparameters(self) -> dict:
        return {k: v for k, v in self._params.items() if k not in RESERVED}

    def prepare(self, queries: Queries) -> ChunkScore:
        """Query-level work for one image; returns the per-chunk pixel function (per-pixel scorers)."""
        if self.kind != PER_PIXEL:
            raise TypeError(f"scorer {self.name!r} is a map scorer: call score_map")
        return self._entry.fn(queries, **self._hyperparameters())

    def score_map(self, class_logits: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor:
        """The raw output of a map scorer (unchecked, unsmoothed); use ``scorer(...)`` or :func:`score_all`."""
        if self.kind != MAP:
            raise TypeError(f"scorer {self.name!r} is a per-pixel scorer: call prepare")
        return self._entry.fn(class_logits, mask_logits, **self._hyperparameters())

    def __call__(self, class_logits: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor:
        return score_all({self.name: self}, class_logits, mask_logits)[self.name]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"Scorer({self.name}{', ' if args else ''}{args})"


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source(fn: Callable) -> dict:
    """Source record of a scorer function being registered."""
    module = getattr(fn, "__module__", None) or "?"
    if not _ORIGINS and module.startswith("maskbench."):
        return {"kind": "built-in", "module": module}
    record = dict(_ORIGINS[-1]) if _ORIGINS else {"kind": "registered"}
    path = getattr(sys.modules.get(module), "__file__", None)
    record.update(module=module, path=path, sha256=_file_sha256(path) if path else None)
    return record


def _hyperparameter_defaults(name: str, fn: Callable, skip: int) -> dict:
    """Defaults of ``fn``'s parameters after the first ``skip``: all keyword-only with a default."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError) as err:
        raise TypeError(f"scorer {name!r}: cannot read the signature of {fn!r} ({err})") from None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if len(parameters) < skip or any(p.kind not in positional for p in parameters[:skip]):
        raise TypeError(f"scorer {name!r}: the function must take {skip} positional argument(s) first")
    defaults = {}
    for p in parameters[skip:]:
        if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.default is inspect.Parameter.empty:
            raise TypeError(f"scorer {name!r}: hyperparameter {p.name!r} must be keyword-only with a default")
        if p.name in RESERVED:
            raise TypeError(f"scorer {name!r}: {p.name!r} is reserved (every scorer takes it)")
        defaults[p.name] = p.default
    return defaults


def _register(name, kind, fn, skip, check, reference):
    defaults = _hyperparameter_defaults(name, fn, skip)
    _REGISTRY.register(name, _Entry(name, kind, fn, MappingProxyType(defaults), check, reference, _source(fn)))


def register_scorer(name: str, fn: Callable[..., ChunkScore], *, check: Callable[[dict], dict] | None = None,
                    reference: str | None = None) -> None:
    """Register the per-pixel scorer ``fn(queries, *, **hyperparameters) -> chunk function`` under ``name``.

    Every hyperparameter must be keyword-only with a default. ``check(params) -> params`` validates and
    normalises user values (raising :class:`InputError`); ``reference`` names the reference code it follows.
    """
    _register(name, PER_PIXEL, fn, 1, check, reference)


def register_map_scorer(name: str, fn: Callable[..., torch.Tensor], *, check: Callable[[dict], dict] | None = None,
                        reference: str | None = None) -> None:
    """Register ``fn(class_logits (Q, K+1), mask_logits (Q, H, W), *, **hyperparameters) -> (H, W)`` under ``name``.

    ``fn`` must not modify its inputs; its map is checked (floating point, shape ``(H, W)``, on the logits'
    device, finite) and returned as float32. Hyperparameters, ``check`` and ``reference`` as for
    :func:`register_scorer`.
    """
    _register(name, MAP, fn, 2, check, reference)


@contextlib.contextmanager
def registering_from(origin: dict):
    """Scorers registered inside are recorded as coming from ``origin``; if the block raises, they are removed."""
    before = set(_REGISTRY.names())
    _ORIGINS.append(origin)
    try:
        yield
    except BaseException:
        for name in set(_REGISTRY.names()) - before:
            _REGISTRY.unregister(name)
        raise
    finally:
        _ORIGINS.pop()


def load_entry_points() -> None:
    """Import every entry point of the group ``maskbench.scorers`` (once per process); failures are kept."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        origin = {"kind": "entry point", "entry_point": f"{ep.name} = {ep.value}",
                  "distribution": f"{dist.name} {dist.version}" if dist is not None else None}
        try:
            with registering_from(origin):
                ep.load()
        except Exception as err:  # reported by plugin_errors() and get_scorer(), never skipped silently
            _PLUGIN_ERRORS.append(PluginError(ep.name, ep.value, f"{type(err).__name__}: {err}"))


def plugin_errors() -> list[PluginError]:
    """Plug-ins (entry points) that failed to load, in the order they were tried."""
    return list(_PLUGIN_ERRORS)


def entry(name: str) -> _Entry:
    """The registration of ``name``; entry points are loaded when it is not registered yet."""
    if name not in _REGISTRY:
        load_entry_points()
    if name not in _REGISTRY:
        message = f"unknown scorer {name!r}; known scorers: {', '.join(_REGISTRY.names())}"
        if _PLUGIN_ERRORS:
            message += "; plug-ins that failed to load: " + "; ".join(
                f"{e.name} ({e.target}): {e.error}" for e in _PLUGIN_ERRORS)
        raise InputError(message)
    return _REGISTRY.get(name)


def list_scorers() -> list[str]:
    """Registered scorer names (built-ins first, in registration order), after loading the entry points."""
    load_entry_points()
    return _REGISTRY.names()


def get_scorer(name: str, **params) -> Scorer:
    """The scorer ``name`` with hyperparameters ``params`` (the others keep their defaults)."""
    e = entry(name)
    smoothing = check_smoothing(params.pop("smoothing", None))
    unknown = sorted(set(params) - set(e.defaults))
    if unknown:
        known = ", ".join(e.defaults) or "none"
        raise InputError(f"scorer {name!r}: unknown hyperparameter(s) {unknown}; it takes: {known} (and smoothing)")
    merged = {**e.defaults, **params}
    if e.check is not None:
        merged = e.check(merged)
    if smoothing is not None:
        merged["smoothing"] = smoothing
    return Scorer(name, MappingProxyType(merged), e)


def _check_map(label: str, m, h: int, w: int, device) -> torch.Tensor:
    """A map scorer's output as float32 (a copy), checked like a per-pixel scorer's chunks."""
    if not isinstance(m, torch.Tensor) or not m.is_floating_point() or tuple(m.shape) != (h, w) or m.device != device:
        got = f"{m.dtype} {tuple(m.shape)} on {m.device}" if isinstance(m, torch.Tensor) else type(m).__name__
        raise InputError(f"scorer {label!r}: expected a floating-point ({h}, {w}) map on {device}, got {got}")
    check_finite(f"scorer {label!r}: its map", m)
    return m.to(torch.float32, copy=True)


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
    ``out`` (``label -> (H, W)`` float32 maps) are written and returned instead of new maps. The per-pixel
    scorers share one chunked pass (:func:`maskbench.scorers._run.run_scorers`); map scorers then get the
    logits; ``smoothing`` is applied last, map by map.
    """
    items = list(scorers.items()) if isinstance(scorers, Mapping) else \
        [(s if isinstance(s, str) else s.name, s) for s in scorers]
    resolved: dict[str, Scorer] = {}
    for label, s in items:
        if label in resolved:
            raise InputError(f"scorers: {label!r} given twice; pass a mapping label -> scorer to run several settings")
        resolved[label] = get_scorer(s) if isinstance(s, str) else s
    check_inputs(class_logits, mask_logits)
    _, h, w = mask_logits.shape
    if out is not None:
        check_outputs(out, resolved, h, w, mask_logits)
    pixel = {label: s.prepare for label, s in resolved.items() if s.kind == PER_PIXEL}
    maps = {}
    if pixel:
        maps = run_scorers(pixel, class_logits, mask_logits, chunk_pixels=chunk_pixels,
                           out=None if out is None else {label: out[label] for label in pixel})
    else:
        check_finite("mask_logits", mask_logits)
    with torch.no_grad():
        for label, s in resolved.items():
            if s.kind == MAP:
                m = _check_map(label, s.score_map(class_logits, mask_logits), h, w, mask_logits.device)
                maps[label] = m if out is None else out[label].copy_(m)
            if s.smoothing is not None:
                smoothed = smooth(s.smoothing, maps[label])
                maps[label] = smoothed if out is None else out[label].copy_(smoothed)
    return {label: maps[label] for label in resolved}
