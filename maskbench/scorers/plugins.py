"""Scorers from outside the package: plug-in modules and files, and the description of every scorer.

A plug-in is a Python module (a name importable from ``sys.path``) or a ``.py`` file that registers its scorers
with :func:`~maskbench.scorers.register_scorer` / :func:`~maskbench.scorers.register_map_scorer` when imported
(complete examples: ``examples/my_scorer.py``, ``examples/smoothed_msp.py``). :func:`load_plugins` imports each
once and returns what a run records: the spec, its kind, the file and the file's sha256.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from maskbench.errors import InputError
from maskbench.scorers import _registry
from maskbench.scorers.smoothing import SMOOTHINGS

_LOADED: dict[str, PluginRecord] = {}  # resolved spec -> record


@dataclass(frozen=True)
class PluginRecord:
    """A loaded plug-in: ``spec`` as given, ``kind`` ``"module"`` or ``"file"``, its file and the file's sha256."""

    spec: str
    kind: str
    path: str
    sha256: str
    scorers: tuple[str, ...]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scorers"] = list(self.scorers)
        return d


@dataclass(frozen=True)
class ScorerInfo:
    """What ``bench scorers`` prints for one scorer."""

    name: str
    kind: str
    params: dict
    formula: str
    reference: str | None
    source: dict


def _is_file_spec(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def _module_name(path: Path) -> str:
    """A private module name for a plug-in file, unique per absolute path."""
    tag = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    return f"maskbench_plugin_{''.join(c if c.isalnum() else '_' for c in path.stem)}_{tag}"


def _import_file(spec: str, path: Path):
    name = _module_name(path)
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise InputError(f"plug-in {spec}: cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_plugin(spec: str) -> PluginRecord:
    """Import one plug-in (module name or ``.py`` path) once; errors name the plug-in and what went wrong."""
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"plug-in: expected a module name or a .py file, got {spec!r}")
    spec = spec.strip()
    is_file = _is_file_spec(spec)
    key = str(Path(spec).resolve()) if is_file else spec
    if key in _LOADED:
        return _LOADED[key]
    if is_file and not Path(key).is_file():
        raise InputError(f"plug-in {spec}: file not found ({key})")
    before = set(_registry._REGISTRY.names())
    origin = {"kind": "plug-in file" if is_file else "plug-in module", "spec": spec}
    try:
        with _registry.registering_from(origin):
            module = _import_file(spec, Path(key)) if is_file else importlib.import_module(spec)
    except InputError as err:
        raise InputError(f"plug-in {spec}: {err}") from err
    except Exception as err:
        raise InputError(f"plug-in {spec}: {type(err).__name__}: {err}") from err
    path = getattr(module, "__file__", None)
    if path is None:
        raise InputError(f"plug-in {spec}: module {module.__name__} has no file to record")
    added = tuple(n for n in _registry._REGISTRY.names() if n not in before)
    record = PluginRecord(spec, "file" if is_file else "module", str(Path(path).resolve()), _registry._file_sha256(path),
                          added)
    _LOADED[key] = record
    return record


def load_plugins(specs) -> list[PluginRecord]:
    """Import the plug-ins ``specs`` (module names or ``.py`` paths) in order, each once; their records."""
    return [load_plugin(spec) for spec in specs]


def describe_scorers() -> list[ScorerInfo]:
    """Every registered scorer (entry points loaded): hyperparameters with defaults, formula line, provenance.

    The formula line is the first line of the scorer function's docstring. Plug-ins that failed to load are
    in :func:`~maskbench.scorers.plugin_errors`.
    """
    infos = []
    for name in _registry.list_scorers():
        e = _registry.entry(name)
        doc = (e.fn.__doc__ or "").strip()
        infos.append(ScorerInfo(name, e.kind, dict(e.defaults), doc.splitlines()[0] if doc else "(no docstring)",
                                e.reference, dict(e.source)))
    return infos


def format_scorers(infos: list[ScorerInfo], errors: list[_registry.PluginError]) -> str:
    """Readable text of :func:`describe_scorers` (for ``bench scorers``)."""
    lines = []
    for info in infos:
        params = ", ".join(f"{k}={v!r}" for k, v in info.params.items()) or "no hyperparameters"
        src = info.source
        where = src.get("module") if src["kind"] == "built-in" else f"{src.get('path')} (sha256 {src.get('sha256')})"
        lines += [f"{info.name} ({info.kind}): {params}", f"    {info.formula}"]
        if info.reference:
            lines.append(f"    reference: {info.reference}")
        lines.append(f"    from: {src['kind']} {where}")
    options = " | ".join(f"{k!r} ({v})" for k, v in SMOOTHINGS.items())
    lines.append(f"every scorer also takes smoothing=None | {options}")
    for err in errors:
        lines.append(f"FAILED plug-in {err.name} ({err.target}): {err.error}")
    return "\n".join(lines)
