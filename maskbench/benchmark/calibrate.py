"""`bench calibrate maskomaly`: fit Maskomaly's query ids for a checkpoint, and use them in `bench run`.

Maskomaly's accept set ``A`` and ground set ``I`` are query *indices* of one network: the published
``[49, 31, 83, 32]`` and ``[19, 24]`` hold only for the Mask2Former Swin-L Cityscapes semantic checkpoint
(``model_final_17c1ee.pkl``). For any other checkpoint they are fitted on a validation split as Maskomaly
BMVC'23 §3.2 ranks them: per frame one forward (the forward source of `bench run`, :func:`~.forward.open_source`),
``σ(M)`` at label resolution binarised at ``t_bin = 0.9``, mean IoU with the anomalies (accept) and with the
model's own street prediction (ground), queries above ``T_IoU = 0.25`` kept best first
(:func:`maskbench.scorers.calibrate_maskomaly`). The result goes to ``<out>/calibration.json``.

`bench run --calibration FILE` (the explicit flag; nothing is picked up implicitly) sets the fitted ids on the
Maskomaly scorers after checking that FILE was fitted for the run's checkpoint (same sha256). Without it, a
Maskomaly scorer left on the published ids for another checkpoint gets the note :data:`PUBLISHED_NOTE`.
"""

import dataclasses
import json
import sys
from pathlib import Path

from maskbench import __version__
from maskbench.benchmark.forward import open_source
from maskbench.benchmark.results import jsonable, package_versions, utc_now, write_json_atomic
from maskbench.datasets import load_dataset
from maskbench.errors import ConfigError, InputError
from maskbench.scorers import calibrate_maskomaly, load_plugins, street_prediction

CALIBRATION_FILE = "calibration.json"
#: The query-id parameters each Maskomaly scorer reads.
MASKOMALY_IDS = {"maskomaly": ("accept", "ground"), "maskomaly_reject": ("ground",), "maskomaly_accept": ("accept",)}
PUBLISHED_NOTE = "published Swin-L ids (not fitted for this checkpoint)"
#: The checkpoint the published ids belong to: Mask2Former Model Zoo, Cityscapes semantic, Swin-L IN21k-384.
#: No sha256 of that release is recorded, so it is recognised by file name and architecture.
PUBLISHED_FILE = "model_final_17c1ee.pkl"
PUBLISHED_ARCHITECTURE = {"backbone": "swin", "swin_embed_dim": 192, "num_classes": 19, "num_queries": 100,
                          "dec_layers": 9, "gma": False}


@dataclasses.dataclass
class CalibrateConfig:
    """What `bench calibrate maskomaly` needs (the forward fields mean what they mean in ``RunConfig``)."""

    dataset: str
    out: Path
    root: Path | None = None
    dataset_options: dict = dataclasses.field(default_factory=dict)
    checkpoint: Path | None = None
    resolution: str = "native"
    device: str = "cpu"
    cache: Path | None = None
    from_cache: Path | None = None
    limit: int | None = None
    t_iou: float = 0.25
    t_bin: float = 0.9
    street_classes: tuple = (0,)
    plugins: tuple = ()
    command: list | None = None


def calibrate_checkpoint(config, forward=None, *, checkpoint=None, progress=None):
    """Fit Maskomaly's accept and ground ids on ``config.dataset``; write and return ``calibration.json``.

    forward, checkpoint, progress: as in :func:`maskbench.benchmark.run.run_benchmark`.
    """
    if config.limit is not None and config.limit < 1:
        raise ConfigError("limit", f" {config.limit}: must be at least 1")
    plugins = load_plugins(config.plugins)
    ds = load_dataset(config.dataset, config.root, **config.dataset_options)
    source = open_source(ds, checkpoint=config.checkpoint, resolution=config.resolution, device=config.device,
                         cache=config.cache, from_cache=config.from_cache, forward=forward, record=checkpoint)
    checkpoint = source.checkpoint
    n_frames = len(ds) if config.limit is None else min(config.limit, len(ds))
    bar = progress("forward + query IoUs", n_frames) if progress else None

    # One forward per frame: `probs` runs it and leaves the frame's labels and street map in `current`, which
    # `labels` and `streets` hand on; calibrate_maskomaly reads probs, then labels (zip), then streets.
    current = {}

    def probs():
        for index in range(n_frames):
            sample = ds[index]
            if sample.ood is None:
                raise InputError(f"{config.dataset}: frame {sample.id!r} carries no labels, which the fit needs")
            if sample.ood.shape != sample.image.shape[:2]:
                raise InputError(f"{config.dataset}: frame {sample.id!r} has labels of shape {sample.ood.shape} "
                                 f"and an image of shape {sample.image.shape[:2]}")
            class_logits, mask_logits = source(sample.id, source.image_hash(sample.image), sample.image, "none")
            try:
                current["street"] = street_prediction(class_logits, mask_logits, classes=config.street_classes)
            except InputError as err:
                raise InputError(f"frame {sample.id!r}: {err}") from err
            current["ood"] = sample.ood.copy()  # writable, as torch wants it
            yield mask_logits.float().sigmoid()
            if bar:
                bar.update(1)

    def handed_on(key):
        for _ in range(n_frames):
            yield current[key]

    try:
        fitted = calibrate_maskomaly(probs(), handed_on("ood"), handed_on("street"), t_iou=config.t_iou,
                                     t_bin=config.t_bin)
    except InputError as err:
        raise ConfigError("dataset", f" {config.dataset}: {err}") from err
    finally:
        if bar:
            bar.close()
    record = {
        "scorer": "maskomaly",
        "accept": list(fitted.accept),
        "ground": list(fitted.ground),
        "t_iou": fitted.t_iou,
        "t_bin": fitted.t_bin,
        "street_classes": list(config.street_classes),
        "plugins": [p.to_dict() for p in plugins],
        "per_query_iou": list(fitted.accept_iou),
        "per_query_street_iou": list(fitted.ground_iou),
        "images_with_anomalies": fitted.images_with_anomalies,
        "images_with_street": fitted.images_with_street,
        "rule": "accept: queries whose mean IoU (sigmoid mask > t_bin vs anomaly pixels, void ignored, frames "
                "with anomalies) exceeds t_iou, best first (Maskomaly BMVC'23 §3.2); ground: the same against the "
                "model's street prediction (argmax class in street_classes), accept queries excluded",
        "dataset": {"name": config.dataset, "root": str(ds.root), "options": jsonable(config.dataset_options),
                    "info": jsonable(ds.info)},
        "checkpoint": {"path": checkpoint["path"], "sha256": checkpoint["sha256"]},
        "resolution": config.resolution,
        "source": source.kind,
        "frames": n_frames,
        "created": utc_now(),
        "maskbench_version": __version__,
        "versions": package_versions(),
        "command": list(config.command) if config.command is not None else list(sys.argv),
    }
    out = Path(config.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError("out", f" {out}: cannot create the folder ({err})") from err
    write_json_atomic(out / CALIBRATION_FILE, record)
    return record


def calibration_summary(record):
    """Lines saying what was fitted, on what, with which evidence."""
    iou = record["per_query_iou"]
    best = ", ".join(f"{q} ({iou[q]:.3f})" for q in record["accept"]) or "none"
    lines = [f"maskomaly on {record['dataset']['name']}: {record['frames']} frames "
             f"({record['images_with_anomalies']} with anomalies); checkpoint {record['checkpoint']['sha256'][:12]}",
             f"accept (mean IoU > {record['t_iou']} with anomalies): {best}",
             f"ground (mean IoU > {record['t_iou']} with the street prediction): {record['ground'] or 'none'}"]
    if not record["accept"]:
        lines.append("warning: no query exceeds T_IoU with the anomalies; with this calibration Maskomaly's "
                     "accept term is 0 (the score is lam * R)")
    return lines


def read_calibration(path):
    """The fitted ids of a ``calibration.json`` (validated): ``{"accept", "ground", "checkpoint", "path"}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError("calibration", f" {path}: cannot read it as JSON ({err})") from err
    if not isinstance(data, dict) or data.get("scorer") != "maskomaly":
        raise ConfigError("calibration", f" {path}: not a Maskomaly calibration (expected \"scorer\": \"maskomaly\"; "
                          "write one with `bench calibrate maskomaly`)")
    for key in ("accept", "ground"):
        ids = data.get(key)
        if not (isinstance(ids, list) and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids)):
            raise ConfigError("calibration", f" {path}: {key!r} must be a list of query ids, got {ids!r}")
    sha = (data.get("checkpoint") or {}).get("sha256") if isinstance(data.get("checkpoint"), dict) else None
    if not isinstance(sha, str) or len(sha) != 64:
        raise ConfigError("calibration", f" {path}: no checkpoint sha256 recorded")
    return {"path": str(path), "accept": data["accept"], "ground": data["ground"],
            "checkpoint": {"path": data["checkpoint"].get("path"), "sha256": sha}}


def calibrated_params(scorers, scorer_params, calibration):
    """``scorer_params`` with the calibration's ids set on every Maskomaly scorer of ``scorers``."""
    targets = [name for name in scorers if name in MASKOMALY_IDS]
    if not targets:
        raise ConfigError("calibration", f" {calibration['path']}: applies to maskomaly, maskomaly_reject or "
                          f"maskomaly_accept, none of which is in scorers {','.join(scorers)}", mentions=("scorers",))
    params = {name: dict(p) for name, p in scorer_params.items()}
    for name in targets:
        for key in MASKOMALY_IDS[name]:
            if key in params.get(name, {}):
                raise ConfigError(("scorer_params", "calibration"), f" ({name}.{key}, {calibration['path']}): give one")
            params.setdefault(name, {})[key] = list(calibration[key])
    return params


def check_calibration_checkpoint(calibration, checkpoint):
    """Refuse a calibration fitted for another checkpoint than the run's (compared by sha256)."""
    fitted = calibration["checkpoint"]
    if fitted["sha256"] != checkpoint["sha256"]:
        raise ConfigError("calibration", f" {calibration['path']}: fitted for checkpoint {fitted['path']} (sha256 "
                          f"{fitted['sha256']}), but this run's checkpoint is {checkpoint['path']} (sha256 "
                          f"{checkpoint['sha256']}); run `bench calibrate maskomaly` for this checkpoint")


def is_published_checkpoint(checkpoint):
    """Whether ``checkpoint`` (a run's record) is the Swin-L Cityscapes model the published ids belong to."""
    config = checkpoint.get("config") or {}
    return (Path(str(checkpoint.get("path", ""))).name == PUBLISHED_FILE
            and all(config.get(k) == v for k, v in PUBLISHED_ARCHITECTURE.items()))


def published_id_notes(scorers, scorer_params, checkpoint):
    """``{scorer: {"maskomaly.<ids>": PUBLISHED_NOTE}}`` for Maskomaly scorers left on the published ids of a
    checkpoint that is not the published one."""
    if is_published_checkpoint(checkpoint):
        return {}
    notes = {}
    for name in scorers:
        defaulted = [k for k in MASKOMALY_IDS.get(name, ()) if k not in scorer_params.get(name, {})]
        if defaulted:
            notes[name] = {f"maskomaly.{k}": PUBLISHED_NOTE for k in defaulted}
    return notes


__all__ = ["CALIBRATION_FILE", "CalibrateConfig", "PUBLISHED_NOTE", "calibrate_checkpoint", "calibrated_params",
           "calibration_summary", "check_calibration_checkpoint", "is_published_checkpoint", "published_id_notes",
           "read_calibration"]
