"""`bench run`: one forward per frame, every scorer, every metric of the dataset's protocol.

Pass 0 (per frame, resumable): forward (or the forward cache), all scorers on that one output, the score maps
written to ``<out>/work/<index>.npz`` in the protocol's score dtype (float16 for the SMIYC and ``exact16``
protocols, as SMIYC stores them; float32 for ``exact``) and one row appended to ``per_image.jsonl``. Only the
pixels labelled 0 or 1 are stored (with the full label map): every metric ignores void scores (the pixel curves
skip void, the components zero it before labelling), and on the obstacle tracks void is most of the frame.
A frame counts as done only once its row is on disk and its maps exist, so a crash or Ctrl-C loses at most
the frame in flight and re-running the same command resumes.

Passes 1 and 2 read the stored maps back, as `bench evaluate` does: pixel accumulators (AP, AUROC, FPR95, MDM,
the split's best-F1 threshold), then component accumulators at each scorer's threshold. The metrics are
recomputed from the maps on every run, so a resumed run never counts a frame twice. With torchrun every rank
handles its own frames and the accumulators are merged exactly (:mod:`maskbench.benchmark.distributed`); ranks
append their rows to ``work/rows.<rank>.jsonl`` and rank 0 writes ``per_image.jsonl`` (sorted by frame) at the end.

``--cache DIR`` keeps the forward outputs (float32 class logits, float16 mask logits; :mod:`.cache`). When
caching, the scorers run on exactly the cached (float16-rounded) values, so ``--from-cache`` reproduces the run
bit for bit without a model.

``--tta flip`` follows Mask2Anomaly (``anomaly_utils/anomaly_inference.py``, the only reference with TTA): the
image and its horizontal flip each get their own forward and their own scorer map (refinement included), the
flipped map is flipped back and the two maps are averaged, ``(s + flip(s_lr)) / 2``. Averaging scorer maps
rather than forward outputs keeps every scorer's definition unchanged.
"""

import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np

from maskbench import __version__
from maskbench.benchmark.cache import VIEWS, ForwardCache, image_sha256, write_npz_atomic
from maskbench.benchmark.evaluate import (
    EVAL_PROTOCOLS, default_workers, map_merge, metric_values, protocol_details,
)
from maskbench.benchmark.results import (
    RowLog, checkpoint_sha256, package_versions, read_json, read_rows, utc_now,
    write_json_atomic, write_results, write_rows,
)
from maskbench.errors import InputError
from maskbench.metrics.components import ComponentAccumulator
from maskbench.metrics.pixel import PixelAccumulator

#: The six methods compared by default (the registry also holds Maskomaly's two parts).
DEFAULT_SCORERS = ("msp", "rba", "eam", "aem", "maskomaly", "mask2anomaly")
RESOLUTIONS = ("native", "short1024")
TTA_MODES = ("none", "flip")
#: ``--protocol`` values besides the full names of EVAL_PROTOCOLS: resolved with the dataset's track.
PROTOCOL_ALIASES = ("official", "exact", "exact16")
#: Datasets with an anomaly track whose official protocol `bench run` does not implement yet.
NOT_YET = {
    "streethazards": "its official protocol averages per-image metrics over the 1500 frames (Hendrycks et al.), "
                     "which `bench run` does not implement yet",
}
#: Fields of run.json that must match for a run to resume in the same --out (``limit`` may grow).
RESUME_FIELDS = ("dataset", "checkpoint", "scorers", "protocol", "fpr95_rule", "resolution", "tta", "device",
                 "source")


@dataclasses.dataclass
class RunConfig:
    """Everything `bench run` needs; ``scorer_params`` maps a scorer name to its hyperparameters."""

    dataset: str
    out: Path
    scorers: tuple
    root: Path | None = None
    dataset_options: dict = dataclasses.field(default_factory=dict)
    scorer_params: dict = dataclasses.field(default_factory=dict)
    checkpoint: Path | None = None
    protocol: str = "official"
    fpr95_rule: str = "first_geq"
    resolution: str = "native"
    tta: str = "none"
    device: str = "cpu"
    cache: Path | None = None
    from_cache: Path | None = None
    limit: int | None = None
    calibration: Path | None = None
    save_maps: int = 4
    keep_work: bool = False
    workers: int | None = None
    command: list | None = None


def resolve_protocol(requested, dataset_name, track):
    """The EVAL_PROTOCOLS name for ``--protocol requested`` on a dataset of component track ``track``."""
    if dataset_name in NOT_YET:
        raise InputError(f"--dataset {dataset_name}: {NOT_YET[dataset_name]}")
    if track not in ("anomaly", "obstacle"):
        raise InputError(f"--dataset {dataset_name}: no anomaly or obstacle track (no anomaly labels, or another "
                         "task such as panoptic segmentation); `bench run` evaluates anomaly segmentation only")
    if requested in (None, "official"):
        return f"smiyc-{track}"
    if requested in ("exact", "exact16"):
        return requested if track == "anomaly" else f"{requested}-obstacle"
    if requested not in EVAL_PROTOCOLS:
        raise InputError(f"--protocol {requested!r}: choose one of {', '.join(PROTOCOL_ALIASES + tuple(EVAL_PROTOCOLS))}")
    return requested


def parse_scorer_params(items):
    """``["maskomaly.lam=0.5", "mask2anomaly.suppress=[2,3]"]`` -> ``{scorer: {key: value}}`` (values read as JSON,
    else kept as strings)."""
    params = {}
    for item in items:
        name, eq, value = item.partition("=")
        scorer, dot, key = name.partition(".")
        if not (eq and dot and scorer and key):
            raise InputError(f"--param {item!r}: expected SCORER.KEY=VALUE, e.g. maskomaly.lam=0.5")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        params.setdefault(scorer, {})[key] = parsed
    return params


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


class PerScorer(dict):
    """``{scorer: accumulator}`` that merges key by key (so it can go through ``map_merge`` and the gather)."""

    def merge(self, other):
        for name, acc in other.items():
            self[name].merge(acc)
        return self


def _pixel_chunk(frames, names, pixel_protocol, fpr95_rule):
    accs = PerScorer({n: PixelAccumulator(pixel_protocol, fpr95_rule=fpr95_rule) for n in names})
    return _accumulate(accs, frames)


def _component_chunk(frames, thresholds, track, score_dtype):
    accs = PerScorer({n: ComponentAccumulator(t, track=track, score_dtype=score_dtype)
                      for n, t in thresholds.items() if t is not None})
    return _accumulate(accs, frames)


def _labelled(ood):
    """Pixels labelled 0 (inlier) or 1 (anomaly): the only ones whose scores any metric reads."""
    return (ood == 0) | (ood == 1)


def _accumulate(accs, frames):
    for index, path in frames:
        with np.load(path, allow_pickle=False) as z:
            gt = z["ood"]
            roi = _labelled(gt)
            for name, acc in accs.items():
                scores = np.zeros(gt.shape, z[name].dtype)  # void pixels: 0, never read by the metrics
                scores[roi] = z[name]
                try:
                    acc.update(scores, gt)
                except InputError as err:
                    raise InputError(f"frame {index} ({path}), scorer {name}: {err}") from err
    return accs


def _accumulators(frames, func, args, empty, workers, bar):
    """Accumulate this rank's frames (in ``workers`` processes), counting them on ``bar``."""
    if not frames:
        return empty
    try:
        return map_merge(func, frames, args, workers, bar.update if bar else lambda n: None)
    finally:
        if bar:
            bar.close()


def _merged(parts):
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    return merged


class ForwardSource:
    """Forward outputs of a frame view: from the cache, or from ``forward`` (then stored when caching).

    ``source(frame_id, image_hash, image, view)`` -> (class logits [Q, K+1], mask logits [Q, H, W]) on ``device``,
    ``image_hash`` being :func:`~maskbench.benchmark.cache.image_sha256` of the unflipped image (None without cache).
    """

    def __init__(self, forward, cache, cache_only, resolution, device):
        self.forward, self.cache, self.cache_only = forward, cache, cache_only
        self.resolution, self.device = resolution, device

    def __call__(self, frame_id, image_hash, image, view):
        import torch

        key = self.cache.key(frame_id, image_hash, self.resolution, view) if self.cache else None
        if self.cache is not None:
            hit = self.cache.load(key)
            if hit is not None:
                class_logits = torch.from_numpy(hit["class_logits"]).to(self.device)
                if "mask_logits_quarter" in hit:
                    quarter = torch.from_numpy(hit["mask_logits_quarter"]).to(self.device)
                    return class_logits, _expand(quarter, hit["processed_size"], image.shape[:2])
                return class_logits, torch.from_numpy(hit["mask_logits"]).to(self.device)
            if self.cache_only:
                raise InputError(self.cache.describe_miss(key))
        if self.cache is not None and isinstance(self.forward, ModelForward):
            # Cache the 1/4-resolution logits (16x smaller) and score their upsampling, as a replay will.
            class_logits, quarter, size = self.forward.raw(image)
            class_logits, quarter = class_logits.float(), quarter.half()
            self.cache.store(key, class_logits=class_logits.cpu().numpy(), mask_logits_quarter=quarter.cpu().numpy(),
                             processed_size=np.array(size, np.int64))
            return class_logits.to(self.device), _expand(quarter, size, image.shape[:2])
        class_logits, mask_logits = self.forward(image)
        if not (isinstance(class_logits, torch.Tensor) and isinstance(mask_logits, torch.Tensor)):
            raise InputError(f"frame {frame_id!r}: the forward must return two tensors (class logits, mask logits)")
        if mask_logits.ndim != 3 or tuple(mask_logits.shape[1:]) != image.shape[:2]:
            raise InputError(f"frame {frame_id!r}: the forward returned mask logits of shape "
                             f"{tuple(mask_logits.shape)}, expected [Q, {image.shape[0]}, {image.shape[1]}] "
                             "(the image size)")
        if self.cache is not None:
            # Score exactly what the cache holds, so a run from the cache reproduces this run bit for bit.
            class_logits, mask_logits = class_logits.float(), mask_logits.half()
            self.cache.store(key, class_logits=class_logits.cpu().numpy(), mask_logits=mask_logits.cpu().numpy())
        return class_logits.to(self.device), mask_logits.to(self.device)


def _expand(quarter, processed_size, image_size):
    """float16 ``[Q, Hp/4, Wp/4]`` logits -> float32 ``[Q, H, W]``, as the Predictor upsamples them."""
    from maskbench.model import postprocess_mask_logits

    return postprocess_mask_logits(quarter.float(), tuple(int(v) for v in processed_size), tuple(image_size))


class ModelForward:
    """The Mask2Former of a checkpoint through :class:`maskbench.model.Predictor`.

    ``forward(image)`` gives class logits and mask logits at the image size; ``raw(image)`` gives the class
    logits, the 1/4-resolution mask logits of the padded input and the processed size, which is what the
    forward cache stores.
    """

    def __init__(self, predictor):
        self.predictor = predictor

    def __call__(self, image):
        prediction = self.predictor(image)
        return prediction.class_logits, prediction.mask_logits

    def raw(self, image):
        import torch

        with torch.inference_mode():
            pixels, size = self.predictor.preprocess(image)
            out = self.predictor.model(pixels)
        return out["pred_logits"][0], out["pred_masks"][0], size


class MapBuffers:
    """Score maps reused frame after frame (``score_all(out=...)``): no fresh 8 MB per map and frame to fault in.

    The maps a frame returns are overwritten by the next frame's, so a caller consumes them first."""

    def __init__(self):
        self.key, self.maps = None, None

    def get(self, names, shape, device):
        """Maps ``name -> float32 shape`` on ``device`` for the labels ``names``; the same tensors while the key holds."""
        key = (tuple(names), tuple(shape), str(device))
        if key != self.key:
            import torch

            self.key = key
            self.maps = {name: torch.empty(tuple(shape), dtype=torch.float32, device=device) for name in names}
        return self.maps


def score_frame(sample, source, scorers, tta, buffers=None):
    """``{scorer: float32 (H, W) numpy map}`` of one frame, averaged over the TTA views; without TTA the maps
    are written into ``buffers`` (a :class:`MapBuffers`) when given."""
    from maskbench.scorers import score_all

    image_hash = image_sha256(sample.image) if source.cache is not None else None
    views = VIEWS if tta == "flip" else VIEWS[:1]
    total = None
    for view in views:
        image = sample.image if view == "none" else np.ascontiguousarray(sample.image[:, ::-1])
        class_logits, mask_logits = source(sample.id, image_hash, image, view)
        out = None
        if buffers is not None and len(views) == 1:
            out = buffers.get(scorers, mask_logits.shape[1:], mask_logits.device)
        try:
            maps = score_all(scorers, class_logits, mask_logits, out=out)
        except InputError as err:
            raise InputError(f"frame {sample.id!r} ({view} view): {err}") from err
        if view == "hflip":
            maps = {name: m.flip(-1) for name, m in maps.items()}
        total = maps if total is None else {name: total[name] + maps[name] for name in maps}
    if len(views) > 1:
        total = {name: m / len(views) for name, m in total.items()}
    return {name: m.cpu().numpy() for name, m in total.items()}


def _check_range(maps, score_dtype, frame_id, protocol):
    """Refuse scores (of a registered custom scorer) that are not finite or that float16 would make infinite."""
    limit = 65520.0 if score_dtype == np.float16 else np.inf  # |x| >= 65520 rounds to inf in float16
    for name, m in maps.items():
        if not np.isfinite(m).all():
            raise InputError(f"frame {frame_id!r}: scorer {name} produced NaN or infinite scores")
        if np.abs(m).max() >= limit:
            raise InputError(f"frame {frame_id!r}: scorer {name} has scores beyond float16's range (max |s| = "
                             f"{float(np.abs(m).max())}), which protocol {protocol} stores in float16; use "
                             "--protocol exact")


def _overlay_dtype(scores):
    """float16 for ``maps/`` (RESULTS_SCHEMA.md), float32 where float16 would overflow (custom scorers)."""
    return scores.astype(np.float16) if np.abs(scores).max() < 65520.0 else scores


def _row(index, sample, maps, seconds):
    valid, anomaly = sample.ood <= 1, sample.ood == 1
    inlier = sample.ood == 0
    stats = {}
    for name, m in maps.items():
        stats[name] = {
            "min": float(m.min()), "max": float(m.max()),
            "mean_anomaly": float(m[anomaly].mean(dtype=np.float64)) if anomaly.any() else None,
            "mean_inlier": float(m[inlier].mean(dtype=np.float64)) if inlier.any() else None,
        }
    return {"id": sample.id, "index": index, "height": int(sample.ood.shape[0]), "width": int(sample.ood.shape[1]),
            "n_valid": int(valid.sum()), "n_anomaly": int(anomaly.sum()), "seconds": round(seconds, 4),
            "scores": stats}


def _model_forward(checkpoint, resolution, device):
    from maskbench.model import Predictor, load_model

    model, report = load_model(checkpoint)
    predictor = Predictor(model.to(device), resize=resolution)
    config = _jsonable(dataclasses.asdict(report.config))
    config["msda_backend_resolved"] = predictor.msda_backend
    return ModelForward(predictor), config


def _resume_view(meta):
    """The parts of run.json that must match for a run to continue in the same --out (``limit`` may differ)."""
    view = {k: meta.get(k) for k in RESUME_FIELDS}
    view["checkpoint"] = (meta.get("checkpoint") or {}).get("sha256")
    return view


def _previous_run(out, meta, limit):
    """``"fresh"``, ``"resume"`` or ``"finished"``: the state of ``out``, refusing a different configuration."""
    if not (out / "run.json").is_file():
        return "fresh"
    previous = read_json(out / "run.json")
    old, new = _resume_view(previous), _resume_view(meta)
    differing = [k for k in RESUME_FIELDS if old[k] != new[k]]
    if differing:
        raise InputError(f"--out {out} holds a run with a different {', '.join(differing)}; choose another --out "
                         "or delete it to start over")
    if not previous.get("finished"):
        return "resume"
    if previous.get("limit") != limit or not (out / "results.json").is_file():
        raise InputError(f"--out {out} holds a finished run (--limit {previous.get('limit')}); "
                         "choose another --out or delete it to run again")
    return "finished"


def run_benchmark(config, forward=None, *, checkpoint=None, progress=None):
    """Run the benchmark described by ``config``; returns the results.json content (on every rank).

    forward: ``image uint8 (H, W, 3) -> (class logits [Q, K+1], mask logits [Q, H, W])`` torch tensors; by
        default the Mask2Former of ``config.checkpoint`` (``maskbench.model``) at ``config.resolution``.
    checkpoint: ``{"path", "sha256", "config"}`` describing ``forward`` (default: hashed from ``config.checkpoint``).
    progress: ``progress(label, total)`` -> object with ``update(n)`` and ``close()`` (shown on rank 0 only).
    """
    from maskbench.benchmark import distributed

    dist, device = distributed.from_env(config.device)
    try:
        return _run(config, forward, checkpoint, progress, dist, device)
    finally:
        dist.close()


def _prepare(config, forward, checkpoint):
    from maskbench.benchmark import calibrate
    from maskbench.datasets import DATASETS, load_dataset
    from maskbench.scorers import get_scorer

    if config.resolution not in RESOLUTIONS:
        raise InputError(f"--resolution {config.resolution!r}: choose one of {', '.join(RESOLUTIONS)}")
    if config.tta not in TTA_MODES:
        raise InputError(f"--tta {config.tta!r}: choose one of {', '.join(TTA_MODES)}")
    if config.limit is not None and config.limit < 1:
        raise InputError(f"--limit {config.limit}: must be at least 1")
    if not config.scorers:
        raise InputError("--scorer: name at least one scorer")
    if len(set(config.scorers)) != len(config.scorers):
        raise InputError(f"--scorer {','.join(config.scorers)}: a scorer is named twice")
    stray = sorted(set(config.scorer_params) - set(config.scorers))
    if stray:
        raise InputError(f"--param given for scorer(s) {stray} that are not in --scorer {','.join(config.scorers)}")
    calibration = calibrate.read_calibration(config.calibration) if config.calibration is not None else None
    scorer_params = (calibrate.calibrated_params(config.scorers, config.scorer_params, calibration)
                     if calibration else config.scorer_params)
    scorers = {}
    for name in config.scorers:
        try:
            scorers[name] = get_scorer(name, **scorer_params.get(name, {}))
        except InputError as err:
            raise InputError(f"--scorer/--param: {err}") from err
    if config.dataset not in DATASETS.names():
        raise InputError(f"--dataset {config.dataset!r}: unknown; known datasets: {', '.join(DATASETS.names())}")
    protocol = resolve_protocol(config.protocol, config.dataset, DATASETS.get(config.dataset).track)
    try:
        PixelAccumulator(EVAL_PROTOCOLS[protocol].pixel, fpr95_rule=config.fpr95_rule)
    except InputError as err:
        raise InputError(f"--fpr95-rule {config.fpr95_rule} with protocol {protocol}: {err}") from err
    ds = load_dataset(config.dataset, config.root, **config.dataset_options)
    checkpoint = checkpoint_record(config, checkpoint)
    if calibration:
        calibrate.check_calibration_checkpoint(calibration, checkpoint)
    checkpoint, forward, cache = resolve_forward(config, ds, forward, checkpoint)
    notes = calibrate.published_id_notes(config.scorers, scorer_params, checkpoint)
    return ds, scorers, protocol, checkpoint, forward, cache, calibration, notes


def checkpoint_record(config, checkpoint=None):
    """``{"path", "sha256", "config"}`` of ``config.checkpoint`` (hashed; config None until loaded) or of the one
    checkpoint cached in ``config.from_cache``; ``checkpoint`` itself when given."""
    if config.cache is not None and config.from_cache is not None:
        raise InputError("--cache and --from-cache: give one (--cache reads and fills, --from-cache only reads)")
    if checkpoint is not None:
        return checkpoint
    if config.checkpoint is not None:
        return {"path": str(config.checkpoint), "sha256": checkpoint_sha256(config.checkpoint), "config": None}
    if config.from_cache is not None:
        return ForwardCache.checkpoint_in(config.from_cache)
    raise InputError("--checkpoint: required (or --from-cache DIR to score cached forward outputs)")


def resolve_forward(config, ds, forward=None, checkpoint=None):
    """``(checkpoint record, forward, cache)`` for ``config``'s ``checkpoint``, ``cache``, ``from_cache``,
    ``resolution``, ``device`` and ``dataset`` (a :class:`RunConfig` or any object with those fields).

    The record is ``{"path", "sha256", "config"}``: hashed from ``--checkpoint``, or the one checkpoint of
    ``--from-cache`` (then ``forward`` is None: every frame must come from the cache). Without a ``forward``
    the Mask2Former of the checkpoint is loaded. Feed the three to :class:`ForwardSource`.
    """
    checkpoint = checkpoint_record(config, checkpoint)
    cache_root = config.from_cache or config.cache
    if config.from_cache is not None:
        forward = None
        if checkpoint.get("config") is None:
            checkpoint["config"] = ForwardCache.recorded_config(config.from_cache, checkpoint["sha256"])
    elif forward is None:
        forward, checkpoint["config"] = _model_forward(config.checkpoint, config.resolution, config.device)
    cache = ForwardCache(cache_root, checkpoint, config.dataset, ds.info.get("version")) if cache_root else None
    return checkpoint, forward, cache


def _run(config, forward, checkpoint, progress, dist, device):
    ds, scorers, protocol, checkpoint, forward, cache, calibration, scorer_notes = _prepare(config, forward, checkpoint)
    proto = EVAL_PROTOCOLS[protocol]
    score_dtype = PixelAccumulator(proto.pixel).score_dtype
    out = Path(config.out)
    work = out / "work"
    n_frames = len(ds) if config.limit is None else min(config.limit, len(ds))
    meta = {
        "maskbench_version": __version__,
        "command": list(config.command) if config.command is not None else list(sys.argv),
        "started": utc_now(),
        "finished": None,
        "dataset": {"name": config.dataset, "root": str(ds.root), "options": _jsonable(config.dataset_options),
                    "info": _jsonable(ds.info)},
        "checkpoint": _jsonable(checkpoint),
        "scorers": {n: _jsonable(dict(s.params)) for n, s in scorers.items()},
        "calibration": calibration,
        "protocol": protocol,
        "protocol_choice": (f"official protocol of the {ds.info['track']} track ({config.dataset})"
                            if config.protocol in (None, "official") else f"--protocol {config.protocol}"),
        "fpr95_rule": config.fpr95_rule,
        "resolution": config.resolution,
        "tta": config.tta,
        "tta_rule": "none" if config.tta == "none" else
                    "mean of the scorer maps of the image and of its horizontal flip (flipped back), as Mask2Anomaly",
        "device": config.device,
        "world_size": dist.world,
        "source": "cache" if config.from_cache is not None else "forward",
        "forward_outputs": "float32 class logits, float16 mask logits (as cached; a checkpoint's at 1/4 resolution, "
                           "upsampled as the Predictor does)" if cache is not None else "as the forward returns them",
        "limit": config.limit,
        "frames": n_frames,
        "versions": package_versions(),
    }
    state = _previous_run(out, meta, config.limit) if dist.is_main else None
    state = dist.gather(state)[0]
    if state == "finished":  # the same command again: report the stored results
        return dist.gather(read_json(out / "results.json") if dist.is_main else None)[0]
    if dist.is_main:
        if state == "resume":
            meta["started"] = read_json(out / "run.json")["started"]
        work.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "run.json", meta)
    dist.barrier()
    work.mkdir(parents=True, exist_ok=True)

    mine = dist.shard(range(n_frames))
    row_files = [out / "per_image.jsonl", *sorted(work.glob("rows.*.jsonl"))]
    done = {i: r for i, r in read_rows(row_files).items() if i < n_frames and (work / f"{i:06d}.npz").is_file()}
    rows = {i: done[i] for i in mine if i in done}
    todo = [i for i in mine if i not in done]
    log = RowLog(out / "per_image.jsonl" if dist.world == 1 else work / f"rows.{dist.rank}.jsonl")
    source = ForwardSource(forward, cache, config.from_cache is not None, config.resolution, device)
    bar = progress("forward + scorers", len(todo)) if progress and dist.is_main else None
    maps_dir = out / "maps"
    ids = ds.ids
    buffers = MapBuffers()  # each frame's maps are consumed (stored, summarised) before the next frame's
    try:
        for index in todo:
            start = time.perf_counter()
            sample = ds[index]
            if sample.id != ids[index]:
                raise InputError(f"{config.dataset}: frame {index} read as {sample.id!r}, listed as {ids[index]!r}")
            maps = score_frame(sample, source, scorers, config.tta, buffers)
            _check_range(maps, score_dtype, sample.id, protocol)
            roi = _labelled(sample.ood)
            write_npz_atomic(work / f"{index:06d}.npz", ood=sample.ood,
                             **{n: m[roi].astype(score_dtype) for n, m in maps.items()})
            if index < config.save_maps:
                maps_dir.mkdir(exist_ok=True)
                write_npz_atomic(maps_dir / f"{quote(sample.id, safe='')}.npz", image=sample.image, ood=sample.ood,
                                 **{n: _overlay_dtype(m) for n, m in maps.items()})
            rows[index] = _row(index, sample, maps, time.perf_counter() - start)
            log.append(rows[index])
            if bar:
                bar.update(1)
    finally:
        log.close()
        if bar:
            bar.close()

    frames = [(i, work / f"{i:06d}.npz") for i in mine]
    names = list(scorers)
    # ranks share the machine's cores when they share a node
    workers = config.workers or max(1, default_workers(len(frames)) // dist.world)
    bar = progress("pixel metrics", len(frames)) if progress and dist.is_main and frames else None
    pixel_parts = dist.gather(_accumulators(
        frames, _pixel_chunk, (names, proto.pixel, config.fpr95_rule),
        PerScorer({n: PixelAccumulator(proto.pixel, fpr95_rule=config.fpr95_rule) for n in names}), workers, bar))
    pixel = {n: acc.compute() for n, acc in _merged(pixel_parts).items()}
    thresholds = {n: pixel[n].threshold for n in names}
    bar = progress("component metrics", len(frames)) if progress and dist.is_main and frames else None
    comp_parts = dist.gather(_accumulators(
        frames, _component_chunk, (thresholds, proto.track, score_dtype),
        PerScorer({n: ComponentAccumulator(t, track=proto.track, score_dtype=score_dtype)
                   for n, t in thresholds.items() if t is not None}), workers, bar))
    comp = {n: acc.compute() for n, acc in _merged(comp_parts).items()}
    all_rows = dist.gather(rows)

    results = None
    if dist.is_main:
        merged_rows = {i: r for part in all_rows for i, r in part.items()}
        write_rows(out / "per_image.jsonl", merged_rows)
        entries, curves = [], {}
        for n in names:
            values = metric_values(pixel[n], comp.get(n))
            notes = {**scorer_notes.get(n, {}), **values.pop("notes")}
            entries.append({"scorer": n, "dataset": config.dataset, "protocol": protocol,
                            "metrics": {**values, "images": len(merged_rows)},
                            "protocol_details": protocol_details(proto, pixel[n]), "notes": notes})
            curves[n] = (*pixel[n].pr_curve(), *pixel[n].roc_curve())
        meta["finished"] = utc_now()
        results = {"run": meta, "results": entries}
        write_results(out, meta, entries, curves)
        write_json_atomic(out / "run.json", meta)  # last: a finished run.json implies complete results
        if not config.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    return dist.gather(results)[0]


def run_summary(results):
    """What was run: frames against the official count, checkpoint, source, resolution, TTA; then a warning line
    for every Maskomaly scorer left on the published Swin-L query ids of another checkpoint."""
    run = results["run"]
    info = run["dataset"]["info"]
    frames = results["results"][0]["metrics"]["images"] if results["results"] else 0
    official = info.get("official_count")
    partial = "" if official in (None, frames) else f" of {official} official (partial: not comparable to published numbers)"
    lines = [f"{run['dataset']['name']}: {frames} frames{partial}; protocol {run['protocol']}; checkpoint "
             f"{run['checkpoint']['sha256'][:12]} ({run['source']}); resolution {run['resolution']}; tta {run['tta']}"]
    for entry in results["results"]:
        published = [k for k in (entry.get("notes") or {}) if k in ("maskomaly.accept", "maskomaly.ground")]
        if published:
            lines.append(f"WARNING: {entry['scorer']} uses the published Swin-L Cityscapes query ids "
                         f"({', '.join(k.split('.')[1] for k in published)}), which are not fitted for this "
                         "checkpoint: its numbers are not meaningful; fit them with `bench calibrate maskomaly` "
                         "and pass --calibration")
    return "\n".join(lines)


class TerminalProgress:
    """``label  done/total  rate img/s  eta`` on stderr, redrawn in place."""

    def __init__(self, label, total, stream=None):
        self.label, self.total, self.done = label, total, 0
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self._draw()

    def update(self, n):
        self.done += n
        self._draw()

    def _draw(self):
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 and self.done else 0.0
        eta = f"{(self.total - self.done) / rate:.0f}s" if rate else "?"
        self.stream.write(f"\r{self.label}  {self.done}/{self.total}  {rate:.2f} img/s  eta {eta}   ")
        self.stream.flush()

    def close(self):
        self.stream.write("\n")
        self.stream.flush()


__all__ = ["ForwardSource", "RunConfig", "TerminalProgress", "checkpoint_record", "parse_scorer_params",
           "resolve_forward", "resolve_protocol", "run_benchmark", "run_summary", "score_frame"]
