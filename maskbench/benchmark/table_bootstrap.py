"""Bootstrap intervals and paired significance of a leaderboard's leads, from the runs' ``bootstrap.npz``.

Every cell's interval is the percentile interval of its stored replicate values
(:meth:`~maskbench.metrics.bootstrap.BootstrapResult.interval`, at the table's level). A best value's lead is
*significant* when, for every runner-up (the best displayed value among the other rows of the column), the
paired bootstrap interval of their difference (:func:`~maskbench.metrics.bootstrap.paired_difference`: the same
replicates, because the scorers of a run share one forward and the draws depend only on the frames, B and seed)
lies entirely on the better side of 0. Rows resampled over other frames, B or seed cannot be paired: an error.
"""

from pathlib import Path

from maskbench.benchmark.metric_keys import LOWER_IS_BETTER
from maskbench.benchmark.replicates import REPLICATES_FILE, read_replicates
from maskbench.errors import InputError
from maskbench.metrics.bootstrap import METRICS, paired_difference


def load_cell_replicates(cells, replicates=None, seed=None):
    """``{(row, column index): (frame ids, BootstrapResult)}`` for ``cells`` ``{(row, column index): (scorer,
    results.json path)}``, from the ``bootstrap.npz`` beside each results.json; ``replicates`` / ``seed`` (None: any)
    must match what is stored."""
    files, out = {}, {}
    for key, (scorer, source) in cells.items():
        folder = Path(source).parent
        if folder not in files:
            if not (folder / REPLICATES_FILE).is_file():
                raise InputError(f"{folder}: no {REPLICATES_FILE}, so no intervals (run it with --bootstrap B)")
            files[folder] = read_replicates(folder / REPLICATES_FILE)
        ids, results = files[folder]
        if scorer not in results:
            raise InputError(f"{folder / REPLICATES_FILE}: no replicates of scorer {scorer}")
        res = results[scorer]
        for name, want, got in (("replicates", replicates, res.n_replicates), ("seed", seed, res.seed)):
            if want is not None and want != got:
                raise InputError(f"{folder / REPLICATES_FILE}: {name} {got}, not the {want} asked for")
        out[key] = (ids, res)
    return out


def cell_intervals(cell_replicates, metrics, level):
    """``{(row, column index, metric): (low, high)}`` (None bounds where no replicate defines the metric)."""
    out = {}
    for (row, ci), (_, res) in cell_replicates.items():
        for m in metrics:
            if m in METRICS:
                interval = res.interval(m, level)
                out[row, ci, m] = (interval["low"], interval["high"])
    return out


def unsure_leads(marks, shown, cell_replicates, labels, level):
    """The best cells ``(row, column index, metric)`` whose lead over the runner-up is not significant.

    ``marks``: ``{(row, ci, m): "best" | "second"}``; ``shown(ci, m)``: ``{row: displayed value}`` of a column;
    ``labels``: the column labels (for errors).
    """
    unsure = set()
    for (row, ci, m), mark in marks.items():
        if mark != "best" or m not in METRICS:
            continue
        values = shown(ci, m)
        others = {r: v for r, v in values.items() if r != row}
        pick = min if m in LOWER_IS_BETTER else max
        runner_up = pick(others.values())
        rivals = [r for r, v in others.items() if v == runner_up]
        ids, mine = cell_replicates[row, ci]
        for rival in rivals:
            rival_ids, theirs = cell_replicates[rival, ci]
            if rival_ids != ids:
                raise InputError(f"paired bootstrap on {labels[ci]}: {row} and {rival} were resampled over different "
                                 "frames")
            d = paired_difference(mine, theirs, m, level)
            better = d["low"] is not None and (d["high"] < 0 if m in LOWER_IS_BETTER else d["low"] > 0)
            if not better:
                unsure.add((row, ci, m))
                break
    return unsure


def legend(symbol, level, cell_replicates):
    """The sentences that define the intervals and the mark ``symbol`` (for the notes of a table)."""
    draws = sorted({(res.n_replicates, res.seed) for _, res in cell_replicates.values()})
    how = "; ".join(f"B = {b}, seed {s}" for b, s in draws)
    return [f"[low, high]: {level:g}% percentile bootstrap interval over the frames resampled with replacement "
            f"({how}); every scorer of a run is resampled with the same draws.",
            f"{symbol}: the best value's lead over the second is not significant (the paired {level:g}% bootstrap "
            "interval of their difference contains 0)."]


__all__ = ["cell_intervals", "legend", "load_cell_replicates", "unsure_leads"]
