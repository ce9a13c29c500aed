"""Arrays from ``.npy`` and ``.hdf5`` files, checked before a byte of data is allocated.

``.npy`` (numpy ``lib/format.py``, NEP 1): magic ``\\x93NUMPY``, version (1.0: u16 header length, latin-1;
2.0: u32, latin-1; 3.0: u32, UTF-8), a Python-literal dict ``{'descr', 'fortran_order', 'shape'}`` padded to
a multiple of 64 bytes, then the raw data. The header is parsed here with :func:`ast.literal_eval` (as numpy
does) so that a forged shape, an object dtype (which would unpickle) or a truncated file is refused with
the file's name before any allocation; the data must fill the rest of the file exactly.

``.hdf5`` (SMIYC submissions: one file per frame holding the dataset ``value``, read upstream with
``h5py.File(path)['value'][:]``): the superblock signature is checked, then the dataset's kind, dtype and
shape; data stored in other files (external storage, virtual datasets, external links) is refused.

``.npz`` (``np.savez``): a zip archive (PKWARE APPNOTE) of ``<key>.npy`` members, each checked as a ``.npy``
file; the uncompressed sizes the archive declares are checked before anything is decompressed.
"""

import ast
import math
import zipfile
import zlib

import numpy as np

from maskbench.errors import FileReadError
from maskbench.fileio.images import MAX_IMAGE_PIXELS
from maskbench.fileio.sniff import expect, kind_of, read_head

#: Largest array read from one file (a stated cap; a score map of 2048x1024 float32 is 8 MiB).
MAX_ARRAY_BYTES = 1 << 32
#: Largest ``.npy`` header accepted (numpy's own ``max_header_size`` default).
MAX_NPY_HEADER = 10_000
#: Element kinds accepted by default: bool, signed and unsigned integers, floats (never objects or records).
NUMERIC_KINDS = "biuf"

_NPY_HINTS = {
    "zip": "an .npz saved under a .npy name? write one array with np.save",
    "pickle": "a pickle, not an array; refusing to unpickle",
}


def _nbytes(shape, dtype):
    return math.prod(shape) * dtype.itemsize


def _size_text(nbytes):
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"


def _check_dtype(path, dtype, kinds):
    if dtype.hasobject:
        raise FileReadError(path, f"array of Python objects (dtype {dtype}); refusing to unpickle it")
    if dtype.kind not in kinds:
        raise FileReadError(path, f"array of dtype {dtype}; expected numbers")


def _npy_header(handle, path):
    """``(dtype, shape, fortran_order)`` from a handle positioned after the magic string."""
    version = handle.read(2)
    if len(version) < 2 or version[0] not in (1, 2, 3):
        raise FileReadError(path, f"unsupported .npy format version {tuple(version)}")
    width = 2 if version[0] == 1 else 4
    raw_length = handle.read(width)
    length = int.from_bytes(raw_length, "little")
    if len(raw_length) < width or length > MAX_NPY_HEADER:
        raise FileReadError(path, f".npy header of {length} bytes (more than {MAX_NPY_HEADER}: forged or corrupt)")
    raw = handle.read(length)
    if len(raw) < length:
        raise FileReadError(path, "truncated .npy header")
    try:
        header = ast.literal_eval(raw.decode("utf-8" if version[0] == 3 else "latin-1"))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
        raise FileReadError(path, f"malformed .npy header {raw[:80]!r}") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise FileReadError(path, f"malformed .npy header {raw[:80]!r} (expected keys descr, fortran_order, shape)")
    shape = header["shape"]
    if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)) \
            or not isinstance(header["fortran_order"], bool):
        raise FileReadError(path, f"malformed .npy header: shape {shape!r}, fortran_order {header['fortran_order']!r}")
    try:
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except (TypeError, ValueError) as err:
        raise FileReadError(path, f"malformed .npy header: dtype {header['descr']!r} ({err})") from None
    return dtype, shape, header["fortran_order"]


def read_npy(path, *, kinds=NUMERIC_KINDS, max_bytes=MAX_ARRAY_BYTES):
    """The array of a ``.npy`` file, as ``np.load(path, allow_pickle=False)`` returns it.

    Refused with a :class:`FileReadError` naming the file: anything that is not a ``.npy`` (recognised by
    its first bytes: an empty file, an ``.npz``, a pickle, text), a malformed header, an element kind not in
    ``kinds`` (objects always), data larger than ``max_bytes``, shorter than the header claims
    (truncated) or followed by extra bytes.
    """
    expect(path, ("npy",), "a .npy file", hints=_NPY_HINTS)
    try:
        with open(path, "rb") as handle:
            handle.seek(6)
            dtype, shape, fortran = _npy_header(handle, path)
            _check_dtype(path, dtype, kinds)
            nbytes = _nbytes(shape, dtype)
            described = f"shape {shape} {dtype} ({_size_text(nbytes)})"
            if nbytes > max_bytes:
                raise FileReadError(path, f"header claims {described}, more than the limit of {_size_text(max_bytes)}")
            start = handle.tell()
            end = handle.seek(0, 2)
            available = end - start
            if nbytes > available:
                raise FileReadError(path, f"truncated: the header claims shape {shape} {dtype} ({nbytes:,} bytes) but "
                                          f"{available:,} bytes of data follow")
            if nbytes < available:
                raise FileReadError(path, f"{available - nbytes:,} unexpected bytes after the array data ({described}); "
                                          "a corrupt file or several arrays in one file")
            handle.seek(start)
            data = np.fromfile(handle, dtype=dtype, count=math.prod(shape))
            if data.size != math.prod(shape):
                raise FileReadError(path, "truncated while reading (the file shrank)")
    except OSError as err:
        raise FileReadError(path, f"cannot read ({err.strerror or err})") from None
    if fortran:
        return data.reshape(shape[::-1]).transpose()
    return data.reshape(shape)


def _has_user_block(path):
    """The HDF5 superblock may also follow a user block of 512, 1024, 2048, ... bytes (HDF5 spec §II.A)."""
    signature = b"\x89HDF\r\n\x1a\n"
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            offset = 512
            while offset + len(signature) <= size:
                handle.seek(offset)
                if handle.read(len(signature)) == signature:
                    return True
                offset *= 2
    except OSError:
        return False
    return False


def read_hdf5_map(path, *, key="value", kinds=NUMERIC_KINDS, max_pixels=None):
    """The 2-D map stored as dataset ``key`` of an HDF5 file (a SMIYC submission frame).

    Refused with a :class:`FileReadError` naming the file: not HDF5 (by signature), no dataset ``key``,
    ``key`` a group or a link, data stored outside the file (external storage, virtual dataset), an element
    kind not in ``kinds``, not 2-D, more than ``max_pixels`` pixels (default: the image limit).
    """
    import h5py  # optional: only SMIYC submissions need it

    max_pixels = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if kind_of(read_head(path)) != "hdf5" and not _has_user_block(path):
        expect(path, ("hdf5",), "an HDF5 file")
    try:
        with h5py.File(path, "r") as f:
            link = f.get(key, getlink=True)
            if link is None:
                raise FileReadError(path, f"no dataset {key!r} (holds: {', '.join(sorted(f.keys())) or 'nothing'})")
            if not isinstance(link, h5py.HardLink):
                raise FileReadError(path, f"{key!r} is a link ({type(link).__name__}), not data stored in this file")
            ds = f[key]
            if not isinstance(ds, h5py.Dataset):
                raise FileReadError(path, f"{key!r} is a group, not a dataset")
            if ds.is_virtual or ds.external:
                raise FileReadError(path, f"{key!r} reads its data from other files (virtual or external storage)")
            if ds.dtype.kind not in kinds:
                raise FileReadError(path, f"{key!r} has dtype {ds.dtype}; expected numbers")
            if ds.ndim != 2:
                raise FileReadError(path, f"{key!r} has shape {ds.shape}; expected a 2-D map (height, width)")
            if ds.shape[0] * ds.shape[1] > max_pixels:
                raise FileReadError(path, f"{key!r} has shape {ds.shape}, more than the limit of {max_pixels:,} "
                                          "pixels")
            return ds[()]
    except OSError as err:
        raise FileReadError(path, f"unreadable HDF5 file ({err})") from None


_NPZ_HINTS = {
    "npy": "a single .npy array, not an .npz archive",
    "pickle": "a pickle, not an array archive; refusing to unpickle",
}


def _npz_member(zf, info, path, kinds, max_bytes):
    """One ``<key>.npy`` member of an open archive, checked as :func:`read_npy` checks a file."""
    key = info.filename[:-4]
    with zf.open(info) as member:
        if member.read(6) != b"\x93NUMPY":
            raise FileReadError(path, f"array {key!r} is not a .npy member")
        try:
            dtype, shape, fortran = _npy_header(member, path)
        except FileReadError as err:
            raise FileReadError(path, f"array {key!r}: {err.what}") from None
        try:
            _check_dtype(path, dtype, kinds)
        except FileReadError as err:
            raise FileReadError(path, f"array {key!r}: {err.what}") from None
        nbytes = _nbytes(shape, dtype)
        if nbytes > max_bytes:
            raise FileReadError(path, f"array {key!r} claims shape {shape} {dtype} ({_size_text(nbytes)}), more than "
                                      f"the limit of {_size_text(max_bytes)}")
        available = info.file_size - member.tell()
        if available != nbytes:
            raise FileReadError(path, f"array {key!r}: the header claims shape {shape} {dtype} ({nbytes:,} bytes) "
                                      f"but {available:,} bytes of data follow")
        data = np.empty(math.prod(shape), dtype)
        view, done = memoryview(data).cast("B"), 0
        while done < nbytes:
            got = member.readinto(view[done:])
            if not got:
                raise FileReadError(path, f"array {key!r} is truncated")
            done += got
    return data.reshape(shape[::-1]).transpose() if fortran else data.reshape(shape)


def read_npz(path, *, keys=None, kinds=NUMERIC_KINDS, max_bytes=MAX_ARRAY_BYTES):
    """``{key: array}`` of an ``.npz`` archive (``np.savez``/``np.savez_compressed``: a zip of ``<key>.npy``
    members), as ``np.load(path, allow_pickle=False)`` gives them; ``keys``: only these (each required).

    Refused with a :class:`FileReadError` naming the file: anything that is not a zip archive (by its first
    bytes), a member that is not a ``.npy``, a missing key, a malformed member header, an element kind not in
    ``kinds`` (objects always), arrays larger than ``max_bytes`` together (checked on the sizes the archive
    declares, before anything is decompressed: a zip bomb is refused unread), a member shorter or longer
    than its header claims, or a damaged archive (bad CRC, truncated).
    """
    expect(path, ("zip",), "an .npz archive", hints=_NPZ_HINTS)
    try:
        with zipfile.ZipFile(path) as zf:
            members = {}
            for info in zf.infolist():
                if not info.filename.endswith(".npy") or info.is_dir():
                    raise FileReadError(path, f"member {info.filename!r} is not a .npy array (not an .npz archive)")
                members[info.filename[:-4]] = info
            wanted = list(members) if keys is None else list(keys)
            missing = [k for k in wanted if k not in members]
            if missing:
                raise FileReadError(path, f"no array {', '.join(map(repr, missing))} (holds: "
                                          f"{', '.join(sorted(members)) or 'nothing'})")
            declared = sum(members[k].file_size for k in wanted)
            if declared > max_bytes + MAX_NPY_HEADER * len(wanted):
                raise FileReadError(path, f"the archive declares {_size_text(declared)} of arrays, more than the limit "
                                          f"of {_size_text(max_bytes)} (a zip bomb?)")
            return {k: _npz_member(zf, members[k], path, kinds, max_bytes) for k in wanted}
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as err:
        raise FileReadError(path, f"damaged or unsupported .npz archive ({err})") from None
    except OSError as err:
        raise FileReadError(path, f"cannot read ({err.strerror or err})") from None
