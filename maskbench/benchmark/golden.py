"""`bench check`: hold results under regression against a golden file of published numbers.

Golden file (JSON, written by ``bench check --update``; edit tolerances by hand if you like)::

    {
      "maskbench_golden": 1,
      "produced_by": {"command": [...argv of the update...], "maskbench_version": "0.1.0",
                      "results": ["<results.json read>", ...],
                      "runs": [{"dataset", "protocol", "checkpoint_sha256", "versions": {...}}, ...]},
      "tolerance": {"default": 0.0001, "threshold": 0.001},
      "entries": [{"scorer": "msp", "dataset": "smiyc-ra21", "protocol": "smiyc-anomaly",
                   "metrics": {"AP": 0.2797..., "FPR95": 0.72..., "sIoU": null, ...}}, ...]
    }

Comparison, per entry keyed by (scorer, dataset, protocol) and per metric of the golden entry:

* tolerance is absolute, on the stored value (fractions for AP/FPR95/...; raw score for ``threshold``);
  drift when ``|got - golden| > tolerance`` (so tolerance 0 demands bit-identical floats);
* the default tolerance is 1e-4 (0.01 points on the x100 scale: ten times finer than the one-decimal
  tables papers print, and coarse enough for float summation-order noise across machines and library
  versions). ``--tolerance`` overrides the file: ``0`` sets the default, ``AP=1e-3`` one metric;
* null vs a number (either way) is drift; a golden metric or entry absent from the results is drift;
* entries or metrics present in the results but not in the golden file are reported, not failed;
* a per-class metric (``IoU``) is compared class by class, as ``IoU.road`` etc. (tolerance ``IoU.road=...``).

Floats are written with Python's shortest round-trip repr, so a file written by ``--update`` compares
bit-identical with the results it came from.
"""

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from maskbench import __version__
from maskbench.benchmark.metric_keys import is_known, lookup, scalar_names, unknown_metric_message, value_problem
from maskbench.benchmark.results import load_results
from maskbench.errors import ConfigError, InputError
from maskbench.fileio import write_text

GOLDEN_VERSION = 1
DEFAULT_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Finding:
    """One row of the report: status is ``drift``, ``missing``, ``extra`` or ``ok``."""

    status: str
    scorer: str
    dataset: str
    protocol: str
    metric: str
    golden: object = None
    got: object = None
    diff: float | None = None
    tolerance: float | None = None


@dataclass
class CheckReport:
    findings: list
    compared: int
    entries: int

    @property
    def failed(self):
        return [f for f in self.findings if f.status in ("drift", "missing")]

    @property
    def ok(self):
        return not self.failed

    def format(self):
        rows = [f for f in self.findings if f.status != "ok"]
        lines = []
        if rows:
            head = ("status", "scorer", "dataset", "protocol", "metric", "golden", "got", "|diff|", "tolerance")
            table = [head] + [(f.status, f.scorer, f.dataset, f.protocol, f.metric, _show(f.golden), _show(f.got),
                               _num(f.diff), _num(f.tolerance)) for f in rows]
            widths = [max(len(r[i]) for r in table) for i in range(len(head))]
            for i, r in enumerate(table):
                lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
                if i == 0:
                    lines.append("  ".join("-" * w for w in widths))
        n_extra = sum(f.status == "extra" for f in self.findings)
        verdict = "FAIL" if self.failed else "OK"
        lines.append(f"{verdict}: {self.compared} metrics of {self.entries} golden entries compared; "
                     f"{sum(f.status == 'drift' for f in self.findings)} drift, "
                     f"{sum(f.status == 'missing' for f in self.findings)} missing, {n_extra} extra (not failed). "
                     "Values are stored fractions (not x100); tolerance absolute.")
        return "\n".join(lines)


def _num(value):
    return "-" if value is None else repr(value)


def _show(value):
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return repr(value)


def parse_tolerances(items):
    """``["1e-4", "AP=0"]`` -> ``{"default": 1e-4, "AP": 0.0}`` (the ``--tolerance`` option)."""
    out = {}
    for item in items:
        key, sep, value = item.rpartition("=")
        key = key.strip() if sep else "default"
        try:
            tol = float(value)
        except ValueError:
            raise ConfigError("tolerance", f" {item!r}: expected NUMBER or METRIC=NUMBER") from None
        if not math.isfinite(tol) or tol < 0:
            raise ConfigError("tolerance", f" {item!r}: must be a finite number >= 0")
        if not key:
            raise ConfigError("tolerance", f" {item!r}: empty metric name")
        if key != "default" and not is_known(key):
            raise ConfigError("tolerance", f" {item!r}: {unknown_metric_message(key)}")
        out[key] = tol
    return out


def _key(entry):
    return entry["scorer"], entry["dataset"], entry["protocol"]


def collect_entries(results_paths):
    """Every (scorer, dataset, protocol) entry of the results, keyed; a key given twice is an error."""
    entries, sources, loaded = {}, {}, []
    for path in results_paths:
        res = load_results(path)
        loaded.append(res)
        for e in res["results"]:
            k = _key(e)
            if k in entries:
                raise InputError(f"{'/'.join(k)} appears twice, in {sources[k]} and {res['source']}")
            entries[k], sources[k] = e, res["source"]
    if not entries:
        raise InputError("the results hold no entries to check")
    return entries, loaded


def load_golden(path):
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: golden file not found (write one deliberately with `bench check --update`)") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InputError(f"{path}: cannot read as JSON ({err})") from err
    if not isinstance(data, dict) or data.get("maskbench_golden") != GOLDEN_VERSION:
        raise InputError(f"{path}: not a maskbench golden file (expected \"maskbench_golden\": {GOLDEN_VERSION})")
    tol = data.get("tolerance", {})
    if not isinstance(tol, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in tol.values()):
        raise InputError(f"{path}: \"tolerance\" must map metric names (or \"default\") to numbers >= 0")
    for key in tol:
        if key != "default" and not is_known(key):
            raise InputError(f"{path}: \"tolerance\": {unknown_metric_message(key)}")
    if not isinstance(data.get("entries"), list):
        raise InputError(f"{path}: \"entries\" must be a list")
    seen = set()
    for i, e in enumerate(data["entries"]):
        if not (isinstance(e, dict) and all(isinstance(e.get(k), str) for k in ("scorer", "dataset", "protocol"))
                and isinstance(e.get("metrics"), dict)):
            raise InputError(f"{path}: entries[{i}] needs string scorer/dataset/protocol and a metrics object")
        if _key(e) in seen:
            raise InputError(f"{path}: entries[{i}] {'/'.join(_key(e))} is listed twice")
        seen.add(_key(e))
        for name, value in e["metrics"].items():
            if problem := value_problem(name, value):
                raise InputError(f"{path}: entries[{i}] {'/'.join(_key(e))}: {problem}")
    return data


def _same(golden, got, tol):
    """``(drift?, |diff|)`` for one metric value (numbers, null, or anything else compared by equality)."""
    if golden is None or got is None:
        return (golden is None) != (got is None), None
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (golden, got))
    if not numeric:
        return golden != got, None
    diff = abs(float(got) - float(golden))
    return not diff <= tol, diff


def _flat(metrics):
    """Scalar metrics, a per-class mapping as one metric per class (``IoU.road``: compared and toleranced alone)."""
    return {name: lookup(metrics, name) for name in scalar_names(metrics)}


def compare(golden, results, tolerance=None):
    """Compare results entries ``{(scorer, dataset, protocol): entry}`` with a loaded golden dict."""
    tol = {"default": DEFAULT_TOLERANCE, **golden.get("tolerance", {}), **(tolerance or {})}
    findings, compared = [], 0
    golden_keys = set()
    for g in golden["entries"]:
        k = _key(g)
        golden_keys.add(k)
        got_entry = results.get(k)
        if got_entry is None:
            findings.append(Finding("missing", *k, "(entry)", "present", "absent"))
            continue
        got_metrics = _flat(got_entry.get("metrics", {}))
        for metric, gv in _flat(g["metrics"]).items():
            t = float(tol.get(metric, tol["default"]))
            if metric not in got_metrics:
                findings.append(Finding("missing", *k, metric, gv, "absent", None, t))
                continue
            compared += 1
            drift, diff = _same(gv, got_metrics[metric], t)
            findings.append(Finding("drift" if drift else "ok", *k, metric, gv, got_metrics[metric], diff, t))
        extra = [m for m in got_metrics if m not in g["metrics"]]
        if extra:
            findings.append(Finding("extra", *k, ",".join(extra), "absent", "present"))
    for k in sorted(set(results) - golden_keys):
        findings.append(Finding("extra", *k, "(entry)", "absent", "present"))
    return CheckReport(findings, compared, len(golden["entries"]))


def check(golden_path, results_paths, tolerance=None):
    """Load both sides and compare; returns a :class:`CheckReport`."""
    golden = load_golden(golden_path)
    entries, _ = collect_entries(results_paths)
    return compare(golden, entries, tolerance)


def write_golden(golden_path, results_paths, tolerance=None, command=None):
    """Write the golden file from the results (deliberate: `bench check --update`). Returns the dict written.

    Tolerances: those given, else those of the existing golden file, else ``{"default": DEFAULT_TOLERANCE}``.
    """
    golden_path = Path(golden_path)
    entries, loaded = collect_entries(results_paths)
    previous = {}
    if golden_path.exists():
        previous = load_golden(golden_path).get("tolerance", {})
    tol = {"default": DEFAULT_TOLERANCE, **previous, **(tolerance or {})}
    runs = []
    for res in loaded:
        run = res.get("run") or {}
        runs.append({"dataset": (run.get("dataset") or {}).get("name"), "protocol": run.get("protocol"),
                     "checkpoint_sha256": (run.get("checkpoint") or {}).get("sha256"),
                     "resolution": run.get("resolution"), "tta": run.get("tta"),
                     "maskbench_version": run.get("maskbench_version"), "versions": run.get("versions")})
    data = {
        "maskbench_golden": GOLDEN_VERSION,
        "produced_by": {"command": list(command if command is not None else sys.argv),
                        "maskbench_version": __version__,
                        "results": [res["source"] for res in loaded], "runs": runs},
        "tolerance": tol,
        "entries": [{"scorer": k[0], "dataset": k[1], "protocol": k[2], "metrics": e["metrics"]}
                    for k, e in entries.items()],
    }
    write_text(golden_path, json.dumps(data, indent=2) + "\n")
    return data
