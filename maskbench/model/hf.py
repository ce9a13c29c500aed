"""Hugging Face ``Mask2FormerForUniversalSegmentation`` directories -> detectron2-named state dicts.

A directory holds ``config.json`` and ``model.safetensors`` (or a sharded ``model.safetensors.index.json``,
or ``pytorch_model.bin``). Safetensors is parsed here (8-byte little-endian header length, JSON header
``name -> {dtype, shape, data_offsets}``, raw buffer), so no extra dependency is needed.

:func:`checkpoint_filter_fn` renames keys with the explicit table :data:`HF_TO_D2` (timm style). It
accepts both namings found in the wild:

* the file naming written by ``save_pretrained`` of transformers 4.x and 5.x (Swin
  ``encoder.layers.{s}.blocks.{b}.attention.self.{query,key,value}``, ``attention.output.dense``,
  ``intermediate.dense``, ``output.dense``);
* the live module naming of transformers 5.x (``encoder.swin.encoder...attention.{q,k,v}_proj``,
  ``attention.o_proj``, ``attention.relative_position_bias.relative_position_bias_table``, ``mlp.fc{1,2}``).

Split projections (Swin ``query/key/value``, decoder self-attention ``q/k/v_proj``) are concatenated
row-wise into detectron2's packed ``qkv`` / ``in_proj_*`` (rows ``[q; k; v]``). HF ResNet backbones
(``embedder``/``stages``) map onto :class:`maskbench.model.resnet.ResNet`. Key names are from
``huggingface/transformers`` ``models/mask2former/modeling_mask2former.py``, ``models/swin/modeling_swin.py``,
``models/resnet/modeling_resnet.py`` and the conversion script
``convert_mask2former_original_pytorch_checkpoint_to_pytorch.py`` (research notes ``forward.md`` §3.6).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from maskbench.errors import InputError
from maskbench.fileio.sniff import MAX_SAFETENSORS_HEADER

_ST_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}


def _tensor_entry(path: Path, name: str, info) -> tuple[torch.dtype, list[int], int, int]:
    """``(dtype, shape, begin, end)`` of one header entry, every field checked."""
    if not isinstance(info, dict):
        raise InputError(f"{path}: malformed safetensors entry {name!r}: {info!r}")
    dtype = _ST_DTYPES.get(info.get("dtype")) if isinstance(info.get("dtype"), str) else None
    if dtype is None:
        raise InputError(f"{path}: tensor {name!r} has dtype {info.get('dtype')!r}; supported: {', '.join(_ST_DTYPES)}")
    shape, offsets = info.get("shape"), info.get("data_offsets")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise InputError(f"{path}: tensor {name!r} has shape {shape!r}; expected a list of integers >= 0")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
        raise InputError(f"{path}: tensor {name!r} has data_offsets {offsets!r}; expected [begin, end]")
    return dtype, shape, offsets[0], offsets[1]


def read_safetensors(path: Path) -> dict[str, Tensor]:
    """Tensors of one ``.safetensors`` file (format: u64 LE header size, JSON header, data buffer).

    Checked as the reference ``safetensors`` crate does before any tensor is built: header size within
    the file and at most 100 MB, a JSON object, known dtypes, shapes of integers >= 0, each tensor's
    byte range of exactly ``numel * itemsize`` bytes, and the ranges tiling the buffer without holes or
    overlaps.
    """
    size = _file_size(path)
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if size < 8 or n > size - 8 or n > MAX_SAFETENSORS_HEADER:
                raise InputError(f"{path}: not a safetensors file (header size {n} exceeds file size {size} or the "
                                 f"{MAX_SAFETENSORS_HEADER:,}-byte limit)")
            header = json.loads(f.read(n))
            buffer = bytearray(size - 8 - n)
            f.readinto(buffer)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise InputError(f"{path}: cannot read safetensors header: {e}") from e
    if not isinstance(header, dict):
        raise InputError(f"{path}: safetensors header is not a JSON object")
    entries = {name: _tensor_entry(path, name, info) for name, info in header.items() if name != "__metadata__"}
    covered = 0
    for name, (dtype, shape, begin, end) in sorted(entries.items(), key=lambda item: item[1][2:]):
        nbytes = math.prod(shape) * torch.empty(0, dtype=dtype).element_size()
        if begin != covered or end - begin != nbytes or end > len(buffer):
            raise InputError(f"{path}: tensor {name!r} has offsets [{begin}, {end}) inconsistent with shape {shape} "
                             f"{header[name]['dtype']} and buffer size {len(buffer)} (truncated file, or byte ranges "
                             "with holes or overlaps)")
        covered = end
    if covered != len(buffer):
        raise InputError(f"{path}: {len(buffer) - covered} bytes after the last tensor (corrupt or not safetensors)")
    tensors = {}
    for name, (dtype, shape, begin, end) in entries.items():
        numel = math.prod(shape)
        flat = torch.frombuffer(buffer, dtype=dtype, count=numel, offset=begin) if numel else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(shape)
    return tensors


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from e


def _inside(folder: Path, name, what: str) -> Path:
    """``folder / name`` for a weight file named by the folder's own files, refused unless it stays inside.

    ``name`` must be a relative path without ``..``; the file it resolves to (symlinks followed) must be a
    regular file inside ``folder``, or inside the Hugging Face hub cache entry that holds a ``snapshots/<rev>``
    folder (whose files are symlinks to ``../../blobs/<hash>``).
    """
    if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise InputError(f"{folder}: {what} names {name!r}; expected a file name inside the folder")
    target = (folder / name).resolve()
    roots = [folder.resolve()]
    if folder.resolve().parent.name == "snapshots":
        roots.append(folder.resolve().parent.parent)
    if not any(target.is_relative_to(root) for root in roots):
        raise InputError(f"{folder / name}: resolves to {target}, outside the model folder {folder}; "
                         "refusing to read it")
    if not target.is_file():
        raise InputError(f"{folder / name}: {what} names a file that does not exist or is not a regular file")
    return folder / name


def read_hf_config(path: Path) -> dict:
    """Parsed ``config.json`` of a ``save_pretrained`` directory (must be a ``mask2former`` model)."""
    if not (path / "config.json").exists():
        raise InputError(f"{path}: not a Hugging Face model directory (no config.json)")
    config_file = _inside(path, "config.json", "the folder")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{config_file}: not valid JSON: {e}") from e
    if not isinstance(config, dict) or config.get("model_type") != "mask2former":
        got = config.get("model_type") if isinstance(config, dict) else type(config).__name__
        raise InputError(f"{config_file}: expected model_type 'mask2former', got {got!r}")
    return config


def hf_weight_files(path: Path) -> list[Path]:
    """Weight files of a HF directory: ``model.safetensors``, the shards listed in
    ``model.safetensors.index.json``, or ``pytorch_model.bin`` (first found)."""
    if (path / "model.safetensors").exists():
        return [_inside(path, "model.safetensors", "the folder")]
    index_file = path / "model.safetensors.index.json"
    if index_file.exists():
        index_file = _inside(path, index_file.name, "the folder")
        try:
            weight_map = json.loads(index_file.read_text())["weight_map"]
            shards = sorted(set(weight_map.values()), key=str)
        except (OSError, KeyError, TypeError, AttributeError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{index_file}: malformed shard index: {e}") from e
        return [_inside(path, shard, f"the shard index {index_file.name}") for shard in shards]
    if (path / "pytorch_model.bin").exists():
        return [_inside(path, "pytorch_model.bin", "the folder")]
    raise InputError(f"{path}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin")


# --- rename table ------------------------------------------------------------------------------------
# Each rule: (regex over the full HF key, function of the match -> detectron2 key, part).
# ``part`` is None, or (i, n): the tensor is row block i of n to concatenate (packed q/k/v).

_Rule = tuple[str, Callable[[re.Match], str], "tuple[int, int] | None"]

_ENC = r"model\.pixel_level_module\.encoder\."
_SWIN = _ENC + r"(?:swin\.)?"
_BLOCK = _SWIN + r"encoder\.layers\.(\d+)\.blocks\.(\d+)\."
_PIX = r"model\.pixel_level_module\.decoder\."
_DEC = r"model\.transformer_module\."
_PD = "sem_seg_head.pixel_decoder."
_PR = "sem_seg_head.predictor."


def _blk(m: re.Match, rest: str) -> str:
    return f"backbone.layers.{m[1]}.blocks.{m[2]}.{rest}"


def _qkv_rules(prefix: str, names: tuple[str, str, str], target: Callable[[re.Match, str], str]) -> list[_Rule]:
    return [(prefix + name + r"\.(weight|bias)", (lambda m, t=target: t(m, m[m.re.groups])), (i, 3))
            for i, name in enumerate(names)]


HF_TO_D2: list[_Rule] = [
    # Swin backbone (file naming and transformers-5 live naming)
    (_SWIN + r"embeddings\.patch_embeddings\.projection\.(weight|bias)", lambda m: f"backbone.patch_embed.proj.{m[1]}", None),
    (_SWIN + r"embeddings\.norm\.(weight|bias)", lambda m: f"backbone.patch_embed.norm.{m[1]}", None),
    (_BLOCK + r"layernorm_before\.(weight|bias)", lambda m: _blk(m, f"norm1.{m[3]}"), None),
    (_BLOCK + r"layernorm_after\.(weight|bias)", lambda m: _blk(m, f"norm2.{m[3]}"), None),
    *_qkv_rules(_BLOCK + r"attention\.self\.", ("query", "key", "value"), lambda m, p: _blk(m, f"attn.qkv.{p}")),
    *_qkv_rules(_BLOCK + r"attention\.", ("q_proj", "k_proj", "v_proj"), lambda m, p: _blk(m, f"attn.qkv.{p}")),
    (_BLOCK + r"attention\.(?:self|relative_position_bias)\.(relative_position_bias_table|relative_position_index)",
     lambda m: _blk(m, f"attn.{m[3]}"), None),
    (_BLOCK + r"attention\.(?:output\.dense|o_proj)\.(weight|bias)", lambda m: _blk(m, f"attn.proj.{m[3]}"), None),
    (_BLOCK + r"(?:intermediate\.dense|mlp\.fc1)\.(weight|bias)", lambda m: _blk(m, f"mlp.fc1.{m[3]}"), None),
    (_BLOCK + r"(?:output\.dense|mlp\.fc2)\.(weight|bias)", lambda m: _blk(m, f"mlp.fc2.{m[3]}"), None),
    (_SWIN + r"encoder\.layers\.(\d+)\.downsample\.(reduction|norm)\.(weight|bias)",
     lambda m: f"backbone.layers.{m[1]}.downsample.{m[2]}.{m[3]}", None),
    (_ENC + r"hidden_states_norms\.stage(\d)\.(weight|bias)", lambda m: f"backbone.norm{int(m[1]) - 1}.{m[2]}", None),
    # ResNet backbone
    (_ENC + r"embedder\.embedder\.convolution\.weight", lambda m: "backbone.stem.conv1.weight", None),
    (_ENC + r"embedder\.embedder\.normalization\.(\w+)", lambda m: f"backbone.stem.conv1.norm.{m[1]}", None),
    (_ENC + r"encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.convolution\.weight",
     lambda m: f"backbone.res{int(m[1]) + 2}.{m[2]}.shortcut.weight", None),
    (_ENC + r"encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.normalization\.(\w+)",
     lambda m: f"backbone.res{int(m[1]) + 2}.{m[2]}.shortcut.norm.{m[3]}", None),
    (_ENC + r"encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d)\.convolution\.weight",
     lambda m: f"backbone.res{int(m[1]) + 2}.{m[2]}.conv{int(m[3]) + 1}.weight", None),
    (_ENC + r"encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d)\.normalization\.(\w+)",
     lambda m: f"backbone.res{int(m[1]) + 2}.{m[2]}.conv{int(m[3]) + 1}.norm.{m[4]}", None),
    # pixel decoder
    (_PIX + r"level_embed", lambda m: _PD + "transformer.level_embed", None),
    (_PIX + r"input_projections\.(\d+)\.([01])\.(weight|bias)", lambda m: _PD + f"input_proj.{m[1]}.{m[2]}.{m[3]}", None),
    (_PIX + r"encoder\.layers\.(\d+)\.self_attn\.(sampling_offsets|attention_weights|value_proj|output_proj)\.(weight|bias)",
     lambda m: _PD + f"transformer.encoder.layers.{m[1]}.self_attn.{m[2]}.{m[3]}", None),
    (_PIX + r"encoder\.layers\.(\d+)\.(self_attn_layer_norm|fc1|fc2|final_layer_norm)\.(weight|bias)",
     lambda m: _PD + f"transformer.encoder.layers.{m[1]}."
     + {"self_attn_layer_norm": "norm1", "fc1": "linear1", "fc2": "linear2", "final_layer_norm": "norm2"}[m[2]]
     + f".{m[3]}", None),
    (_PIX + r"mask_projection\.(weight|bias)", lambda m: _PD + f"mask_features.{m[1]}", None),
    (_PIX + r"(adapter|layer)_(\d+)\.0\.weight", lambda m: _PD + f"{m[1]}_{m[2]}.weight", None),
    (_PIX + r"(adapter|layer)_(\d+)\.1\.(weight|bias)", lambda m: _PD + f"{m[1]}_{m[2]}.norm.{m[3]}", None),
    # transformer decoder
    (_DEC + r"queries_embedder\.weight", lambda m: _PR + "query_embed.weight", None),
    (_DEC + r"queries_features\.weight", lambda m: _PR + "query_feat.weight", None),
    (_DEC + r"level_embed\.weight", lambda m: _PR + "level_embed.weight", None),
    (_DEC + r"decoder\.layernorm\.(weight|bias)", lambda m: _PR + f"decoder_norm.{m[1]}", None),
    (_DEC + r"decoder\.mask_predictor\.mask_embedder\.(\d+)\.0\.(weight|bias)",
     lambda m: _PR + f"mask_embed.layers.{m[1]}.{m[2]}", None),
    *_qkv_rules(_DEC + r"decoder\.layers\.(\d+)\.self_attn\.", ("q_proj", "k_proj", "v_proj"),
                lambda m, p: _PR + f"transformer_self_attention_layers.{m[1]}.self_attn.in_proj_{p}"),
    (_DEC + r"decoder\.layers\.(\d+)\.self_attn\.(?:out_proj|o_proj)\.(weight|bias)",
     lambda m: _PR + f"transformer_self_attention_layers.{m[1]}.self_attn.out_proj.{m[2]}", None),
    (_DEC + r"decoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)",
     lambda m: _PR + f"transformer_self_attention_layers.{m[1]}.norm.{m[2]}", None),
    (_DEC + r"decoder\.layers\.(\d+)\.cross_attn\.(in_proj_weight|in_proj_bias)",
     lambda m: _PR + f"transformer_cross_attention_layers.{m[1]}.multihead_attn.{m[2]}", None),
    (_DEC + r"decoder\.layers\.(\d+)\.cross_attn\.(?:out_proj|o_proj)\.(weight|bias)",
     lambda m: _PR + f"transformer_cross_attention_layers.{m[1]}.multihead_attn.out_proj.{m[2]}", None),
    (_DEC + r"decoder\.layers\.(\d+)\.cross_attn_layer_norm\.(weight|bias)",
     lambda m: _PR + f"transformer_cross_attention_layers.{m[1]}.norm.{m[2]}", None),
    (_DEC + r"decoder\.layers\.(\d+)\.(?:mlp\.)?fc([12])\.(weight|bias)",
     lambda m: _PR + f"transformer_ffn_layers.{m[1]}.linear{m[2]}.{m[3]}", None),
    (_DEC + r"decoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)",
     lambda m: _PR + f"transformer_ffn_layers.{m[1]}.norm.{m[2]}", None),
    (r"class_predictor\.(weight|bias)", lambda m: _PR + f"class_embed.{m[1]}", None),
    (r"criterion\.empty_weight", lambda m: "criterion.empty_weight", None),
]

#: HF keys with no detectron2 counterpart, dropped with the reason.
HF_IGNORED: list[tuple[str, str]] = [
    (_SWIN + r"layernorm\.(weight|bias)",
     "final LayerNorm of HF's Swin model; the backbone outputs use hidden_states_norms (d2 norm0..norm3)"),
]

_COMPILED = [(re.compile(p), f, part) for p, f, part in HF_TO_D2]
_COMPILED_IGNORED = [(re.compile(p), reason) for p, reason in HF_IGNORED]


def checkpoint_filter_fn(state_dict: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, str], list[str]]:
    """HF-named tensors -> ``(detectron2-named tensors, {dropped HF key: reason}, [HF keys matching no rule])``.

    Packed projections are assembled only when all three parts are present; an incomplete set is
    reported as unmatched.
    """
    out: dict[str, Tensor] = {}
    ignored: dict[str, str] = {}
    unmatched: list[str] = []
    parts: dict[str, dict[int, tuple[str, Tensor]]] = {}
    for key, value in state_dict.items():
        reason = next((r for rx, r in _COMPILED_IGNORED if rx.fullmatch(key)), None)
        if reason is not None:
            ignored[key] = reason
            continue
        for rx, target, part in _COMPILED:
            m = rx.fullmatch(key)
            if m is None:
                continue
            name = target(m)
            if part is None:
                out[name] = value
            else:
                parts.setdefault(name, {})[part[0]] = (key, value)
            break
        else:
            unmatched.append(key)
    for name, pieces in parts.items():
        if sorted(pieces) == [0, 1, 2]:
            out[name] = torch.cat([pieces[i][1] for i in range(3)], 0)
        else:
            unmatched.extend(k for k, _ in pieces.values())
    return out, ignored, unmatched
