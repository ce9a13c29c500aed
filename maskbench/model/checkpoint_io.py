"""Read the tensors of a Mask2Former checkpoint safely, before any model exists.

detectron2 ``.pkl``: a restricted unpickler that only rebuilds numpy arrays inside dicts/lists (detectron2
itself uses a plain ``pickle.load``); trainer ``.pth``/``.pt``/``.bin``: ``torch.load(map_location="cpu",
weights_only=True)``; Hugging Face directory: safetensors parsed by :mod:`maskbench.model.hf`, keys renamed to
detectron2 names. The format is checked by signature first, so a file of the wrong kind is named as such.
"""

from __future__ import annotations

import codecs
import collections
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from maskbench.errors import InputError
from maskbench.fileio.sniff import expect, kind_of, read_head
from maskbench.model.hf import checkpoint_filter_fn, hf_weight_files, read_hf_config, read_safetensors


# numpy's own reconstruction functions, taken from how numpy pickles (``numpy.core`` before 2.0, ``numpy._core``
# since): the same objects whichever module path a pickle names.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_SCALAR = np.float64(0).__reduce__()[0]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how protocol-2 pickles from Python 3 store bytes
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy array reconstruction, ``OrderedDict`` and ``_codecs.encode``:
    a ``.pkl`` cannot run code while loading (detectron2 itself uses a plain ``pickle.load``)."""

    def find_class(self, module: str, name: str):
        try:
            return _PICKLE_ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global '{module}.{name}' (only numpy arrays in dicts/lists are accepted)"
            ) from None


def _unwrap_state_dict(obj, path: Path, convert) -> dict[str, Tensor]:
    """``{"model": {name: array}, ...}`` or a bare ``{name: array}`` -> ``{name: Tensor}`` (``module.`` stripped)."""
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj:
        raise InputError(f"{path}: expected a state dict (or a dict with a 'model' state dict), "
                         f"got {type(obj).__name__}{' (empty)' if isinstance(obj, dict) else ''}")
    out = {}
    for key, value in obj.items():
        tensor = convert(value)
        if not isinstance(key, str) or tensor is None:
            raise InputError(f"{path}: entry {key!r} of the state dict is a {type(value).__name__}, "
                             "not a numeric array; this is not a model state dict")
        out[key.removeprefix("module.")] = tensor
    return out


def _numpy_to_tensor(value) -> Tensor | None:
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
        return torch.from_numpy(np.ascontiguousarray(value))
    return None


#: What a checkpoint of one suffix was found to be instead, and what to do about it.
_CHECKPOINT_HINTS = {
    "zip": "a torch.save file? name it .pth",
    "pickle": "a pickle (a detectron2 checkpoint? name it .pkl)",
    "safetensors": "put it in a Hugging Face folder as model.safetensors next to its config.json",
    "npy": "a numpy array, not a checkpoint",
}
#: First bytes of a pickle of protocol 0 or 1 (no PROTO opcode): MARK, EMPTY_DICT, EMPTY_LIST.
_OLD_PICKLE_STARTS = (b"(", b"}", b"]")


def _check_pickle_signature(path: Path) -> None:
    """A ``.pkl`` must start as a pickle does (PROTO opcode, or a protocol 0/1 container)."""
    head = read_head(path)
    if kind_of(head) != "pickle" and head[:1] not in _OLD_PICKLE_STARTS:
        hints = {k: v for k, v in _CHECKPOINT_HINTS.items() if k != "pickle"}
        expect(path, ("pickle",), "a detectron2 .pkl checkpoint (a pickle)", hints=hints)


def _check_torch_signature(path: Path) -> None:
    """A torch ``.pth``: a zip archive holding ``data.pkl`` (torch >= 1.6) or a legacy pickle stream."""
    head = expect(path, ("zip", "pickle"), "a torch checkpoint (torch.save zip archive)",
                  hints={k: v for k, v in _CHECKPOINT_HINTS.items() if k not in ("zip", "pickle")})
    if kind_of(head) == "zip":
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as e:
            raise InputError(f"{path}: not a readable torch checkpoint (corrupt zip archive: {e})") from e
        if not any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
            raise InputError(f"{path}: not a torch checkpoint: a zip archive without data.pkl (an .npz or another "
                             f"archive; holds {', '.join(names[:5]) or 'nothing'})")


def read_pickle_file(path: Path) -> dict[str, Tensor]:
    """detectron2 model-zoo ``.pkl``: latin1 pickle of ``{"model": {name: ndarray}, "__author__": ...}``."""
    _check_pickle_signature(path)
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="latin1").load()
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad user file
        raise InputError(f"{path}: not a readable detectron2 .pkl checkpoint ({type(e).__name__}: {e})") from e
    return _unwrap_state_dict(obj, path, _numpy_to_tensor)


def read_torch_file(path: Path) -> dict[str, Tensor]:
    """``torch.save`` file: ``{"model": state_dict, ...}`` (detectron2 trainer) or a bare state dict."""
    _check_torch_signature(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise InputError(f"{path}: not a readable torch checkpoint: weights_only loading failed (a corrupt "
                         "file, or one holding objects other than tensors and plain containers; re-save those "
                         f"as {{'model': state_dict}}): {str(e).splitlines()[0]}") from e
    except Exception as e:  # noqa: BLE001 - truncated zip, not a torch file, ...
        raise InputError(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})") from e
    return _unwrap_state_dict(obj, path, lambda v: v if isinstance(v, Tensor) else None)


@dataclass(frozen=True)
class RawCheckpoint:
    """Tensors of one checkpoint under detectron2 names, before any model exists.

    format: ``"d2-pkl"``, ``"torch"`` (``.pth``/``.pt``/``.bin``) or ``"hf"`` (directory).
    hints: :class:`Mask2FormerConfig` fields read from a HF ``config.json`` (head counts).
    ignored: HF keys with no detectron2 counterpart, with the reason. unmatched: HF keys no rule renames.
    """

    state: dict[str, Tensor]
    format: str
    hints: dict = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)


def read_checkpoint(path: str | Path) -> RawCheckpoint:
    """Read a detectron2 ``.pkl``, a torch ``.pth``/``.pt``/``.bin`` or a HF directory (by suffix / type)."""
    path = Path(path)
    if path.is_dir():
        config = read_hf_config(path)
        hf_tensors: dict[str, Tensor] = {}
        for file in hf_weight_files(path):
            hf_tensors.update(read_safetensors(file) if file.suffix == ".safetensors" else read_torch_file(file))
        state, ignored, unmatched = checkpoint_filter_fn(hf_tensors)
        heads = config.get("num_attention_heads")  # HF uses one head count for the encoder and the decoder
        hints = {"nheads": heads, "enc_nheads": heads} if isinstance(heads, int) else {}
        return RawCheckpoint(state, "hf", hints, ignored, unmatched)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    if path.suffix == ".pkl":
        return RawCheckpoint(read_pickle_file(path), "d2-pkl")
    if path.suffix in (".pth", ".pt", ".bin"):
        return RawCheckpoint(read_torch_file(path), "torch")
    raise InputError(f"{path}: unknown checkpoint format {path.suffix!r}; expected a detectron2 .pkl, a "
                     "torch .pth/.pt/.bin, or a Hugging Face directory (config.json + model.safetensors)")
