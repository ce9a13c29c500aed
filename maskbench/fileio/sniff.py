"""What a file is, from its first bytes (magic numbers), never from its name.

Signatures: numpy ``format.py`` (``\\x93NUMPY``), PKWARE APPNOTE (zip ``PK\\x03\\x04``), PNG spec §5.2,
JPEG/JFIF (``FF D8 FF``), RIFF/WebP, HDF5 spec §II.A (superblock signature), pickle PEP 307 (``PROTO``
opcode ``\\x80`` + protocol), safetensors (u64 little-endian header length, then a JSON object).
"""

from maskbench.errors import FileReadError

#: Bytes read to recognise a file (the longest fixed signature is 12 bytes; the rest describes text).
HEAD_BYTES = 64

_PREFIXES = (
    ("npy", b"\x93NUMPY"), ("zip", b"PK\x03\x04"), ("zip", b"PK\x05\x06"), ("png", b"\x89PNG\r\n\x1a\n"),
    ("jpeg", b"\xff\xd8\xff"), ("gif", b"GIF87a"), ("gif", b"GIF89a"), ("tiff", b"II*\x00"), ("tiff", b"MM\x00*"),
    ("hdf5", b"\x89HDF\r\n\x1a\n"), ("gzip", b"\x1f\x8b"),
)
_DESCRIPTIONS = {
    "npy": "a .npy array", "zip": "a zip archive", "png": "a PNG image", "jpeg": "a JPEG image", "gif": "a GIF image",
    "tiff": "a TIFF image", "hdf5": "an HDF5 file", "gzip": "a gzip stream", "webp": "a WebP image",
    "pickle": "a Python pickle", "safetensors": "a safetensors file",
}
#: Largest safetensors JSON header accepted (the reference ``safetensors`` crate's limit, 100 MB).
MAX_SAFETENSORS_HEADER = 100_000_000


def read_head(path, n=HEAD_BYTES):
    """The first ``n`` bytes of ``path``; a missing or unreadable file is a :class:`FileReadError`."""
    try:
        with open(path, "rb") as handle:
            return handle.read(n)
    except FileNotFoundError:
        raise FileReadError(path, "no such file", missing=True) from None
    except IsADirectoryError:
        raise FileReadError(path, "is a folder, not a file") from None
    except OSError as err:
        raise FileReadError(path, f"cannot read ({err.strerror or err})") from None


def kind_of(head):
    """``"empty"``, a signature kind (``npy zip png jpeg webp gif tiff hdf5 gzip pickle safetensors``),
    ``"text"`` or ``"binary"``."""
    if not head:
        return "empty"
    for kind, prefix in _PREFIXES:
        if head.startswith(prefix):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if len(head) > 8 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") <= MAX_SAFETENSORS_HEADER:
        return "safetensors"
    if _text(head) is not None:
        return "text"
    return "binary"


def _text(head):
    """The head as text when it reads as printable UTF-8 (a cut multi-byte character at the end is allowed)."""
    for cut in range(4):
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return text if all(ch.isprintable() or ch in "\t\n\r" for ch in text) else None
    return None


def describe(head):
    """What the head looks like, as words: ``"it is a zip archive"``, ``"it is text starting with 'a,b'"``."""
    kind = kind_of(head)
    if kind == "empty":
        return "it is empty (0 bytes)"
    if kind == "text":
        return f"it is text starting with {_text(head)[:32]!r}"
    if kind == "binary":
        return f"it starts with {head[:16]!r}"
    return f"it is {_DESCRIPTIONS[kind]}"


def expect(path, kinds, expected, *, prefix="", hints=None):
    """Check that ``path`` starts with the signature of one of ``kinds``; returns the head read.

    Otherwise raise :class:`FileReadError` "``{prefix}not {expected}: it is ...``", with ``hints[kind]``
    appended for the kind found (e.g. a JPEG where a label PNG belongs).
    """
    head = read_head(path)
    kind = kind_of(head)
    if kind not in kinds:
        hint = (hints or {}).get(kind)
        raise FileReadError(path, f"{prefix}not {expected}: {describe(head)}" + (f" ({hint})" if hint else ""))
    return head
