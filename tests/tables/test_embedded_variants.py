"""The embedded run's variant grid: which checkpoints run where, and the grid / methods files written from a
hand-made results folder laid out as the embedded run lays it out."""

import json
import shutil

import numpy as np

from maskbench.benchmark.embedded import EMBEDDED_GMA_WEIGHTS, EMBEDDED_WEIGHTS
from maskbench.benchmark.embedded_variants import VARIANT_RECIPES, recipe_of_weights, variant_runs, write_comparison
from maskbench.train.recipes import WEIGHTS_DIR

SCORERS = ("msp", "rba", "eam", "aem", "maskomaly", "mask2anomaly")


def test_which_checkpoints_run_where(tmp_path):
    weights = {name: WEIGHTS_DIR / f"m2f_tiny_world_{name}.pth" for name in ("rba-oe", "m2a-cl", "eam-neg")}
    assert VARIANT_RECIPES == ("rba-oe", "m2a-cl", "eam-neg")
    assert variant_runs(tmp_path, EMBEDDED_WEIGHTS) == [
        ("none", EMBEDDED_WEIGHTS, tmp_path),
        ("rba-oe", weights["rba-oe"], tmp_path / "variants" / "rba-oe"),
        ("m2a-cl", weights["m2a-cl"], tmp_path / "variants" / "m2a-cl"),
        ("eam-neg", weights["eam-neg"], tmp_path / "variants" / "eam-neg"),
    ]
    assert all(path.is_file() for path in weights.values())
    # any other checkpoint runs alone, its recipe unknown; a shipped variant given alone is recognised
    assert variant_runs(tmp_path, EMBEDDED_GMA_WEIGHTS) == [(None, EMBEDDED_GMA_WEIGHTS, tmp_path)]
    assert variant_runs(tmp_path, weights["m2a-cl"]) == [("m2a-cl", weights["m2a-cl"], tmp_path)]
    copy = tmp_path / "m2f_tiny_world.pth"
    shutil.copy(EMBEDDED_WEIGHTS, copy)
    assert recipe_of_weights(copy) is None


def test_grid_and_methods_files(tmp_path, results_dir, entry):
    out = tmp_path / "embedded"
    recipes = {"none": "embedded", **{r: f"embedded/variants/{r}" for r in VARIANT_RECIPES}}
    dirs = []
    for k, (recipe, parent) in enumerate(recipes.items()):
        ckpt = "m2f_tiny_world.pth" if recipe == "none" else f"m2f_tiny_world_{recipe}.pth"
        for track, dataset, protocol in (("anomaly", "smiyc-ra21", "smiyc-anomaly"),
                                         ("obstacle", "smiyc-ro21", "smiyc-obstacle")):
            # AP of scorer j on variant k: (10 k + j) / 100, FPR95 its complement
            entries = [entry(s, dataset, protocol, AP=(10 * k + j) / 100, FPR95=1 - (10 * k + j) / 100)
                       for j, s in enumerate(SCORERS)]
            curves = {f"{s}/{key}": np.linspace(0, 1, 5) for s in SCORERS
                      for key in ("pr_precision", "pr_recall", "roc_fpr", "roc_tpr")}
            d = results_dir(f"{parent}/{track}", dataset, entries, protocol=protocol, checkpoint=ckpt,
                            sha=f"{k}" * 64, curves=curves)
            data = json.loads((d / "results.json").read_text())
            data["run"]["checkpoint"]["recipe"] = recipe
            (d / "results.json").write_text(json.dumps(data))
            dirs.append(d)
    written = write_comparison(dirs, out)
    assert {p.name for p in written if p.parent == out} == {f"{stem}.{s}" for stem in ("grid", "methods")
                                                            for s in ("txt", "tex", "md", "csv")}
    grid = (out / "grid.md").read_text().splitlines()
    rows = [line.split(" | ")[0].lstrip("| ") for line in grid[2:2 + 4 * len(SCORERS)]]
    weights = {"none": "m2f\\_tiny\\_world", "rba-oe": "m2f\\_tiny\\_world\\_rba-oe",
               "m2a-cl": "m2f\\_tiny\\_world\\_m2a-cl", "eam-neg": "m2f\\_tiny\\_world\\_eam-neg"}
    assert rows == [f"{s} \\[{weights[r]}\\]" for r in recipes for s in SCORERS]
    assert grid[2 + 4 * len(SCORERS) - 1].startswith("| mask2anomaly \\[m2f\\_tiny\\_world\\_eam-neg\\] | **35.0** |")
    methods = (out / "methods.md").read_text().splitlines()
    # MSP/none: variant 0, scorer 0; RbA/rba-oe: variant 1, scorer 1; EAM/eam-neg: variant 3, scorer 2;
    # Mask2Anomaly/m2a-cl: variant 2, scorer 5
    assert [line.split(" | ")[:4] for line in methods[2:10]] == [
        ["| MSP / none", "no", "0.0", "100.0"], ["| RbA / none", "no", "1.0", "99.0"],
        ["| RbA / rba-oe", "yes", "11.0", "89.0"], ["| EAM / none", "no", "2.0", "98.0"],
        ["| EAM / eam-neg", "yes", "**32.0**", "**68.0**"], ["| AEM / none", "no", "3.0", "97.0"],
        ["| Maskomaly / none", "no", "4.0", "96.0"], ["| Mask2Anomaly / m2a-cl", "yes", "<u>25.0</u>", "<u>75.0</u>"],
    ]
    plots = sorted(str(p.relative_to(out)) for p in written if p.parent != out)
    assert plots == sorted(f"plots/variants/{r}/{t}/curves_{d}.{ext}" for r in VARIANT_RECIPES
                           for t, d in (("anomaly", "smiyc-ra21"), ("obstacle", "smiyc-ro21")) for ext in ("pdf", "png"))
