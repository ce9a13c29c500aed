"""Bootstrap settings of a run or an evaluation, and its replicate values on disk (``bootstrap.npz``).

The intervals themselves are defined and computed in :mod:`maskbench.metrics.bootstrap` (frames resampled with
replacement, ``numpy.random.default_rng(seed).integers(0, F, size=(B, F))[b]`` over the frames in their order).
A results directory written with bootstrap keeps every replicate's value of every metric of every scorer in
``bootstrap.npz`` (RESULTS_SCHEMA.md), so ``bench table --bootstrap`` recomputes intervals at any level and the
paired intervals of differences between scorers without the maps:

    frame_ids        (F,) str     the frames in resampling order
    replicates, seed int64        B and the seed of the draws
    <scorer>/value_<metric>       (B,) float64, NaN where the replicate leaves the metric undefined
    <scorer>/thresholds           (B,) float64, each replicate's best-F1 threshold (NaN: none)
    <scorer>/n_frames, <scorer>/seed
"""

import numbers
from pathlib import Path

import numpy as np

from maskbench.benchmark.results import write_npz_atomic
from maskbench.errors import ConfigError, InputError
from maskbench.metrics.bootstrap import BootstrapResult

REPLICATES_FILE = "bootstrap.npz"
#: How the frames of a run and of `bench evaluate` are ordered for the draws.
RUN_ORDER = "per_image.jsonl order (frame index ascending)"
EVALUATE_ORDER = "frame ids (stems) sorted as strings"
DEFAULT_LEVEL = 95.0


def bootstrap_record(replicates, seed=0, level=DEFAULT_LEVEL, order=RUN_ORDER):
    """``{"replicates", "seed", "level", "frame_order"}`` (what run.json records), or None without replicates.

    Checks the values; ``seed`` and ``level`` other than their defaults need ``replicates``.
    """
    if replicates is None:
        extra = [name for name, value, default in (("seed", seed, 0), ("level", level, DEFAULT_LEVEL))
                 if value != default]
        if extra:
            raise ConfigError(extra, ": only used with bootstrap (the number of replicates)", mentions=("bootstrap",))
        return None
    if isinstance(replicates, bool) or not isinstance(replicates, numbers.Integral) or replicates < 1:
        raise ConfigError("bootstrap", f" {replicates!r}: the number of replicates must be an integer >= 1")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ConfigError("seed", f" {seed!r}: must be an integer >= 0")
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 100:
        raise ConfigError("level", f" {level!r}: must be a percentage strictly between 0 and 100")
    return {"replicates": int(replicates), "seed": int(seed), "level": float(level), "frame_order": order}


def write_replicates(out, results, frame_ids, record):
    """``out/bootstrap.npz`` from ``{scorer: BootstrapResult}`` of the frames ``frame_ids`` (their order)."""
    arrays = {"frame_ids": np.asarray(list(frame_ids), dtype=str),
              "replicates": np.int64(record["replicates"]), "seed": np.int64(record["seed"])}
    for name, res in results.items():
        if res.n_frames != len(frame_ids):
            raise InputError(f"bootstrap: scorer {name} resampled {res.n_frames} frames, {len(frame_ids)} listed")
        arrays.update({f"{name}/{k}": v for k, v in res.to_arrays().items()})
    return write_npz_atomic(Path(out) / REPLICATES_FILE, **arrays)


def read_replicates(path):
    """``(frame ids, {scorer: BootstrapResult})`` from a ``bootstrap.npz`` (or the results directory holding it)."""
    path = Path(path)
    file = path / REPLICATES_FILE if path.is_dir() else path
    if not file.is_file():
        raise InputError(f"{file}: not found (written by `bench run --bootstrap B`)")
    try:
        with np.load(file, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        raise InputError(f"{file}: cannot read as .npz ({err})") from err
    try:
        ids = [str(x) for x in arrays.pop("frame_ids")]
        n_rep, seed = int(arrays.pop("replicates")), int(arrays.pop("seed"))
        per_scorer = {}
        for key, value in arrays.items():
            name, _, field = key.rpartition("/")
            per_scorer.setdefault(name, {})[field] = value
        results = {name: BootstrapResult.from_arrays(a) for name, a in per_scorer.items()}
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{file}: not a maskbench bootstrap file (RESULTS_SCHEMA.md): {err}") from err
    for name, res in results.items():
        if (res.n_frames, res.n_replicates, res.seed) != (len(ids), n_rep, seed):
            raise InputError(f"{file}: scorer {name} holds {res.n_replicates} replicates of {res.n_frames} frames "
                             f"(seed {res.seed}), the file {n_rep} of {len(ids)} (seed {seed})")
    return ids, results


__all__ = ["DEFAULT_LEVEL", "EVALUATE_ORDER", "REPLICATES_FILE", "RUN_ORDER", "bootstrap_record", "read_replicates",
           "write_replicates"]
