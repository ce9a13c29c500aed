"""`bench evaluate` (saved anomaly maps or submission files against labels) and `bench pq` (panoptic quality)."""

from pathlib import Path

import click

from maskbench.benchmark.evaluate import evaluate_dataset, evaluate_dirs, format_evaluation
from maskbench.benchmark.protocols import PROTOCOL_CHOICES
from maskbench.cli.common import TerminalProgress, user_errors, writable_file
from maskbench.cli.options import bootstrap_options, fpr95_rule_option
from maskbench.datasets import parse_options
from maskbench.fileio import write_json
from maskbench.metrics.panoptic_files import format_table, pq_compute_files


@click.command()
@click.option("--pred", "pred_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory of <frame id>.npy (2-D float16/float32) or <frame id>.hdf5 (dataset 'value', the "
                   "SMIYC submission format) score maps, higher = more anomalous.")
@click.option("--gt", "gt_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory of <frame id>.png labels (uint8: 0 inlier, 1 anomaly, 255 or other = void).")
@click.option("--dataset", default=None,
              help="Instead of --gt: the labels of this dataset (its own files and label convention); predictions "
                   "of frames without labels are skipped and counted.")
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Root of --dataset.")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE", help="Option of --dataset.")
@click.option("--protocol", default=None, type=click.Choice(list(PROTOCOL_CHOICES)),
              help="smiyc-anomaly / smiyc-obstacle: the official SMIYC code; exact: exact float32 curve; exact16: "
                   "exact curve on float16 scores. With --dataset also official / exact / exact16 for the dataset's "
                   "track (default: official); required with --gt.")
@fpr95_rule_option
@bootstrap_options
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the metrics as JSON (fractions; null where undefined; with --bootstrap a \"ci\" object).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: automatic; 1 = in-process).")
@user_errors
def evaluate(pred_dir, gt_dir, dataset, root, options, protocol, fpr95_rule, bootstrap, seed, level, json_path,
             workers):
    """Evaluate saved anomaly maps: AP, AUROC, FPR95, sIoU, PPV, F1*, MDM (with --bootstrap: intervals over the
    frames, ordered by id as strings)."""
    if (gt_dir is None) == (dataset is None):
        raise click.UsageError("give the labels as --gt DIR or --dataset NAME (one of them)")
    common = dict(fpr95_rule=fpr95_rule, bootstrap=bootstrap, seed=seed, level=level, workers=workers,
                  progress=TerminalProgress)
    if json_path:
        writable_file(json_path)  # before the work, not after it
    if gt_dir is not None:
        if protocol in (None, "official"):
            raise click.UsageError("--protocol is required with --gt (a full protocol name, e.g. smiyc-anomaly)")
        result = evaluate_dirs(pred_dir, gt_dir, protocol, **common)
    else:
        result = evaluate_dataset(pred_dir, dataset, protocol, root=root, options=parse_options(options), **common)
    click.echo(format_evaluation(result))
    if json_path:
        write_json(json_path, result, indent=2)
        click.echo(f"wrote {json_path.absolute()}")


@click.command()
@click.option("--gt-json", required=True, type=click.Path(dir_okay=False), help="GT panoptic JSON (panopticapi format).")
@click.option("--gt-dir", required=True, type=click.Path(file_okay=False), help="Folder of GT panoptic PNGs.")
@click.option("--pred-json", required=True, type=click.Path(dir_okay=False), help="Predicted panoptic JSON.")
@click.option("--pred-dir", required=True, type=click.Path(file_okay=False), help="Folder of predicted panoptic PNGs.")
@click.option("--unknown", type=click.Choice(["K5", "K10", "K20"]), default=None,
              help="EOPSN open-set protocol: merge this split's COCO classes into the unknown category -1.")
@click.option("--json", "json_out", required=True, type=click.Path(dir_okay=False), help="Where to write the results.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Processes reading images.")
@user_errors
def pq(gt_json, gt_dir, pred_json, pred_dir, unknown, json_out, workers):
    """Panoptic quality PQ/SQ/RQ (panopticapi semantics; EOPSN open set with --unknown)."""
    writable_file(Path(json_out))
    result = pq_compute_files(gt_json, gt_dir, pred_json, pred_dir, unknown=unknown, workers=workers)
    click.echo(format_table(result))
    write_json(json_out, result)
    click.echo(f"wrote {Path(json_out).absolute()}")
