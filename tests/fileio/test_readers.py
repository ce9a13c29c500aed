"""Readers that cannot be fooled: valid files read exactly as numpy / PIL / h5py read them; crafted files are
refused with a FileReadError naming the file and the problem, before anything large is allocated."""

import pickle
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from maskbench.benchmark.evaluate import evaluate_dirs
from maskbench.errors import FileReadError, InputError
from maskbench.fileio import read_hdf5_map, read_image, read_label_png, read_npy


def _npy(path, descr, shape, data=b"", version=1):
    """A hand-made .npy (numpy lib/format.py layout): magic, version, header length, padded dict, data."""
    header = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    width = 2 if version == 1 else 4
    header += " " * (-(6 + 2 + width + len(header) + 1) % 64) + "\n"
    path.write_bytes(b"\x93NUMPY" + bytes([version, 0]) + len(header).to_bytes(width, "little") + header.encode()
                     + data)
    return path


@pytest.mark.parametrize("array", [
    np.arange(12, dtype=np.float16).reshape(3, 4),
    np.asfortranarray(np.arange(12, dtype=">i4").reshape(3, 4)),
    np.array([[True, False]]),
    np.zeros((0, 5), np.float32),
    np.float64(2.5),
    np.arange(24, dtype=np.uint8).reshape(2, 3, 4)[:, ::2],
], ids=["f16", "fortran-big-endian", "bool", "empty", "scalar", "strided"])
def test_valid_npy_reads_as_numpy_reads_it(tmp_path, array):
    path = tmp_path / "a.npy"
    np.save(path, array)
    got, want = read_npy(path), np.load(path, allow_pickle=False)
    assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
    assert got.flags.f_contiguous == want.flags.f_contiguous


def test_npy_format_versions_2_and_3(tmp_path):
    data = np.arange(6, dtype="<f4")
    for version in (2, 3):
        path = _npy(tmp_path / f"v{version}.npy", "<f4", (2, 3), data.tobytes(), version=version)
        assert np.array_equal(read_npy(path), np.load(path)) and read_npy(path).shape == (2, 3)


def _npz_renamed(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    return (tmp_path / "x.npz").read_bytes()


NPY_CASES = [
    ("zero-byte", lambda t: b"", "not a .npy file: it is empty (0 bytes)"),
    ("npz-renamed", _npz_renamed, "not a .npy file: it is a zip archive (an .npz saved under a .npy name? write one "
                                  "array with np.save)"),
    ("text", lambda t: b"0.1,0.2\n0.3,0.4\n", "not a .npy file: it is text starting with '0.1,0.2\\n0.3,0.4\\n'"),
    ("pickle", lambda t: pickle.dumps(np.zeros(2)), "not a .npy file: it is a Python pickle (a pickle, not an array; "
                                                    "refusing to unpickle)"),
    ("png", lambda t: b"\x89PNG\r\n\x1a\n" + bytes(20), "not a .npy file: it is a PNG image"),
    ("binary", lambda t: bytes(range(1, 40)), "not a .npy file: it starts with b'\\x01\\x02\\x03"),
]


@pytest.mark.parametrize("name,payload,message", NPY_CASES, ids=[c[0] for c in NPY_CASES])
def test_not_npy_files_say_what_they_are(tmp_path, name, payload, message):
    path = tmp_path / "scores.npy"
    path.write_bytes(payload(tmp_path))
    with pytest.raises(FileReadError) as err:
        read_npy(path)
    assert str(err.value).startswith(f"{path}: {message}") and err.value.path == path


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    path = tmp_path / "o.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FileReadError, match=r"o\.npy: array of Python objects \(dtype object\); refusing to unpickle"):
        read_npy(path)
    np.save(path, np.array(["abc"]))
    with pytest.raises(FileReadError, match=r"array of dtype <U3; expected numbers"):
        read_npy(path)


def test_absurd_headers_are_refused_before_allocating(tmp_path, monkeypatch):
    def no_alloc(*args, **kwargs):
        raise AssertionError("data was read for a refused header")
    monkeypatch.setattr(np, "fromfile", no_alloc)
    huge = _npy(tmp_path / "huge.npy", "<f4", (100000, 100000), bytes(64))
    with pytest.raises(FileReadError, match=r"huge\.npy: header claims shape \(100000, 100000\) float32 \(37\.3 GiB\), "
                                            r"more than the limit of 4\.0 GiB"):
        read_npy(huge)
    short = _npy(tmp_path / "short.npy", "<f4", (1000, 1000), bytes(64))
    with pytest.raises(FileReadError, match=r"short\.npy: truncated: the header claims shape \(1000, 1000\) float32 "
                                            r"\(4,000,000 bytes\) but 64 bytes of data follow"):
        read_npy(short)
    with pytest.raises(FileReadError, match=r"more than the limit of 1\.0 KiB"):
        read_npy(short, max_bytes=1024)
    for shape, what in [((-1, 4), "shape \\(-1, 4\\)"), ((True, 2), "shape \\(True, 2\\)"), ("3", "shape '3'")]:
        with pytest.raises(FileReadError, match=rf"malformed \.npy header: {what}"):
            read_npy(_npy(tmp_path / "bad.npy", "<f4", shape))
    path = tmp_path / "forged.npy"
    path.write_bytes(b"\x93NUMPY\x02\x00" + (2**31).to_bytes(4, "little") + b"{")
    with pytest.raises(FileReadError, match=r"\.npy header of 2147483648 bytes \(more than 10000"):
        read_npy(path)
    path.write_bytes(b"\x93NUMPY\x01\x00\x10\x00__import__('os')")
    with pytest.raises(FileReadError, match=r"malformed \.npy header"):
        read_npy(path)


def test_trailing_bytes_and_missing_files(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.zeros(4, np.float32))
    with open(path, "ab") as f:
        np.save(f, np.ones(4, np.float32))  # two arrays in one file: np.load would silently return the first
    with pytest.raises(FileReadError, match=r"144 unexpected bytes after the array data \(shape \(4,\) float32"):
        read_npy(path)
    with pytest.raises(FileReadError) as err:
        read_npy(tmp_path / "absent.npy")
    assert err.value.missing and str(err.value) == f"{tmp_path / 'absent.npy'}: no such file"
    with pytest.raises(FileReadError, match="is a folder, not a file"):
        read_npy(tmp_path)


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(width, height):
    """A few hundred bytes claiming width x height 8-bit grey pixels (PNG spec: IHDR, IDAT, IEND)."""
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(bytes(4096))) + _png_chunk(b"IEND", b""))


def test_label_png_reads_as_pil_reads_it(tmp_path):
    labels = np.random.default_rng(0).integers(0, 256, (30, 50), dtype=np.uint8)
    Image.fromarray(labels).save(tmp_path / "l.png")
    image = Image.fromarray(labels, "L").convert("P")
    image.save(tmp_path / "p.png")
    assert np.array_equal(read_label_png(tmp_path / "l.png", modes=("L", "P")), labels)
    assert np.array_equal(read_label_png(tmp_path / "p.png"), np.asarray(Image.open(tmp_path / "p.png")))


def test_jpeg_saved_as_png_is_refused(tmp_path):
    labels = np.zeros((32, 32), np.uint8)
    labels[8:24, 8:24] = 1
    Image.fromarray(labels).save(tmp_path / "gt.png", format="JPEG", quality=75)
    with pytest.raises(FileReadError) as err:
        read_label_png(tmp_path / "gt.png")
    assert str(err.value) == (f"{tmp_path / 'gt.png'}: unreadable label: not a PNG file: it is a JPEG image (labels "
                              "must be lossless PNG: JPEG compression changes label values)")


@pytest.mark.parametrize("width,height", [(100_000, 100_000), (9000, 9000), (2**31, 1)])
def test_decompression_bombs_are_refused_from_the_header(tmp_path, width, height):
    path = tmp_path / "bomb.png"
    path.write_bytes(_bomb_png(width, height))
    with pytest.raises(FileReadError, match=rf"bomb\.png: label header claims {width}x{height} pixels, more than the "
                                            r"limit of 67,108,864 \(a decompression bomb\?\)"):
        read_label_png(path)
    with pytest.raises(FileReadError, match=rf"bomb\.png: image header claims {width}x{height} pixels"):
        read_image(path)
    with pytest.raises(FileReadError, match=r"bomb\.png: label header claims .* more than the limit of 100 "):
        read_label_png(path, max_pixels=100)


def test_jpeg_bomb_beyond_pil_limit_is_a_file_error(tmp_path):
    """A JPEG header claiming 65500 x 65500 pixels: PIL's own DecompressionBombError never escapes."""
    Image.new("L", (16, 16)).save(tmp_path / "small.jpg", quality=50)
    data = bytearray((tmp_path / "small.jpg").read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 65500, 65500)
    (tmp_path / "bomb.jpg").write_bytes(bytes(data))
    with pytest.raises(FileReadError, match=r"bomb\.jpg: image header claims more than 178,956,970 pixels, more than "
                                            r"the limit of 67,108,864 \(a decompression bomb\?\)"):
        read_image(tmp_path / "bomb.jpg")
    data[sof + 5:sof + 9] = struct.pack(">HH", 10000, 10000)  # above PIL's warning, below its error
    (tmp_path / "bomb.jpg").write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's DecompressionBombWarning must not escape either
        with pytest.raises(FileReadError, match=r"image header claims 10000x10000 pixels, more than the limit"):
            read_image(tmp_path / "bomb.jpg")


def test_label_modes_truncation_and_empty_images(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "rgb.png")
    with pytest.raises(FileReadError, match=r"rgb\.png: label PNG has mode RGB; expected L or P \(single-channel "
                                            r"8-bit\)"):
        read_label_png(tmp_path / "rgb.png", modes=("L", "P"))
    assert read_label_png(tmp_path / "rgb.png").shape == (8, 8, 3)  # modes=None: as stored
    Image.new("L", (64, 64)).save(tmp_path / "cut.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "cut.png").read_bytes()[:60])
    with pytest.raises(FileReadError, match=r"cut\.png: unreadable or truncated label \("):
        read_label_png(tmp_path / "cut.png")
    (tmp_path / "zero.png").write_bytes(_bomb_png(0, 10))
    with pytest.raises(FileReadError, match=r"zero\.png: label header claims 0x10 pixels \(an empty image\)"):
        read_label_png(tmp_path / "zero.png")


def test_images_by_signature_not_name(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "frame.jpg", format="PNG")  # a PNG named .jpg is a PNG
    assert np.array_equal(read_image(tmp_path / "frame.jpg"), rgb)
    Image.fromarray(rgb).save(tmp_path / "frame.png", format="WEBP", lossless=True)
    with Image.open(tmp_path / "frame.png") as webp:
        assert webp.format == "WEBP" and np.array_equal(read_image(tmp_path / "frame.png"), rgb)
    Image.fromarray(rgb).save(tmp_path / "frame.gif")
    with pytest.raises(FileReadError, match=r"frame\.gif: unreadable image: not a PNG, JPEG or WebP file: it is a GIF"):
        read_image(tmp_path / "frame.gif")


def test_hdf5_maps(tmp_path):
    h5py = pytest.importorskip("h5py")  # optional dependency: SMIYC submissions only
    value = np.random.default_rng(2).random((6, 9)).astype(np.float16)
    with h5py.File(tmp_path / "ok.hdf5", "w") as f:
        f.create_dataset("value", data=value, compression="gzip")
    assert np.array_equal(read_hdf5_map(tmp_path / "ok.hdf5"), value)
    with h5py.File(tmp_path / "ub.hdf5", "w", userblock_size=1024) as f:
        f.create_dataset("value", data=value)
    assert np.array_equal(read_hdf5_map(tmp_path / "ub.hdf5"), value)
    with open(tmp_path / "npy.hdf5", "wb") as f:
        np.save(f, value)
    cases = {
        "npy.hdf5": "not an HDF5 file: it is a .npy array",
        "nokey.hdf5": "no dataset 'value' (holds: score)",
        "group.hdf5": "'value' is a group, not a dataset",
        "strings.hdf5": "'value' has dtype object; expected numbers",
        "cube.hdf5": "'value' has shape (2, 3, 4); expected a 2-D map (height, width)",
        "huge.hdf5": "'value' has shape (100000, 100000), more than the limit of 67,108,864 pixels",
        "external.hdf5": "'value' reads its data from other files (virtual or external storage)",
        "link.hdf5": "'value' is a link (ExternalLink), not data stored in this file",
    }
    with h5py.File(tmp_path / "nokey.hdf5", "w") as f:
        f["score"] = value
    with h5py.File(tmp_path / "group.hdf5", "w") as f:
        f.create_group("value")
    with h5py.File(tmp_path / "strings.hdf5", "w") as f:
        f["value"] = np.array([b"a", b"bc"], dtype=h5py.string_dtype())
    with h5py.File(tmp_path / "cube.hdf5", "w") as f:
        f["value"] = np.zeros((2, 3, 4), np.float32)
    with h5py.File(tmp_path / "huge.hdf5", "w") as f:
        f.create_dataset("value", shape=(100000, 100000), dtype=np.float32, chunks=(1000, 1000), compression="gzip")
    (tmp_path / "secret.bin").write_bytes(bytes(24))
    with h5py.File(tmp_path / "external.hdf5", "w") as f:
        f.create_dataset("value", shape=(2, 3), dtype=np.float32, external=[(str(tmp_path / "secret.bin"), 0, 24)])
    with h5py.File(tmp_path / "link.hdf5", "w") as f:
        f["value"] = h5py.ExternalLink(str(tmp_path / "ok.hdf5"), "value")
    for name, message in cases.items():
        with pytest.raises(FileReadError) as err:
            read_hdf5_map(tmp_path / name)
        assert str(err.value) == f"{tmp_path / name}: {message}", name


def _frames(tmp_path, n=4):
    rng = np.random.default_rng(5)
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    for i in range(n):
        labels = (rng.random((24, 32)) < 0.2).astype(np.uint8)
        np.save(pred / f"f{i}.npy", (rng.random((24, 32)) + labels).astype(np.float32))
        Image.fromarray(labels).save(gt / f"f{i}.png")
    return pred, gt


@pytest.mark.parametrize("workers", [1, 2])
def test_evaluate_refuses_a_jpeg_label_and_a_zero_byte_map(tmp_path, workers):
    pred, gt = _frames(tmp_path, n=8)
    Image.open(gt / "f3.png").save(gt / "f3.png", format="JPEG")
    with pytest.raises(InputError, match=r"gt/f3\.png: unreadable label: not a PNG file: it is a JPEG image"):
        evaluate_dirs(pred, gt, "exact", workers=workers)
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(gt / "f3.png")
    (pred / "f5.npy").write_bytes(b"")
    with pytest.raises(FileReadError, match=r"pred/f5\.npy: not a \.npy file: it is empty \(0 bytes\)"):
        evaluate_dirs(pred, gt, "exact", workers=workers)
