"""`bench run --task open-semantic|open-panoptic`: the runner's :class:`RunConfig` to an open-set track driver."""

import dataclasses
import json

from maskbench.errors import InputError

TASKS = ("anomaly", "open-semantic", "open-panoptic")
#: Columns of the printed table per task (Mask2Anomaly TPAMI'24 Tables 3 and 4); results.json holds all keys.
TABLE_METRICS = {
    "open-semantic": ("AP", "FPR95", "mIoU_closed", "open_mIoU_t5", "open_mIoU_t6", "open_mIoU"),
    "open-panoptic": ("PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st", "PQ", "SQ", "RQ", "PQ_unk", "SQ_unk",
                      "RQ_unk"),
}
#: RunConfig fields the open-set tracks do not support, with the value that means "not used".
_UNSUPPORTED = {"tta": "none", "cache": None, "from_cache": None, "protocol": "official"}


def run_task(config, task, *, forward=None, checkpoint=None, progress=None):
    """Run the open-set track ``task`` for ``config`` (a :class:`maskbench.benchmark.runner.RunConfig`).

    ``forward`` / ``checkpoint`` as in :func:`maskbench.benchmark.runner.run_benchmark` (default: the
    Mask2Former of ``config.checkpoint`` at ``config.resolution``). The pooled anomaly metrics of
    open-semantic use ``config.fpr95_rule``. Returns the results.json content.
    """
    from maskbench.benchmark.results import checkpoint_sha256
    from maskbench.datasets import load_dataset
    from maskbench.openset.tracks import run_open_panoptic, run_open_semantic
    from maskbench.scorers import get_scorer

    if task not in TASKS[1:]:
        raise InputError(f"--task {task!r}: the open-set tasks are {', '.join(TASKS[1:])}")
    for field, unused in _UNSUPPORTED.items():
        if getattr(config, field) != unused:
            raise InputError(f"--{field.replace('_', '-')} is not supported with --task {task}")
    stray = sorted(set(config.scorer_params) - set(config.scorers))
    if stray:
        raise InputError(f"--param given for scorer(s) {stray} that are not in --scorer {','.join(config.scorers)}")
    if len(set(config.scorers)) != len(config.scorers):
        raise InputError(f"--scorer {','.join(config.scorers)}: a scorer is named twice")
    try:
        scorers = {n: get_scorer(n, **config.scorer_params.get(n, {})) for n in config.scorers}
    except InputError as err:
        raise InputError(f"--scorer/--param: {err}") from err
    dataset = load_dataset(config.dataset, config.root, **config.dataset_options)
    if forward is None:
        if config.checkpoint is None:
            raise InputError(f"--checkpoint: required with --task {task}")
        checkpoint = {"path": str(config.checkpoint), "sha256": checkpoint_sha256(config.checkpoint)}
        forward, checkpoint["config"] = _model_forward(config.checkpoint, config.resolution, config.device)
    run_info = {"resolution": config.resolution, "device": config.device}
    if config.command is not None:
        run_info["command"] = list(config.command)
    common = dict(checkpoint=checkpoint, limit=config.limit, progress=progress, run_info=run_info)
    if task == "open-semantic":
        results = run_open_semantic(forward, dataset, scorers, config.out, pooled_fpr95_rule=config.fpr95_rule,
                                    keep_work=config.keep_work, **common)
    else:
        results = run_open_panoptic(forward, dataset, scorers, config.out, workers=config.workers or 1, **common)
    return results


def _model_forward(path, resolution, device):
    from maskbench.model import Predictor, load_model

    model, report = load_model(path)
    predictor = Predictor(model.to(device), resize=resolution)

    def forward(image):
        prediction = predictor(image)
        return prediction.class_logits, prediction.mask_logits

    config = json.loads(json.dumps(dataclasses.asdict(report.config), default=str))  # JSON-ready
    return forward, {**config, "msda_backend_resolved": predictor.msda_backend}
