"""Crafted checkpoint files: every one is an InputError naming the file and the problem, and none runs code.

The oracle for the safetensors rules is the reference ``safetensors`` library (it refuses the same files);
the containment rules for HF folders are checked against files placed outside the folder.
"""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch

from maskbench.errors import InputError
from maskbench.model.checkpoint import load_model
from maskbench.model.checkpoint_io import read_checkpoint, read_pickle_file, read_torch_file
from maskbench.model.hf import hf_weight_files, read_safetensors


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_torch_file_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"model": {"a": _RunsCode(marker)}}, path)
    with pytest.raises(InputError, match=r"evil\.pth: not a readable torch checkpoint: weights_only loading failed"):
        load_model(path)
    assert not marker.exists()


def _npz_bytes(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros(3))
    return (tmp_path / "a.npz").read_bytes()


def _torch_bytes(tmp_path):
    torch.save({"a": torch.ones(2)}, tmp_path / "t.pth")
    return (tmp_path / "t.pth").read_bytes()


def _safetensors_bytes():
    header = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    return len(header).to_bytes(8, "little") + header + bytes(8)


CASES = [  # (file name, payload maker, expected message after the path)
    ("empty.pth", lambda t: b"", "not a torch checkpoint (torch.save zip archive): it is empty (0 bytes)"),
    ("empty.pkl", lambda t: b"", "not a detectron2 .pkl checkpoint (a pickle): it is empty (0 bytes)"),
    ("arrays.pth", _npz_bytes, "not a torch checkpoint: a zip archive without data.pkl (an .npz or another archive; "
                               "holds x.npy)"),
    ("torch.pkl", _torch_bytes, "not a detectron2 .pkl checkpoint (a pickle): it is a zip archive (a torch.save "
                                "file? name it .pth)"),
    ("st.pth", lambda t: _safetensors_bytes(), "not a torch checkpoint (torch.save zip archive): it is a safetensors "
                                               "file (put it in a Hugging Face folder as model.safetensors next to "
                                               "its config.json)"),
    ("text.pkl", lambda t: b"model: resnet50\n", "not a detectron2 .pkl checkpoint (a pickle): it is text starting "
                                                 "with 'model: resnet50\\n'"),
    ("scores.pth", lambda t: b"\x93NUMPY\x01\x00", "not a torch checkpoint (torch.save zip archive): it is a .npy "
                                                   "array (a numpy array, not a checkpoint)"),
]


@pytest.mark.parametrize("name,payload,message", CASES, ids=[c[0] for c in CASES])
def test_checkpoint_format_is_checked_by_signature(tmp_path, name, payload, message):
    path = tmp_path / name
    path.write_bytes(payload(tmp_path))
    with pytest.raises(InputError) as err:
        read_checkpoint(path)
    assert str(err.value) == f"{path}: {message}"


def test_corrupt_zip_pth_is_named(tmp_path):
    path = tmp_path / "cut.pth"
    path.write_bytes(b"PK\x03\x04" + bytes(60))
    with pytest.raises(InputError, match=r"cut\.pth: not a readable torch checkpoint \(corrupt zip archive"):
        read_checkpoint(path)


def test_legacy_formats_still_load(tmp_path):
    """Legacy torch serialization (a pickle stream) and protocol-0/1 pickles pass the signature check."""
    state = {"w": torch.arange(6.0).reshape(2, 3)}
    torch.save(state, tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    assert torch.equal(read_torch_file(tmp_path / "old.pth")["w"], state["w"])
    for protocol in (0, 1):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps({"model": {"w": np.arange(6.0).reshape(2, 3)}}, protocol=protocol))
        assert torch.equal(read_pickle_file(path)["w"], torch.arange(6.0, dtype=torch.float64).reshape(2, 3))


def _st_file(tmp_path, header: dict, data: bytes, name="x.safetensors"):
    raw = json.dumps(header).encode()
    path = tmp_path / name
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
    return path


ST_CASES = [  # (header, data bytes, message fragment) -- each also refused by the reference library
    ({"a": {"dtype": "F32", "shape": [-2, -3], "data_offsets": [0, 24]}}, 24,
     "tensor 'a' has shape [-2, -3]; expected a list of integers >= 0"),
    ({"a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}, 4,
     "tensor 'a' has shape [1.5]; expected a list of integers >= 0"),
    ({"a": {"dtype": "F32", "shape": "4", "data_offsets": [0, 16]}}, 16,
     "tensor 'a' has shape '4'; expected a list of integers >= 0"),
    ({"a": {"dtype": "X9", "shape": [1], "data_offsets": [0, 4]}}, 4, "tensor 'a' has dtype 'X9'; supported: F64"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}, 4,
     "tensor 'a' has data_offsets [0]; expected [begin, end]"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, 12, "tensor 'b' has offsets [4, 12)"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, 8, "tensor 'a' has offsets [4, 8)"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, 12, "8 bytes after the last tensor"),
    ({"a": {"dtype": "F32", "shape": [1 << 40, 1 << 40], "data_offsets": [0, 4]}}, 4, "tensor 'a' has offsets [0, 4)"),
    ({"a": [1, 2]}, 0, "malformed safetensors entry 'a': [1, 2]"),
]


@pytest.mark.parametrize("case", range(len(ST_CASES)))
def test_invalid_safetensors_headers_are_refused(tmp_path, case):
    header, nbytes, message = ST_CASES[case]
    path = _st_file(tmp_path, header, bytes(nbytes))
    with pytest.raises(InputError) as err:
        read_safetensors(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)
    reference = pytest.importorskip("safetensors.torch")  # the oracle: the reference reader refuses it too
    with pytest.raises(Exception):  # noqa: B017, PT011 - the reference raises its own error types
        reference.load_file(str(path))


def test_header_over_the_reference_limit_is_refused(tmp_path):
    path = tmp_path / "big.safetensors"
    path.write_bytes((100_000_001).to_bytes(8, "little") + b"{" + bytes(100_000_000))
    with pytest.raises(InputError, match=r"header size 100000001 exceeds file size 100000009 or the 100,000,000-byte"):
        read_safetensors(path)


def _hf_folder(tmp_path, ckpt):
    folder = tmp_path / "model"
    ckpt.write_hf_dir(folder, ckpt.official_state(ckpt.build_ckpt_model("resnet"), "d2-zoo"))
    return folder


def _index(folder, *names):
    (folder / "model.safetensors").rename(folder / "shard-1.safetensors")
    weight_map = {f"k{i}": name for i, name in enumerate(names)}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


@pytest.mark.parametrize("name,message", [
    ("../secret.safetensors", "names '../secret.safetensors'; expected a file name inside the folder"),
    ("/etc/passwd", "names '/etc/passwd'; expected a file name inside the folder"),
    ("sub/../../secret.safetensors", "expected a file name inside the folder"),
    (7, "names 7; expected a file name inside the folder"),
    ("absent.safetensors", "absent.safetensors: the shard index model.safetensors.index.json names a file that does "
                           "not exist or is not a regular file"),
])
def test_shard_index_cannot_leave_the_model_folder(tmp_path, ckpt, name, message):
    folder = _hf_folder(tmp_path, ckpt)
    (tmp_path / "secret.safetensors").write_bytes(_safetensors_bytes())
    _index(folder, "shard-1.safetensors", name)
    with pytest.raises(InputError) as err:
        load_model(folder)
    assert message in str(err.value) and str(folder) in str(err.value)


def test_symlinked_shard_outside_the_folder_is_refused(tmp_path, ckpt):
    folder = _hf_folder(tmp_path, ckpt)
    (tmp_path / "secret.safetensors").write_bytes(_safetensors_bytes())
    (folder / "link.safetensors").symlink_to(tmp_path / "secret.safetensors")
    _index(folder, "shard-1.safetensors", "link.safetensors")
    with pytest.raises(InputError, match=rf"link\.safetensors: resolves to {tmp_path / 'secret.safetensors'}, outside "
                                         rf"the model folder {folder}; refusing to read it"):
        load_model(folder)
    (folder / "model.safetensors.index.json").unlink()
    (folder / "model.safetensors").symlink_to("/dev/zero")
    with pytest.raises(InputError, match="outside the model folder"):
        load_model(folder)
    (folder / "config.json").unlink()
    (folder / "config.json").symlink_to("/dev/zero")
    with pytest.raises(InputError, match=r"config\.json: resolves to /dev/zero, outside the model folder"):
        load_model(folder)


def test_hugging_face_hub_cache_layout_loads(tmp_path, ckpt):
    """snapshots/<rev>/model.safetensors -> ../../blobs/<hash>: the symlinks stay inside the cache entry."""
    source = _hf_folder(tmp_path, ckpt)
    entry = tmp_path / "models--org--m2f"
    (entry / "blobs").mkdir(parents=True)
    snapshot = entry / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (source / name).rename(entry / "blobs" / f"hash-{name}")
        (snapshot / name).symlink_to(f"../../blobs/hash-{name}")
    assert hf_weight_files(snapshot) == [snapshot / "model.safetensors"]
    model, report = load_model(snapshot)
    assert report.ok and report.format == "hf"
