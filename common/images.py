"""Decoding untrusted image bytes into upright RGB pictures, refusing what is not safe to decode.

Every upload and every file in an archive passes through ``decode_image``. It refuses, with a
short reason an item error or a 422 can show: empty files, things that are not images, image
formats other than JPEG, PNG, WebP, BMP and GIF, truncated or corrupt data, and pictures
with more pixels than the caller allows. The pixel count comes from the header, before any
pixel data is decoded, so a small file that would unpack to gigabytes costs nothing.
"""

import hashlib
import io
import math
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from common.errors import InvalidInput, UnsupportedMediaType

# Pillow's plugin names; Image.open tries only these, so no other decoder sees untrusted bytes.
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF")
ACCEPTED = "JPEG, PNG, WebP, BMP, GIF"
# Pillow reports phone JPEGs that carry extra pictures (MPO) as their own format.
FORMAT_ALIASES = {"MPO": "JPEG"}
# What Pillow raises for data it cannot decode: "image file is truncated" and "Truncated File
# Read" (OSError), "could not create decoder object" (OSError, a broken WebP), broken chunks
# (SyntaxError, struct.error, EOFError), decompressed metadata over its limits (ValueError).
DECODE_ERRORS = (OSError, SyntaxError, EOFError, ValueError, struct.error, IndexError, zlib.error)
# What a malformed EXIF block raises; such a picture is kept as stored.
EXIF_ERRORS = (SyntaxError, ValueError, struct.error, OSError, KeyError, TypeError, IndexError)
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")

# How files start, to say what a refused file looks like. Only used once Pillow gave up.
_ACCEPTED_MAGIC = {
    "JPEG": (b"\xff\xd8\xff",),
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "GIF": (b"GIF87a", b"GIF89a"),
    "BMP": (b"BM",),
}
_OTHER_IMAGE_MAGIC = {
    "TIFF": (b"II*\x00", b"MM\x00*"),
    "ICO": (b"\x00\x00\x01\x00",),
    "PSD": (b"8BPS",),
    "JPEG 2000": (b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51"),
    "JPEG XL": (b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n"),
}
_NOT_IMAGE_MAGIC = {
    "a PDF": (b"%PDF-",),
    "a zip archive": (b"PK\x03\x04",),
    "gzip data": (b"\x1f\x8b",),
    "an executable": (b"\x7fELF", b"MZ"),
}
_HEIF_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF"}
_AVIF_BRANDS = (b"avif", b"avis")


class ImageRejected(ValueError):
    """Bytes that will not be decoded; the message says why in a few words."""


class NotAnImage(ImageRejected):
    """Bytes that are not an image in an accepted format at all (415 rather than 422)."""


@contextmanager
def refused_as_http(filename: str = "") -> Iterator[None]:
    """Around the decoding of an uploaded image: what is not an image is a 415, a damaged or
    oversized one a 422, with the reason (after ``filename:`` when one is given)."""
    prefix = f"{filename}: " if filename else ""
    try:
        yield
    except NotAnImage as error:
        raise UnsupportedMediaType(f"{prefix}{error}") from error
    except ImageRejected as error:
        raise InvalidInput(f"{prefix}{error}") from error


@dataclass(frozen=True)
class DecodedImage:
    """An upright RGB picture and what it was stored as."""

    image: Image.Image  # mode RGB, EXIF orientation applied
    format: str  # one of FORMATS
    width: int  # after orientation
    height: int


def content_key(data: bytes) -> str:
    """SHA-256 of the file's bytes: the dedupe key, so one file loaded twice is one item."""
    return hashlib.sha256(data).hexdigest()


def decode_image(data: bytes, *, max_pixels: int, shorter_side: int | None = None) -> DecodedImage:
    """Decode the first frame of an image fully, or raise ``ImageRejected``.

    ``max_pixels`` is checked against the header's size before pixel data is decoded; Pillow's
    own global limit (``Image.MAX_IMAGE_PIXELS``) still applies on top and is reported alike.
    With ``shorter_side``, a JPEG is decoded at the smallest of its built-in scales (1/2,
    1/4, 1/8) whose shorter side is still at least that long: a 12-megapixel photo wanted at
    256 pixels is decoded at 1/8 of its size, about 20 times faster. ``width`` and
    ``height`` stay those of the whole picture.
    """
    if not data:
        raise ImageRejected("the file is empty")
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # A global some code sets to be lenient; it would pass cut-off files as whole images.
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; refusing to decode")
    kind = "image"
    # catch_warnings is process-wide and not thread-safe; the max_pixels check inside does not
    # depend on it, it only turns Pillow's own warning into a refusal when it does apply.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=FORMATS) as opened:
                kind = FORMAT_ALIASES.get(opened.format or "", opened.format or "image")
                width, height = opened.size
                if width * height > max_pixels:
                    raise ImageRejected(
                        f"the image is too large: {width}x{height} pixels, "
                        f"at most {max_pixels} allowed"
                    )
                if shorter_side is not None and kind == "JPEG":
                    scale = min(width, height) / shorter_side
                    if scale >= 2:  # DCT scaling: the decoder picks a size at least this large
                        wanted = (math.ceil(width / scale), math.ceil(height / scale))
                        opened.draft(opened.mode, wanted)
                decoded_size = opened.size
                opened.load()  # all of the first frame, so truncation shows here
                image = _to_rgb(_upright(opened))
        except ImageRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageRejected("the image has too many pixels (a decompression bomb?)") from error
        except UnidentifiedImageError:
            reason = _unidentified(data)
            damaged = reason.startswith("the ")  # "the JPEG data is truncated or corrupt"
            raise (ImageRejected if damaged else NotAnImage)(reason) from None
        except DECODE_ERRORS as error:
            kind = _accepted_kind(data) or kind  # a WebP can fail inside Image.open already
            raise ImageRejected(f"the {kind} data is truncated or corrupt") from error
    # The EXIF orientation may have turned the picture a quarter: so are its full dimensions.
    if image.size != decoded_size:
        width, height = height, width
    return DecodedImage(image=image, format=kind, width=width, height=height)


def thumbnail_jpeg(image: Image.Image, *, size: int = 256, quality: int = 85) -> bytes:
    """A JPEG that fits in ``size`` x ``size`` with the picture's aspect ratio; never enlarged."""
    small = _to_rgb(image)
    small = small.copy() if small is image else small
    # reducing_gap 1: a box filter halves a photo before the bicubic pass (twice as fast
    # here for a 640x480 one; a 256-pixel thumbnail shows no difference).
    small.thumbnail((size, size), reducing_gap=1.0)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _upright(image: Image.Image) -> Image.Image:
    """A copy turned the way the camera's EXIF orientation says; as stored if that is broken."""
    try:
        return ImageOps.exif_transpose(image)
    except EXIF_ERRORS:
        return image.copy()


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with transparency composited on white and 16-bit grey scaled, not clipped."""
    if image.mode == "RGB":
        return image
    if image.mode in SIXTEEN_BIT_MODES:
        return image.convert("I").point(lambda v: v * (1 / 256)).convert("L").convert("RGB")
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _accepted_kind(data: bytes) -> str | None:
    """Which accepted format the bytes start like, whether or not the rest is intact."""
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WEBP"
    return next((name for name, magic in _ACCEPTED_MAGIC.items() if data.startswith(magic)), None)


def _unidentified(data: bytes) -> str:
    """Why Pillow could not open the bytes, in the words of what they look like."""
    if kind := _accepted_kind(data):
        return f"the {kind} data is truncated or corrupt"
    head = data[:64]
    for name, magics in _OTHER_IMAGE_MAGIC.items():
        if head.startswith(magics):
            return f"unsupported image format {name}; accepted: {ACCEPTED}"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS or brand in _AVIF_BRANDS:
            name = _HEIF_BRANDS.get(brand, "AVIF")
            return f"unsupported image format {name}; accepted: {ACCEPTED}"
        return "not an image (looks like a video)"
    for label, magics in _NOT_IMAGE_MAGIC.items():
        if head.startswith(magics):
            return f"not an image (looks like {label})"
    text = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return f"unsupported image format SVG; accepted: {ACCEPTED}"
    if text.startswith((b"<!doctype html", b"<html")):
        return "not an image (looks like an HTML page)"
    return "not an image"


# Pictures are reduced to this shorter side before encoding (the image encoder itself works
# at 224 px), so a batch of 12-megapixel photos does not sit in memory at full size.
ENCODE_SIDE = 512


def for_encoding(image: Image.Image) -> Image.Image:
    shorter = min(image.size)
    if shorter <= ENCODE_SIDE:
        return image
    scale = ENCODE_SIDE / shorter
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
