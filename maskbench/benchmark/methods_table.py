"""The methods table: one row per published method as its paper defines it, its training recipe and its scorer.

Mask2Anomaly TPAMI'24 §7.3: "for a fair comparison, we train all the methods on the same data and using the same
ResNet-50 backbone". Here every row runs on the same tiny backbone and the same world; what differs is the method's
whole recipe: the checkpoint it scores (``run.checkpoint.recipe`` of the results, :mod:`maskbench.train.recipes`)
and its scorer. :data:`METHODS` lists the rows; ``OoD data`` is the SMIYC leaderboard's column ("yes": the training
saw pasted outliers from the world's outlier pool, which is disjoint from the evaluation anomalies).

The table is a :class:`~maskbench.benchmark.tables.Leaderboard` built by
:func:`~maskbench.benchmark.tables.build_leaderboard` from the rows' entries (same columns, protocols, marks and
notes as the leaderboard, rendered by the same writers), with the method's label as the row and ``OoD data`` as
a text column. A method whose recipe or scorer is absent from the results keeps its row, ``-`` everywhere, and a
note saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from maskbench.benchmark.table_formats import to_csv, to_latex, to_markdown, to_text
from maskbench.benchmark.tables import FORMATS, build_leaderboard
from maskbench.benchmark.results import load_results, validate_results
from maskbench.errors import InputError


@dataclass(frozen=True)
class Method:
    """A published method: its name, the scorer of its inference half and the recipe of its training half."""

    name: str
    scorer: str
    recipe: str

    @property
    def label(self) -> str:
        return f"{self.name} / {self.recipe}"

    @property
    def ood_data(self) -> str:
        return "no" if self.recipe == "none" else "yes"


#: MSP and Maskomaly and AEM are training-free; RbA and EAM are published with and without outlier exposure;
#: Mask2Anomaly only with it (its scorer includes the refinement of TPAMI'24 Eq. 15).
METHODS = (
    Method("MSP", "msp", "none"),
    Method("RbA", "rba", "none"),
    Method("RbA", "rba", "rba-oe"),
    Method("EAM", "eam", "none"),
    Method("EAM", "eam", "eam-neg"),
    Method("AEM", "aem", "none"),
    Method("Maskomaly", "maskomaly", "none"),
    Method("Mask2Anomaly", "mask2anomaly", "m2a-cl"),
)
OOD_NOTE = ("OoD data: yes = the recipe pasted outliers from the world's outlier pool (disjoint from the evaluation "
            "anomalies) into its training crops; every row uses the same tiny Mask2Former backbone and the same "
            "inlier training frames. Mask2Anomaly's scorer includes its refinement (TPAMI'24 Eq. 15).")


def recipe_of(results: dict) -> str | None:
    """The training recipe a results.json records for its checkpoint (``run.checkpoint.recipe``), if any."""
    return ((results.get("run") or {}).get("checkpoint") or {}).get("recipe")


def build_methods_table(results, methods=METHODS, metrics=None):
    """The methods table of ``results`` (results dicts or directories, of several recipes and tracks)."""
    items = results if isinstance(results, (list, tuple)) else [results]
    loaded = [validate_results(r, r.get("source", "<results>")) if isinstance(r, dict) else load_results(r)
              for r in items]
    picked, absent, checkpoints = [], [], {}
    for method in methods:
        found = False
        for res in loaded:
            entries = [{**e, "scorer": method.label} for e in res["results"] if e["scorer"] == method.scorer]
            if recipe_of(res) != method.recipe or not entries:
                continue
            run = res.get("run") or {}
            ckpt = run.get("checkpoint") or {}
            checkpoints.setdefault(method.recipe, set()).add((Path(str(ckpt.get("path"))).name, ckpt.get("sha256")))
            picked.append({"run": {**run, "checkpoint": None}, "results": entries, "source": res["source"]})
            found = True
        if not found:
            absent.append(method)
    if not picked:
        raise InputError("no results of any method's recipe and scorer (the methods table needs results.json files "
                         "that record run.checkpoint.recipe)")
    board = build_leaderboard(picked, metrics)
    board.rows = [m.label for m in methods]
    board.row_head = "Method / recipe"
    board.label_columns = [("OoD data", {m.label: m.ood_data for m in methods})]
    board.notes.append(OOD_NOTE)
    board.notes.append("Checkpoints: " + "; ".join(
        f"{recipe} = " + ", ".join(f"{name} (sha256 {(sha or '?')[:12]})" for name, sha in sorted(found))
        for recipe, found in checkpoints.items()) + ".")
    for method in absent:
        board.notes.append(f"{method.label}: no results of scorer {method.scorer} on a checkpoint of recipe "
                           f"{method.recipe}.")
    return board


def format_methods_table(results, fmt="text", methods=METHODS, metrics=None) -> str:
    """The methods table as ``fmt`` (one of :data:`~maskbench.benchmark.tables.FORMATS`)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown table format {fmt!r}; choose one of {', '.join(FORMATS)}")
    board = build_methods_table(results, methods, metrics)
    return {"latex": to_latex, "markdown": to_markdown, "csv": to_csv, "text": to_text}[fmt](board)
