"""`bench run` (every task, and the embedded benchmark) and `bench calibrate`."""

import os
import sys
from pathlib import Path

import click

from maskbench.benchmark.calibrate import CALIBRATION_FILE, CalibrateConfig, calibrate_checkpoint, calibration_summary
from maskbench.benchmark.embedded import EMBEDDED_OUT, run_embedded
from maskbench.benchmark.forward import DEVICES, RESOLUTIONS
from maskbench.benchmark.frame import TTA_MODES
from maskbench.benchmark.protocols import PROTOCOL_CHOICES
from maskbench.benchmark.run import DEFAULT_SCORERS, RunConfig, run_benchmark
from maskbench.benchmark.summary import run_summary
from maskbench.benchmark.table_formats import format_leaderboard
from maskbench.benchmark.tasks import TASKS
from maskbench.cli.common import TerminalProgress, key_values, names, status, user_errors
from maskbench.cli.options import bootstrap_options, fpr95_rule_option, plugin_option
from maskbench.datasets import parse_options


def scorer_params(items):
    """``["maskomaly.lam=0.5", ...]`` -> ``{scorer: {key: value}}``."""
    params = {}
    for item in items:
        name, value = key_values([item], "--param", "maskomaly.lam=0.5")[0]
        scorer, dot, key = name.partition(".")
        if not (dot and scorer and key):
            raise click.ClickException(f"--param {item!r}: expected SCORER.KEY=VALUE, e.g. maskomaly.lam=0.5")
        params.setdefault(scorer, {})[key] = value
    return params


@click.command()
@click.option("--scorer", "scorers", multiple=True, metavar="NAMES",
              help=f"Scorers, comma-separated and/or repeated (default: {','.join(DEFAULT_SCORERS)}; "
                   "every name of `bench scorers`, plug-ins included).")
@plugin_option
@click.option("--dataset", default=None,
              help="Dataset name (see `bench datasets`); without it, the embedded benchmark (see below).")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Dataset root (default: $MASKBENCH_ROOT_<NAME> or $MASKBENCH_DATA/<name>).")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
              help="Dataset option, e.g. -o subset=testNoKnown, -o frames=all.")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="Mask2Former checkpoint (.pkl / .pth / HF folder); optional with --from-cache.")
@click.option("--out", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Results folder; re-running the same command there resumes (embedded default: ./maskbench-results).")
@click.option("--task", default="anomaly", show_default=True, type=click.Choice(TASKS.names()),
              help="anomaly: AP/FPR95/sIoU/... (StreetHazards: pooled and per-image AP/AUROC/FPR95); semantic: "
                   "Cityscapes closed-set mIoU/IoU/iIoU; open-semantic: StreetHazards open-IoU; open-panoptic: COCO "
                   "EOPSN open-set PQ; predict: SMIYC submission files (frames with or without labels).")
@click.option("--task-option", "task_options", multiple=True, metavar="KEY=VALUE",
              help="Task option (JSON value), e.g. --task-option method=mine-{scorer} (predict).")
@click.option("--protocol", default="official", show_default=True, type=click.Choice(list(PROTOCOL_CHOICES)),
              help="official: the dataset's SMIYC track; exact / exact16: exact pooled curve (float32 / float16).")
@fpr95_rule_option
@bootstrap_options
@click.option("--resolution", default="native", show_default=True, type=click.Choice(list(RESOLUTIONS)),
              help="native: no resize (RbA); short1024: short side 1024, long <= 2048 (Mask2Anomaly, EAM).")
@click.option("--tta", default="none", show_default=True, type=click.Choice(list(TTA_MODES)),
              help="flip: mean of the scorer maps of the image and its horizontal flip (Mask2Anomaly).")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(list(DEVICES)))
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Read and fill a forward-output cache (float16 mask logits) in this folder.")
@click.option("--from-cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Score only cached forward outputs (no model, no forward).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N frames (partial run).")
@click.option("--param", "params", multiple=True, metavar="SCORER.KEY=VALUE",
              help="Scorer hyperparameter (JSON value), e.g. --param maskomaly.lam=0.5; plug-ins too, and any "
                   "scorer's smoothing: --param msp.smoothing=gaussian.")
@click.option("--calibration", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="calibration.json of `bench calibrate maskomaly`: its fitted query ids for the Maskomaly scorers "
                   "(must be fitted for this checkpoint). Never picked up implicitly.")
@click.option("--save-maps", default=4, show_default=True, type=click.IntRange(min=0),
              help="Keep image, labels and score maps of the first N frames in OUT/maps for overlays.")
@click.option("--keep-work", is_flag=True,
              help="Keep the per-frame state in OUT/work after the run (anomaly: scores of the pixels labelled "
                   "0/1, with the labels).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes for the metric passes (default: automatic; 1 = in-process).")
@click.option("--split", default=None, help="Dataset split option, same as -o split=VALUE (e.g. K20 for coco-open-panoptic).")
@user_errors(interrupted=lambda params: "interrupted; re-run the same command to resume (the finished frames are kept "
                                        f"in {(params['out'] or Path(EMBEDDED_OUT)).absolute()})")
def run(scorers, plugins, dataset, root, options, checkpoint, out, task, task_options, protocol, fpr95_rule, bootstrap,
        seed, level, resolution, tta, device, cache, from_cache, limit, params, calibration, save_maps, keep_work,
        workers, split):
    """Run the benchmark: one forward per image, every scorer, the task's metrics (or submission files).

    Without --dataset: the embedded benchmark. The miniature world is generated if needed, the shipped tiny
    Mask2Former (or --checkpoint) runs all six scorers (or --scorer) on the world's anomaly and obstacle tracks
    with the official protocols, and the leaderboard, LaTeX, markdown, CSV and plots go to --out
    (default ./maskbench-results); --plugin, --param and --bootstrap apply to it too.
    """
    if dataset is None:
        out = out or Path(EMBEDDED_OUT)
        run_embedded(out, weights=checkpoint, scorers=names(scorers) or DEFAULT_SCORERS, limit=limit, workers=workers,
                     progress=TerminalProgress, echo=lambda text: click.echo(text, nl=False), plugins=plugins,
                     scorer_params=scorer_params(params), bootstrap=bootstrap, seed=seed, level=level, log=status)
        return
    if out is None:
        raise click.UsageError("--out is required with --dataset (the results folder)")
    dataset_options = parse_options(options)
    if split is not None:
        dataset_options["split"] = split
    config = RunConfig(
        dataset=dataset, root=root, dataset_options=dataset_options, out=out, task=task,
        task_options=dict(key_values(task_options, "--task-option", "method=mine-{scorer}")),
        scorers=names(scorers) or DEFAULT_SCORERS, plugins=plugins, scorer_params=scorer_params(params),
        checkpoint=checkpoint, protocol=protocol, fpr95_rule=fpr95_rule, bootstrap=bootstrap, seed=seed, level=level,
        resolution=resolution, tta=tta, device=device, cache=cache,
        from_cache=from_cache, limit=limit, calibration=calibration, save_maps=save_maps, keep_work=keep_work,
        workers=workers, command=list(sys.argv))
    results = run_benchmark(config, progress=TerminalProgress, log=status)
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 reports
        return
    click.echo(run_summary(results))
    metrics = TASKS.get(task).metrics_for(dataset)
    if metrics:
        click.echo(format_leaderboard(out if bootstrap else results, "text", metrics=list(metrics),
                                      bootstrap=bootstrap is not None, level=level), nl=False)
    for entry in results["results"]:
        if "summary" in entry["protocol_details"]:
            click.echo(f"{entry['scorer']}: {entry['protocol_details']['summary']}")
    click.echo(f"results: {(out / 'results.json').absolute()}")


@click.group()
def calibrate():
    """Fit a scorer's checkpoint-specific parameters on a validation split."""


@calibrate.command("maskomaly")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="Mask2Former checkpoint (.pkl / .pth / HF folder); optional with --from-cache.")
@click.option("--dataset", required=True, help="Validation dataset with anomaly labels (see `bench datasets`).")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Dataset root (default: $MASKBENCH_ROOT_<NAME> or $MASKBENCH_DATA/<name>).")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE", help="Dataset option.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for calibration.json (the results folder of this checkpoint).")
@click.option("--resolution", default="native", show_default=True, type=click.Choice(list(RESOLUTIONS)),
              help="Forward resolution, as in `bench run`.")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(list(DEVICES)))
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Read and fill a forward-output cache (shared with `bench run --cache`).")
@click.option("--from-cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Use only cached forward outputs (no model, no forward).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N frames.")
@click.option("--t-iou", default=0.25, show_default=True, type=click.FloatRange(0, 1),
              help="Keep queries whose mean IoU exceeds this (Maskomaly T_IoU).")
@click.option("--t-bin", default=0.9, show_default=True, type=click.FloatRange(0, 1),
              help="Binarise sigmoid masks above this before the IoU (Maskomaly's anomaly_overlap.py T_MASK).")
@click.option("--street-class", "street_classes", multiple=True, type=click.IntRange(min=0), default=(0,),
              show_default=True, help="Class id(s) of the street prediction the ground queries are ranked against "
                                      "(repeatable; 0 = road in Cityscapes train ids).")
@plugin_option
@user_errors
def calibrate_maskomaly(checkpoint, dataset, root, options, out, resolution, device, cache, from_cache, limit, t_iou,
                        t_bin, street_classes, plugins):
    """Rank queries by mean IoU with the anomalies (accept) and the street (ground); write OUT/calibration.json."""
    config = CalibrateConfig(dataset=dataset, root=root, dataset_options=parse_options(options), out=out,
                             checkpoint=checkpoint, resolution=resolution, device=device, cache=cache,
                             from_cache=from_cache, limit=limit, t_iou=t_iou, t_bin=t_bin,
                             street_classes=tuple(street_classes), plugins=plugins, command=list(sys.argv))
    record = calibrate_checkpoint(config, progress=TerminalProgress, log=status)
    for line in calibration_summary(record):
        click.echo(line)
    click.echo(f"calibration: {(out / CALIBRATION_FILE).absolute()}")
