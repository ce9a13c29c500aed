"""The package's layers (README, "The package"): every module imports only its own layer and the layers above it,
and the metrics engine never imports torch. Read from the source text, so a function-level import counts too."""

import re
from pathlib import Path

import maskbench

ROOT = Path(maskbench.__file__).resolve().parent
#: Top to bottom, as the README lists them.
LAYERS = ["errors", "registry", "fileio", "workers", "datasets", "model", "scorers", "metrics", "openset", "train",
          "benchmark", "cli"]
IMPORT = re.compile(r"^\s*(?:from|import)\s+([\w.]+)", re.M)


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[0] not in ("__init__", "__main__"):
            yield path, parts[0], IMPORT.findall(path.read_text(encoding="utf-8"))


def test_every_package_module_is_in_a_layer():
    assert {layer for _, layer, _ in _modules()} == set(LAYERS)


def test_imports_go_up_the_layers_only():
    upward = []
    for path, layer, imported in _modules():
        for name in imported:
            parts = name.split(".")
            if parts[0] == "maskbench" and len(parts) > 1 and parts[1] in LAYERS:
                if LAYERS.index(parts[1]) > LAYERS.index(layer):
                    upward.append(f"{path.relative_to(ROOT)} imports {name}")
    assert upward == []


def test_the_check_sees_a_violation(tmp_path):
    """The pattern finds an indented (function-level) import of a lower layer."""
    text = "def f():\n    from maskbench.benchmark.run import RunConfig\n"
    assert IMPORT.findall(text) == ["maskbench.benchmark.run"]


def test_metrics_do_not_import_torch():
    offenders = [str(path.relative_to(ROOT)) for path, layer, imported in _modules()
                 if layer == "metrics" and any(n.split(".")[0] == "torch" for n in imported)]
    assert offenders == []
