"""`bench calibrate maskomaly`: fit Maskomaly's query ids for a checkpoint, and use them in `bench run`.

Maskomaly's accept set ``A`` and ground set ``I`` are query *indices* of one network: the published
``[49, 31, 83, 32]`` and ``[19, 24]`` hold only for the Mask2Former Swin-L Cityscapes semantic checkpoint
(``model_final_17c1ee.pkl``). For any other checkpoint they are fitted on a validation split as Maskomaly
BMVC'23 §3.2 ranks them: per frame one forward (the forward source of `bench run`, :func:`~.forward.open_source`),
``σ(M)`` at label resolution binarised at ``t_bin = 0.9``, mean IoU with the anomalies (accept) and with the
model's own street prediction (ground), queries above ``T_IoU = 0.25`` kept best first
(:func:`maskbench.scorers.calibrate_maskomaly`). The result goes to ``<out>/calibration.json``.

`bench run --calibration FILE` (the explicit flag; a calibration.json is never picked up implicitly) sets the
fitted ids on the Maskomaly scorers after checking that FILE was fitted for the run's checkpoint (same sha256).
Without it (:func:`maskomaly_ids`): a shipped tiny model uses the ids fitted for it (``<name>.scorers.json``
beside the weights; also a `bench train` output whose file records the checkpoint's sha256); the published
checkpoint uses the published ids; any other checkpoint runs on the published ids with the note
:data:`PUBLISHED_NOTE`, or skips the scorer when those ids are out of range for its query count. run.json
records where every id list came from.
"""

import contextlib
import dataclasses
import json
import sys
from pathlib import Path

from maskbench import __version__
from maskbench.benchmark.cache import ForwardCache
from maskbench.benchmark.forward import checkpoint_record, open_source
from maskbench.benchmark.results import jsonable, package_versions, utc_now, write_json_atomic
from maskbench.datasets import load_dataset
from maskbench.errors import ConfigError, FileReadError, InputError
from maskbench.fileio import claim_folder
from maskbench.scorers import calibrate_maskomaly, load_plugins, street_prediction
from maskbench.scorers.maskomaly import SWIN_L_CITYSCAPES_ACCEPT, SWIN_L_CITYSCAPES_GROUND

CALIBRATION_FILE = "calibration.json"
#: The query-id parameters each Maskomaly scorer reads.
MASKOMALY_IDS = {"maskomaly": ("accept", "ground"), "maskomaly_reject": ("ground",), "maskomaly_accept": ("accept",)}
PUBLISHED_NOTE = "published Swin-L ids (not fitted for this checkpoint)"
#: The checkpoint the published ids belong to: Mask2Former Model Zoo, Cityscapes semantic, Swin-L IN21k-384.
#: No sha256 of that release is recorded, so it is recognised by file name and architecture.
PUBLISHED_FILE = "model_final_17c1ee.pkl"
PUBLISHED_ARCHITECTURE = {"backbone": "swin", "swin_embed_dim": 192, "num_classes": 19, "num_queries": 100,
                          "dec_layers": 9, "gma": False}
#: The published ids (Maskomaly's defaults) by parameter.
PUBLISHED_IDS = {"accept": SWIN_L_CITYSCAPES_ACCEPT, "ground": SWIN_L_CITYSCAPES_GROUND}
#: The shipped tiny models (``<name>.pth``), each with the scorer parameters fitted for it (``<name>.scorers.json``).
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
SCORERS_SUFFIX = ".scorers.json"


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


def calibrate_checkpoint(config, forward=None, *, checkpoint=None, progress=None, log=None):
    """Fit Maskomaly's accept and ground ids on ``config.dataset``; write and return ``calibration.json``.

    forward, checkpoint, progress, log: as in :func:`maskbench.benchmark.run.run_benchmark` (``out`` and the cache
    folder are claimed before the forward passes).
    """
    if config.limit is not None and config.limit < 1:
        raise ConfigError("limit", f" {config.limit}: must be at least 1")
    plugins = load_plugins(config.plugins)
    with contextlib.ExitStack() as held:
        record = dict(checkpoint) if checkpoint is not None else checkpoint_record(config.checkpoint, config.from_cache)
        command = " ".join(config.command) if config.command is not None else None
        claim_folder(config.out, held, log, command=command)  # writable and ours before the forward passes
        if config.cache is not None:
            claim_folder(ForwardCache(config.cache, record, config.dataset, None).folder, held, log, command=command)
        return _calibrate(config, forward, record, plugins, progress)


def _calibrate(config, forward, checkpoint, plugins, progress):
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
    write_json_atomic(Path(config.out) / CALIBRATION_FILE, record)
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


def fitted_params_file(checkpoint):
    """``<checkpoint stem>.scorers.json`` beside the checkpoint of a run's record when its ids belong to that
    checkpoint, else ``None``: a shipped model (:data:`WEIGHTS_DIR`), or a file that records the checkpoint's
    sha256 (``checkpoint_sha256``, as `bench train` writes it)."""
    path = Path(str(checkpoint.get("path") or ""))
    candidate = path.with_name(path.stem + SCORERS_SUFFIX) if path.name else None
    if candidate is None or not candidate.is_file():
        return None
    try:
        data = json.loads(candidate.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise FileReadError(candidate, f"cannot read the fitted scorer parameters as JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
        raise FileReadError(candidate, "expected an object with \"params\": {scorer: {param: value}}")
    shipped = path.resolve().parent == WEIGHTS_DIR
    return candidate if shipped or data.get("checkpoint_sha256") == checkpoint.get("sha256") else None


def maskomaly_ids(scorers, params, given, calibration, checkpoint):
    """Where each Maskomaly scorer of ``scorers`` takes its query ids from, for a run on ``checkpoint`` (its record).

    ``params``: the scorer parameters so far (``given``, the caller's, with the ids of ``calibration`` set by
    :func:`calibrated_params`). Other ids come from, in order: the fitted file of the checkpoint
    (:func:`fitted_params_file`); the published Swin-L ids on the checkpoint they belong to; the published ids on
    another checkpoint, with :data:`PUBLISHED_NOTE`, unless they are out of range for its query count: then the
    scorer is skipped. Returns ``(params, sources, notes, skipped)``: the parameters with fitted ids filled in,
    ``{scorer: {param: source}}``, ``{scorer: {note key: note}}`` and ``{scorer: reason}``.
    """
    params = {name: dict(p) for name, p in params.items()}
    fitted_file = fitted_params_file(checkpoint) if any(n in MASKOMALY_IDS for n in scorers) else None
    fitted = json.loads(fitted_file.read_text(encoding="utf-8"))["params"] if fitted_file else {}
    published = is_published_checkpoint(checkpoint)
    queries = (checkpoint.get("config") or {}).get("num_queries")
    sources, notes, skipped = {}, {}, {}
    for name in scorers:
        beyond = []  # published id lists out of range for this checkpoint
        for key in MASKOMALY_IDS.get(name, ()):
            if key in given.get(name, {}):
                source = "chosen (scorer parameters)"
                ids = list(given[name][key])
                bad = [i for i in ids if not 0 <= i < queries] if isinstance(queries, int) else []
                if bad:
                    raise ConfigError("scorer_params", f" {name}.{key}={ids}: query id(s) {bad} out of range for this "
                                      f"checkpoint's {queries} queries")
            elif key in params.get(name, {}):
                source = f"calibration {calibration['path']}"
            elif key in fitted.get("maskomaly", {}):
                params.setdefault(name, {})[key] = list(fitted["maskomaly"][key])
                source = f"fitted for this checkpoint ({fitted_file})"
            elif published:
                source = f"published (Swin-L Cityscapes {PUBLISHED_FILE}, this checkpoint)"
            else:
                source = PUBLISHED_NOTE
                notes.setdefault(name, {})[f"maskomaly.{key}"] = PUBLISHED_NOTE
                if isinstance(queries, int) and max(PUBLISHED_IDS[key]) >= queries:
                    beyond.append(f"{key} {list(PUBLISHED_IDS[key])}")
            sources.setdefault(name, {})[key] = source
        if beyond:
            skipped[name] = (f"its published Swin-L Cityscapes query ids ({', '.join(beyond)}) are out of range for "
                             f"this checkpoint's {queries} queries; fit ids for it with `bench calibrate maskomaly` "
                             "and pass the calibration file")
    return params, sources, notes, skipped


__all__ = ["CALIBRATION_FILE", "CalibrateConfig", "PUBLISHED_NOTE", "calibrate_checkpoint", "calibrated_params",
           "calibration_summary", "check_calibration_checkpoint", "fitted_params_file", "is_published_checkpoint",
           "maskomaly_ids", "read_calibration"]
