"""Leaderboards from stored results directories: rows, columns, values, intervals and marks (rendered as LaTeX,
Markdown, CSV and text by :mod:`.table_formats`).

A leaderboard has one row per scorer and one column per (dataset, protocol) x metric, in the look of
Tables 1/2 of Mask2Anomaly (ICCV'23): values x100 with one decimal, per column the best value in bold and
the second best underlined, ``-`` where a value is missing. It is a function of ``results.json`` files
alone (see RESULTS_SCHEMA.md): no model and no dataset are needed to regenerate it.

Rules (stated in every table's caption/footnote too):

* Direction: FPR95 lower is better, every other metric higher is better.
* Ranking uses the *displayed* one-decimal values, so the marks match what a reader sees: all values equal
  to the best displayed value are bold (ties share the mark); a value is underlined when exactly one
  displayed value in its column is better (competition ranking "1, 1, 3": two tied bests leave no second).
  Columns with fewer than two values carry no marks.
* Every number states its protocol: a column is keyed by (dataset, protocol, FPR95 rule, resolution, TTA)
  and the caption lists each column's protocol. Results of one dataset under two protocols become two
  columns, never one mixed column.
* Two results for the same (scorer, column) from runs with different checkpoints become separate rows
  labelled ``scorer [checkpoint]``; from the same checkpoint they are an error naming both files.
* CSV keeps the raw fractions (full precision, header rows dataset / protocol / metric) so it round-trips.
* A leaderboard whose columns use more than one FPR95 rule names the rule in every FPR95 header.
* With ``bootstrap`` (the runs' ``bootstrap.npz``, :mod:`.table_bootstrap`) every value is followed by its
  percentile interval ``[low, high]`` (CSV: columns ``<metric>.low`` / ``<metric>.high``), and a best value whose
  lead over the second is not significant (paired bootstrap) is marked ``~`` (text), ``†`` (markdown),
  a dagger (LaTeX); the notes define both.
* Per-class metrics (``IoU``, a mapping) are never a column by themselves: ``IoU.road`` selects one class.
"""

from dataclasses import dataclass, field
from pathlib import Path

from maskbench.benchmark.metric_keys import (
    COUNTS, LOWER_IS_BETTER, PER_CLASS, SCORES, is_known, lookup, scalar_names, split_class,
    unknown_metric_message,
)
from maskbench.benchmark.results import load_results, validate_results
from maskbench.benchmark.table_bootstrap import cell_intervals, legend, load_cell_replicates, unsure_leads
from maskbench.errors import ConfigError, InputError

#: Keys of ``metrics`` that are not fractions: printed raw (4 significant digits) and never ranked.
UNSCALED = SCORES | COUNTS
DEFAULT_METRICS = ("AP", "FPR95", "sIoU", "PPV", "F1")
FORMATS = ("latex", "markdown", "csv", "text")



# ----------------------------------------------------------------------------------------------- loading

def _as_results(results):
    """Accept one results dict / path or a list of them; return a list of loaded results dicts."""
    items = results if isinstance(results, (list, tuple)) else [results]
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append(validate_results(item, item.get("source", "<results>")))
        else:
            out.append(load_results(item))
    if not out:
        raise InputError("no results given")
    return out


# ------------------------------------------------------------------------------------------- the model

@dataclass(frozen=True)
class Column:
    """A column group: one dataset evaluated under one protocol (every metric column under it shares it)."""

    dataset: str
    protocol: str
    fpr95_rule: str | None
    resolution: str | None
    tta: str | None
    description: str | None = None

    @property
    def key(self):
        return (self.dataset, self.protocol, self.fpr95_rule, self.resolution, self.tta)


@dataclass
class Leaderboard:
    """Scorers x (column group x metric) values as fractions (``None`` = missing), plus their footnotes.

    With bootstrap: ``intervals`` ``{(row, ci, metric): (low, high)}``, ``unsure`` (best cells whose lead is not
    significant) and ``legend(symbol)`` (the notes that define them). ``row_head`` names the row labels;
    ``label_columns`` ``[(header, {row: text})]`` are text columns printed after them, never ranked (the methods
    table's "OoD data", :mod:`maskbench.benchmark.methods_table`).
    """

    rows: list
    columns: list
    labels: list
    metrics: list
    values: dict
    notes: list
    intervals: dict = field(default_factory=dict)
    unsure: set = field(default_factory=set)
    legend: object = None
    row_head: str = "Scorer"
    label_columns: list = field(default_factory=list)

    def value(self, row, column_index, metric):
        return self.values.get((row, column_index, metric))

    def row_cells(self, row):
        """The row's label followed by its text in each of ``label_columns``."""
        return [row] + [cells.get(row, "") for _, cells in self.label_columns]

    @property
    def row_heads(self):
        return [self.row_head] + [head for head, _ in self.label_columns]

    @property
    def plain_row_heads(self):
        """The headers of text and CSV: the row head in lower case (``scorer``), the text columns as given."""
        return [self.row_head.lower()] + [head for head, _ in self.label_columns]

    def notes_with(self, symbol):
        """The notes, with the bootstrap legend (mark ``symbol``) after the marks' rule."""
        extra = self.legend(symbol) if self.legend else []
        return self.notes[:2] + extra + self.notes[2:]

    def metric_head(self, column_index, metric, name, escape=str):
        """``name`` of a metric header, with the column's FPR95 rule (``escape`` d) when the leaderboard mixes rules."""
        rules = {c.fpr95_rule for c in self.columns}
        if metric.startswith("FPR95") and len(rules) > 1:
            return f"{name} [{escape(self.columns[column_index].fpr95_rule or 'rule not recorded')}]"
        return name


def _checkpoint(run):
    ckpt = (run or {}).get("checkpoint") or {}
    return ckpt.get("sha256") or ckpt.get("path"), ckpt.get("path"), ckpt.get("sha256")


def _column_of(entry, run):
    details = entry.get("protocol_details") or {}
    return Column(entry["dataset"], entry["protocol"], details.get("fpr95_rule") or run.get("fpr95_rule"),
                  run.get("resolution"), run.get("tta"), details.get("description"))


def _column_labels(columns):
    """Dataset name, plus the fields that tell apart columns of the same dataset."""
    fields = ("protocol", "fpr95_rule", "resolution", "tta")
    labels = []
    for col in columns:
        same = [c for c in columns if c.dataset == col.dataset]
        differing = [f for f in fields if len({getattr(c, f) for c in same}) > 1]
        extra = ", ".join(f"{getattr(col, f)}" for f in differing)
        labels.append(f"{col.dataset} ({extra})" if extra else col.dataset)
    return labels


def build_leaderboard(results, metrics=None, *, bootstrap=False, level=95.0, replicates=None, seed=None):
    """Collect the results (dicts or paths) into a :class:`Leaderboard` of the given metric keys.

    ``metrics=None`` takes those of DEFAULT_METRICS present in the results (all keys if none is). ``bootstrap``:
    intervals at ``level`` and the significance of every lead, from the ``bootstrap.npz`` beside each results.json
    (``replicates`` / ``seed``: check that they hold these B and seed).
    """
    loaded = _as_results(results)
    if metrics is not None and not metrics:
        raise ConfigError("metrics", ": give at least one metric")
    entries = []  # (scorer, column, checkpoint, entry, source)
    columns = {}
    for res in loaded:
        run = res.get("run") or {}
        for entry in res["results"]:
            col = _column_of(entry, run)
            columns.setdefault(col.key, col)
            entries.append((entry["scorer"], col.key, _checkpoint(run), entry, res["source"]))
    if not entries:
        raise InputError(f"no result entries in {', '.join(r['source'] for r in loaded)}")
    available = sorted({m for *_, e, _ in entries for m in scalar_names(e["metrics"])})
    if metrics is None:  # the default columns the results have (per-class IoU only when asked for)
        metrics = [m for m in DEFAULT_METRICS if m in available] or [m for m in available if split_class(m)[1] is None]
    metrics = list(metrics)
    for m in metrics:
        if m in PER_CLASS:
            raise ConfigError("metrics", f": {m} is per class; name one class as {m}.<class>, e.g. {m}.road")
        if not is_known(m):
            raise ConfigError("metrics", f": {unknown_metric_message(m)}")
    unknown = [m for m in metrics if m not in available]
    if unknown:
        raise ConfigError("metrics", f": {', '.join(unknown)} not in any result; available: {', '.join(available)}")

    row_of = _row_labels(entries)
    column_list = list(columns.values())
    index = {c.key: i for i, c in enumerate(column_list)}
    rows, values, seen = [], {}, {}
    for (scorer, ckey, _, entry, source), row in zip(entries, row_of):
        if (row, ckey) in seen:
            raise InputError(f"{row} on {ckey[0]} ({ckey[1]}) appears twice, in {seen[row, ckey]} and in {source}, "
                             "with the same checkpoint; give each result once")
        seen[row, ckey] = source
        if row not in rows:
            rows.append(row)
        for m in metrics:
            values[row, index[ckey], m] = lookup(entry["metrics"], m)
    labels = _column_labels(column_list)
    board = Leaderboard(rows, column_list, labels, metrics, values, [])
    board.notes = _footnotes(board, entries, row_of, index)
    if bootstrap:
        cells = {(row, index[ckey]): (scorer, source) for (scorer, ckey, _, _, source), row in zip(entries, row_of)}
        reps = load_cell_replicates(cells, replicates, seed)
        board.intervals = cell_intervals(reps, metrics, level)
        board.unsure = unsure_leads(marks(board), lambda ci, m: _shown(board, ci, m), reps, labels, level)
        board.legend = lambda symbol: legend(symbol, level, reps)
    return board


def _row_labels(entries):
    """``scorer``, or ``scorer [checkpoint]`` for every row when one (scorer, column) has several checkpoints."""
    cells = {}
    for scorer, ckey, ckpt, *_ in entries:
        cells.setdefault((scorer, ckey), set()).add(ckpt[0])
    if all(len(c) == 1 for c in cells.values()):
        return [scorer for scorer, *_ in entries]
    ckpts = {e[2] for e in entries}  # (identity, path, sha256)
    names = {i: Path(p).stem if p else (s or "unknown")[:12] for i, p, s in ckpts}
    if len(set(names.values())) < len(names):  # two checkpoints with one file name: use their hashes
        names = {i: (s or str(i))[:12] for i, _, s in ckpts}
    return [f"{scorer} [{names[ckpt[0]]}]" for scorer, _, ckpt, *_ in entries]


def _footnotes(board, entries, row_of, index):
    notes = [
        "Values x100 (one decimal). FPR95: lower is better; every other metric: higher is better.",
        "Best per column in bold, second underlined, ranked on the displayed values: ties share the mark; "
        "a value is underlined when exactly one value in its column is better; columns with fewer than two "
        "values are not marked. '-': not available.",
    ]
    for col, label in zip(board.columns, board.labels):
        parts = [f"{label}: protocol {col.protocol}"]
        if col.description:
            parts[0] += f" ({col.description})"
        parts.append(f"FPR95 rule {col.fpr95_rule or 'not recorded'}")
        parts.append(f"resolution {col.resolution or 'not recorded'}")
        parts.append(f"TTA {col.tta or 'not recorded'}")
        notes.append("; ".join(parts) + ".")
    ckpts = sorted({(p or "?", s or "?") for _, _, (_, p, s), *_ in entries})
    if ckpts and ckpts != [("?", "?")]:
        notes.append("Checkpoint: " + "; ".join(f"{Path(p).name} (sha256 {s[:12]})" for p, s in ckpts) + ".")
    for (scorer, ckey, _, entry, _), row in zip(entries, row_of):
        missing = [m for m in board.metrics if board.value(row, index[ckey], m) is None]
        reasons = entry.get("notes") or {}
        if missing and reasons:
            label = board.labels[index[ckey]]
            why = "; ".join(f"{k}: {v}" for k, v in reasons.items())
            notes.append(f"{row} on {label}: {', '.join(missing)} not available ({why}).")
    return notes


# ---------------------------------------------------------------------------------------------- ranking

def display(metric, value):
    """The printed text of one value: ``-`` when missing, x100 with one decimal for fractions."""
    if value is None:
        return "-"
    if metric in UNSCALED:
        return f"{value:.4g}"
    return f"{100 * value:.1f}"


def _shown(board, ci, m):
    """``{row: displayed value}`` of one column (rows with a value)."""
    return {r: float(display(m, board.value(r, ci, m))) for r in board.rows if board.value(r, ci, m) is not None}


def marks(board):
    """``{(row, column_index, metric): "best" | "second"}`` from the displayed values (see module rules)."""
    out = {}
    for ci in range(len(board.columns)):
        for m in board.metrics:
            if m in UNSCALED:
                continue
            shown = _shown(board, ci, m)
            if len(shown) < 2:
                continue
            sign = 1.0 if m in LOWER_IS_BETTER else -1.0
            for r, v in shown.items():
                better = sum(1 for w in shown.values() if sign * w < sign * v)
                if better == 0:
                    out[r, ci, m] = "best"
                elif better == 1:
                    out[r, ci, m] = "second"
    return out


def parse_metrics(text):
    """``"AP,FPR95"`` -> ``["AP", "FPR95"]`` (the ``--metrics`` option)."""
    items = [m.strip() for m in text.split(",")]
    if not all(items):
        raise ConfigError("metrics", f" {text!r}: empty metric name")
    return items


__all__ = ["DEFAULT_METRICS", "FORMATS", "LOWER_IS_BETTER", "UNSCALED", "Column", "Leaderboard", "build_leaderboard",
           "display", "marks", "parse_metrics"]
