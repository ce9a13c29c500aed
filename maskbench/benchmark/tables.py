"""Leaderboards from stored results directories: LaTeX (booktabs), Markdown, CSV and plain text.

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

import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

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

_LATEX_METRIC = {"FPR95": r"FPR$_{95}$", "F1": r"F1$^*$", "MDM_F1_60": r"MDM$_{0.6}$", "MDM_F1_70": r"MDM$_{0.7}$"}
_PLAIN_METRIC = {"F1": "F1*"}
_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
}
_MARKDOWN_SPECIALS = set("\\`*_[]<>|")


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


# ---------------------------------------------------------------------------------------------- display

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


def _interval_text(board, r, ci, m):
    """`` [low, high]`` of a cell as displayed ("" without an interval)."""
    if (r, ci, m) not in board.intervals:
        return ""
    low, high = board.intervals[r, ci, m]
    return f" [{display(m, low)}, {display(m, high)}]"


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


def _arrow(metric, up, down):
    if metric in UNSCALED:
        return ""
    return " " + (down if metric in LOWER_IS_BETTER else up)


def latex_escape(text):
    """Escape LaTeX special characters in a name or note."""
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def markdown_escape(text):
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIALS else ch for ch in str(text))


def to_latex(board, caption=True, label="tab:maskbench"):
    """A booktabs ``table``: dataset headers as ``\\multicolumn`` with ``\\cmidrule``; protocols in the caption."""
    n, k = len(board.metrics), len(board.row_heads)
    mk = marks(board)
    lines = [
        r"% generated by maskbench; needs \usepackage{booktabs}",
        r"\begin{table}[t]",
        r"\centering",
        r"\begin{tabular}{" + "l" * k + "c" * (n * len(board.columns)) + "}",
        r"\toprule",
        " & ".join([""] * k + [
            rf"\multicolumn{{{n}}}{{c}}{{{latex_escape(lab)}}}" for lab in board.labels]) + r" \\",
        " ".join(rf"\cmidrule(lr){{{1 + k + i * n}-{k + (i + 1) * n}}}" for i in range(len(board.columns))),
        " & ".join([latex_escape(h) for h in board.row_heads] + [board.metric_head(ci, m, _LATEX_METRIC.get(m, latex_escape(m)), latex_escape)
                                 + _arrow(m, r"$\uparrow$", r"$\downarrow$")
                                 for ci in range(len(board.columns)) for m in board.metrics]) + r" \\",
        r"\midrule",
    ]
    for r in board.rows:
        cells = [latex_escape(c) for c in board.row_cells(r)]
        for ci in range(len(board.columns)):
            for m in board.metrics:
                text = display(m, board.value(r, ci, m))
                style = mk.get((r, ci, m))
                text = (rf"\textbf{{{text}}}" if style == "best" else
                        rf"\underline{{{text}}}" if style == "second" else text)
                interval = _interval_text(board, r, ci, m)
                cells.append(text + (r"$^\dagger$" if (r, ci, m) in board.unsure else "")
                             + (rf" {{\scriptsize{interval}}}" if interval else ""))
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:  # the mark is set in LaTeX; everything else is escaped
        notes = latex_escape(" ".join(board.notes_with("\x00")))
        lines.append(r"\caption{" + notes.replace("\x00", r"$^\dagger$") + "}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_markdown(board):
    """A pipe table (bold ``**x**``, underline ``<u>x</u>``) followed by the protocol notes."""
    mk = marks(board)
    heads = [(lab, board.metric_head(ci, m, _PLAIN_METRIC.get(m, m)), m) for ci, lab in enumerate(board.labels)
             for m in board.metrics]
    header = [markdown_escape(h) for h in board.row_heads] + [f"{markdown_escape(lab)} {markdown_escape(head)}{_arrow(m, '↑', '↓')}"
                           for lab, head, m in heads]
    k = len(board.row_heads)
    lines = ["| " + " | ".join(header) + " |", "|:--" * k + "|--:" * (len(header) - k) + "|"]
    for r in board.rows:
        cells = [markdown_escape(c) for c in board.row_cells(r)]
        for ci in range(len(board.columns)):
            for m in board.metrics:
                text = display(m, board.value(r, ci, m))
                style = mk.get((r, ci, m))
                text = f"**{text}**" if style == "best" else f"<u>{text}</u>" if style == "second" else text
                cells.append(text + ("†" if (r, ci, m) in board.unsure else "") + _interval_text(board, r, ci, m))
        lines.append("| " + " | ".join(cells) + " |")
    notes = board.notes_with("†")
    return "\n\n".join(["\n".join(lines)] + [markdown_escape(note) for note in notes]) + "\n"


def to_frame(board):
    """The raw fractions as a DataFrame: index ``scorer``, columns (dataset, protocol, metric)."""
    bounds = {(ci, m) for _, ci, m in board.intervals}
    keys = []  # (column, metric, None: the value | 0: low | 1: high), <metric>.low / .high after their metric
    for ci in range(len(board.columns)):
        for m in board.metrics:
            keys += [(ci, m, None)] + ([(ci, m, 0), (ci, m, 1)] if (ci, m) in bounds else [])
    cols = pd.MultiIndex.from_tuples(
        [(board.labels[ci], _protocol_label(board.columns[ci]), m if b is None else f"{m}.{('low', 'high')[b]}")
         for ci, m, b in keys], names=["dataset", "protocol", "metric"])
    data = [[board.value(r, ci, m) if b is None else board.intervals.get((r, ci, m), (None, None))[b]
             for ci, m, b in keys] for r in board.rows]
    names = board.plain_row_heads
    index = (pd.Index(board.rows, name=names[0]) if len(names) == 1 else
             pd.MultiIndex.from_tuples([tuple(board.row_cells(r)) for r in board.rows], names=names))
    frame = pd.DataFrame(data, columns=cols, index=index, dtype="float64")
    return frame


def _protocol_label(col):
    return "; ".join(str(x) for x in (col.protocol, f"FPR95 {col.fpr95_rule}", col.resolution, f"TTA {col.tta}"))


def to_csv(board):
    """Raw fractions (full float precision, empty = missing); read back with
    ``pd.read_csv(f, header=[0, 1, 2], index_col=0)`` (bit for bit from pandas 3; before it, pandas' default parser
    may differ in the last bit unless given ``float_precision="round_trip"``)."""
    buf = io.StringIO()
    to_frame(board).to_csv(buf, lineterminator="\n")
    return buf.getvalue()


def to_text(board):
    """Aligned plain text for terminals; best marked ``*``, second ``+`` (and with bootstrap a lead that is not
    significant ``~``); protocol notes below."""
    mk = marks(board)
    suffix = {"best": "*", "second": "+"}
    n, groups = len(board.metrics), range(len(board.columns))
    heads = [f"{board.metric_head(ci, m, _PLAIN_METRIC.get(m, m))}{_arrow(m, '^', 'v')}" for ci in groups
             for m in board.metrics]
    lead = (lambda r, ci, m: "~" if (r, ci, m) in board.unsure else " ") if board.legend else (lambda r, ci, m: "")
    grid = [[display(m, board.value(r, ci, m)) + suffix.get(mk.get((r, ci, m)), " ") + lead(r, ci, m)
             + _interval_text(board, r, ci, m) for ci in groups for m in board.metrics] for r in board.rows]
    widths = [max(len(cell) for cell in column) for column in zip(heads, *grid)]
    firsts = [board.plain_row_heads] + [board.row_cells(r) for r in board.rows]
    first_widths = [max(len(cells[i]) for cells in firsts) for i in range(len(firsts[0]))]
    first = ["  ".join(c.ljust(w) for c, w in zip(cells, first_widths)).rstrip() for cells in firsts]
    w0 = max(len(f) for f in first)
    for ci, lab in enumerate(board.labels):  # a long dataset label widens the last column of its group
        span = sum(widths[ci * n:(ci + 1) * n]) + 2 * (n - 1)
        widths[ci * n + n - 1] += max(0, len(lab) - span)

    def line(label, cells, align=str.rjust):
        parts = ["  ".join(align(c, w) for c, w in zip(cells[ci * n:(ci + 1) * n], widths[ci * n:(ci + 1) * n]))
                 for ci in groups]
        return label.ljust(w0) + " | " + " | ".join(parts)

    group_widths = [sum(widths[ci * n:(ci + 1) * n]) + 2 * (n - 1) for ci in groups]
    lines = [" " * w0 + " | " + " | ".join(lab.center(w) for lab, w in zip(board.labels, group_widths)),
             line(first[0], heads)]
    lines.append("-" * len(lines[1]))
    lines += [line(f, row) for f, row in zip(first[1:], grid)]
    lines.append("(* best, + second per column)")
    lines += board.notes_with("~")
    return "\n".join(lines) + "\n"


def format_leaderboard(results, fmt="text", metrics=None, *, bootstrap=False, level=95.0, replicates=None,
                       seed=None):
    """Render results (a results dict, a results directory, or a list of them) as ``fmt`` in FORMATS; the
    bootstrap arguments as in :func:`build_leaderboard`."""
    if fmt not in FORMATS:
        raise InputError(f"unknown table format {fmt!r}; choose one of {', '.join(FORMATS)}")
    board = build_leaderboard(results, metrics, bootstrap=bootstrap, level=level, replicates=replicates, seed=seed)
    return {"latex": to_latex, "markdown": to_markdown, "csv": to_csv, "text": to_text}[fmt](board)


def parse_metrics(text):
    """``"AP,FPR95"`` -> ``["AP", "FPR95"]`` (the ``--metrics`` option)."""
    items = [m.strip() for m in text.split(",")]
    if not all(items):
        raise ConfigError("metrics", f" {text!r}: empty metric name")
    return items


__all__ = ["DEFAULT_METRICS", "FORMATS", "LOWER_IS_BETTER", "Column", "Leaderboard", "build_leaderboard",
           "display", "format_leaderboard", "marks", "parse_metrics", "to_csv", "to_latex",
           "to_markdown", "to_text"]
