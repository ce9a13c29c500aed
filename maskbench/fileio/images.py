"""Images and label PNGs, recognised by their signature and sized from their header before decoding.

A file is accepted only when its first bytes are those of an accepted format (a JPEG saved as ``.png``
is not a PNG: its lossy compression changes label values), and only when the width x height in its
header is at most :data:`MAX_IMAGE_PIXELS` (a few hundred bytes of PNG can claim gigapixels: a
decompression bomb). PIL reads the header at ``Image.open`` and decodes at ``load()``; every failure
in between is a :class:`FileReadError` naming the file, never PIL's own exception or warning.
"""

import warnings

import numpy as np
from PIL import Image

from maskbench.errors import FileReadError
from maskbench.fileio.sniff import expect, kind_of

#: Largest image accepted (8192 x 8192; the largest road-scene benchmark frames are 2048 x 1024).
MAX_IMAGE_PIXELS = 8192 * 8192
#: Formats of camera images: signature kind -> PIL format name.
IMAGE_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}

_LABEL_HINTS = {"jpeg": "labels must be lossless PNG: JPEG compression changes label values",
                "webp": "labels must be PNG", "npy": "a score map, not a label"}


def _check_size(path, noun, width, height, max_pixels):
    if not width or not height:
        raise FileReadError(path, f"{noun} header claims {width}x{height} pixels (an empty image)")
    if width * height > max_pixels:
        raise FileReadError(path, f"{noun} header claims {width}x{height} pixels, more than the limit of "
                                  f"{max_pixels:,} (a decompression bomb?)")


def _open(path, kinds, expected, noun, max_pixels, hints=None):
    """PIL image of ``path`` with its header read and checked, nothing decoded yet."""
    head = expect(path, kinds, expected, prefix=f"unreadable {noun}: ", hints=hints)
    kind = kind_of(head)
    if kind == "png" and head[12:16] == b"IHDR":  # PNG spec §11.2.2: IHDR comes first, width and height u32 BE
        _check_size(path, noun, int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"), max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is checked below
            img = Image.open(path, formats=[IMAGE_FORMATS[kind]])
    except Image.DecompressionBombError:
        raise FileReadError(path, f"{noun} header claims more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels, more than "
                                  f"the limit of {max_pixels:,} (a decompression bomb?)") from None
    except Exception as err:  # noqa: BLE001 - any failure to parse the header is a bad user file
        raise FileReadError(path, f"unreadable or truncated {noun} ({err})") from None
    try:
        _check_size(path, noun, *img.size, max_pixels)
    except FileReadError:
        img.close()
        raise
    return img


def _decode(img, path, noun):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
    except Exception as err:  # noqa: BLE001 - truncated data, bad checksums, oversized text chunks, ...
        raise FileReadError(path, f"unreadable or truncated {noun} ({err})") from None


def read_image(path, *, max_pixels=MAX_IMAGE_PIXELS):
    """uint8 (H, W, 3) RGB of a PNG, JPEG or WebP file (by signature); alpha dropped, palette/grey expanded."""
    img = _open(path, tuple(IMAGE_FORMATS), "a PNG, JPEG or WebP file", "image", max_pixels)
    with img:
        _decode(img, path, "image")
        return np.asarray(img.convert("RGB"))


def read_label_png(path, *, modes=None, max_pixels=MAX_IMAGE_PIXELS):
    """The array stored in a label PNG (palette indices, never colours).

    modes: PIL modes accepted (e.g. ``("L", "P")`` for single-channel 8-bit); ``None`` accepts any.
    """
    img = _open(path, ("png",), "a PNG file", "label", max_pixels, _LABEL_HINTS)
    with img:
        if modes is not None and img.mode not in modes:
            raise FileReadError(path, f"label PNG has mode {img.mode}; expected {' or '.join(modes)}"
                                      + (" (single-channel 8-bit)" if set(modes) <= {"L", "P"} else ""))
        _decode(img, path, "label")
        return np.asarray(img)
