"""The forward source of a run: (checkpoint, resolution, device, cache or from-cache) -> outputs per frame view.

:func:`open_source` is the one way the benchmark turns those settings into a :class:`ForwardSource`: the
Mask2Former of a checkpoint through :class:`maskbench.model.Predictor` (:class:`ModelForward`), or any
``forward(image) -> (class logits [Q, K+1], mask logits [Q, H, W])`` a caller passes, optionally backed by the
forward cache (:mod:`.cache`). When caching, every consumer scores exactly the cached values (float32 class
logits, float16 mask logits; a checkpoint's at 1/4 resolution, upsampled as the Predictor does), so a run
``from_cache`` reproduces the run that filled the cache bit for bit without a model.

Every source comes with its checkpoint record ``{"path", "sha256", "config"}``: hashed from the checkpoint
file, given by the caller with its own forward, or the one checkpoint recorded in a ``from_cache`` folder.
"""

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import torch

from maskbench.benchmark.cache import ForwardCache, image_sha256
from maskbench.benchmark.results import jsonable
from maskbench.errors import ConfigError, InputError
from maskbench.model import Predictor, load_model, postprocess_mask_logits
from maskbench.model.predictor import RESIZE_POLICIES

#: Forward resolution policies (``resolution``): the Predictor's resize policies.
RESOLUTIONS = RESIZE_POLICIES
DEVICES = ("cpu", "cuda")


def checkpoint_sha256(path):
    """sha256 of a checkpoint file; for a directory (HF ``save_pretrained``), of its files' names and hashes."""
    path = Path(path)
    if path.is_file():
        return _file_sha256(path)
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f"{f.relative_to(path).as_posix()}\0{_file_sha256(f)}\n".encode())
        return h.hexdigest()
    raise ConfigError("checkpoint", f" {path}: no such file or directory")


def _file_sha256(path):
    h = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 22):
                h.update(chunk)
    except OSError as err:
        raise ConfigError("checkpoint", f" {path}: cannot read ({err})") from err
    return h.hexdigest()


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
        with torch.inference_mode():
            pixels, size = self.predictor.preprocess(image)
            out = self.predictor.model(pixels)
        return out["pred_logits"][0], out["pred_masks"][0], size


def load_forward(checkpoint, resolution, device):
    """``(ModelForward, config record)`` of the checkpoint file ``checkpoint`` at ``resolution`` on ``device``."""
    model, report = load_model(checkpoint)
    predictor = Predictor(model.to(device), resize=resolution)
    config = jsonable(dataclasses.asdict(report.config))
    config["msda_backend_resolved"] = predictor.msda_backend
    return ModelForward(predictor), config


def checkpoint_record(checkpoint=None, from_cache=None):
    """``{"path", "sha256", "config"}`` of the checkpoint file ``checkpoint`` (config ``None`` until loaded), or of
    the one checkpoint cached in ``from_cache``."""
    if checkpoint is not None:
        return {"path": str(checkpoint), "sha256": checkpoint_sha256(checkpoint), "config": None}
    if from_cache is not None:
        return ForwardCache.checkpoint_in(from_cache)
    raise ConfigError("checkpoint", ": required (or from_cache DIR to score cached forward outputs)",
                      mentions=("from_cache",))


def check_settings(resolution, device, cache=None, from_cache=None):
    """Refuse unknown forward settings before anything is loaded."""
    if resolution not in RESOLUTIONS:
        raise ConfigError("resolution", f" {resolution!r}: choose one of {', '.join(RESOLUTIONS)}")
    if device not in DEVICES:
        raise ConfigError("device", f" {device!r}: choose one of {', '.join(DEVICES)}")
    if cache is not None and from_cache is not None:
        raise ConfigError(("cache", "from_cache"), ": give one (cache reads and fills, from_cache only reads)",
                          mentions=("cache", "from_cache"))


def open_source(dataset, *, checkpoint=None, resolution="native", device="cpu", cache=None, from_cache=None,
                forward=None, record=None, torch_device=None):
    """The :class:`ForwardSource` of these settings for ``dataset`` (its name and version key the cache).

    ``forward``: a caller's forward (default: the Mask2Former of ``checkpoint`` at ``resolution``); ``record``:
    its checkpoint record (default: hashed from ``checkpoint``, or the one of ``from_cache``). With
    ``from_cache`` no forward runs: every frame view must be in the cache. ``torch_device``: where the outputs
    go (default ``device``; torchrun ranks pass their own GPU).
    """
    check_settings(resolution, device, cache, from_cache)
    record = dict(record) if record is not None else checkpoint_record(checkpoint, from_cache)
    if from_cache is not None:
        forward = None
        if record.get("config") is None:
            record["config"] = ForwardCache.recorded_config(from_cache, record["sha256"])
    elif forward is None:
        forward, record["config"] = load_forward(checkpoint, resolution, device)
    root = from_cache or cache
    store = ForwardCache(root, record, dataset.name, dataset.info.get("version")) if root else None
    return ForwardSource(forward, store, from_cache is not None, resolution, torch_device or torch.device(device),
                         record)


class ForwardSource:
    """Forward outputs of a frame view: from the cache, or from ``forward`` (then stored when caching).

    ``source(frame_id, image_hash, image, view)`` -> (class logits [Q, K+1], mask logits [Q, H, W]) on ``device``,
    ``image_hash`` being :func:`~maskbench.benchmark.cache.image_sha256` of the unflipped image (None without cache).
    """

    def __init__(self, forward, cache, cache_only, resolution, device, checkpoint):
        self.forward, self.cache, self.cache_only = forward, cache, cache_only
        self.resolution, self.device, self.checkpoint = resolution, device, checkpoint

    @property
    def kind(self):
        """``"cache"`` (no forward runs) or ``"forward"``."""
        return "cache" if self.cache_only else "forward"

    @property
    def outputs(self):
        """What the consumers score, in words (``run.json`` ``forward_outputs``)."""
        if self.cache is None:
            return "as the forward returns them"
        return ("float32 class logits, float16 mask logits (as cached; a checkpoint's at 1/4 resolution, "
                "upsampled as the Predictor does)")

    def image_hash(self, image):
        """The cache key of an image's content (None without cache: nothing to key)."""
        return image_sha256(image) if self.cache is not None else None

    def __call__(self, frame_id, image_hash, image, view):
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
    return postprocess_mask_logits(quarter.float(), tuple(int(v) for v in processed_size), tuple(image_size))


__all__ = ["DEVICES", "RESOLUTIONS", "ForwardSource", "ModelForward", "check_settings", "checkpoint_record",
           "checkpoint_sha256", "load_forward", "open_source"]
