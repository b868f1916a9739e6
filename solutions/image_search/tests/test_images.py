"""Decoding untrusted image bytes: each accepted format, each refusal, bombs that stay cheap."""

import hashlib
import io
import resource
import struct
import time
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from common.images import (
    DecodedImage,
    ImageRejected,
    content_key,
    decode_image,
    thumbnail_jpeg,
)

MAX_PIXELS = 50_000_000
RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def decode(data: bytes) -> DecodedImage:
    return decode_image(data, max_pixels=MAX_PIXELS)


def rejected(data: bytes, max_pixels: int = MAX_PIXELS) -> str:
    with pytest.raises(ImageRejected) as caught:
        decode_image(data, max_pixels=max_pixels)
    return str(caught.value)


def close(pixel: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def red_left_blue_right(width: int = 64, height: int = 48) -> Image.Image:
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    return image


def png_header_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of zeros; it is never decoded, so a big one costs only the zlib work."""

    def chunk(tag: bytes, payload: bytes) -> bytes:
        body = tag + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    row = bytes(1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def webp_canvas_bomb(width: int, height: int) -> bytes:
    """An animated WebP: a huge canvas declared in the header, one 1x1 frame of data."""

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return tag + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) % 2)

    def u24(value: int) -> bytes:
        return value.to_bytes(3, "little")

    frame = encode(Image.new("RGB", (1, 1)), "WEBP", lossless=True)[12:]  # its VP8L chunk
    body = (
        b"WEBP"
        + chunk(b"VP8X", b"\x02\0\0\0" + u24(width - 1) + u24(height - 1))
        + chunk(b"ANIM", bytes(6))
        + chunk(b"ANMF", u24(0) * 2 + u24(0) * 2 + u24(100) + b"\0" + frame)
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF"])
def test_each_accepted_format_decodes_to_rgb(fmt: str) -> None:
    decoded = decode(encode(red_left_blue_right(), fmt))
    assert decoded.format == fmt
    assert (decoded.width, decoded.height) == (64, 48) == decoded.image.size
    assert decoded.image.mode == "RGB"
    assert close(decoded.image.getpixel((5, 24)), RED)
    assert close(decoded.image.getpixel((58, 24)), BLUE)


def test_an_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (20, 10), RED), Image.new("RGB", (20, 10), BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    with Image.open(io.BytesIO(data)) as check:
        assert check.n_frames == 2
    decoded = decode(data)
    assert decoded.format == "GIF"
    assert decoded.image.getpixel((10, 5)) == RED


def test_a_multi_picture_jpeg_is_a_jpeg() -> None:
    second = Image.new("RGB", (64, 48), BLUE)
    data = encode(red_left_blue_right(), "MPO", save_all=True, append_images=[second])
    with Image.open(io.BytesIO(data)) as check:
        assert check.format == "MPO"
    decoded = decode(data)
    assert decoded.format == "JPEG"
    assert close(decoded.image.getpixel((5, 24)), RED)


def test_exif_orientation_is_applied() -> None:
    stored = Image.new("RGB", (64, 32), BLUE)
    stored.paste(RED, (0, 0, 16, 16))  # top left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; rotate 90 degrees clockwise to view
    decoded = decode(encode(stored, "JPEG", exif=exif.tobytes()))
    assert (decoded.width, decoded.height) == (32, 64) == decoded.image.size
    assert close(decoded.image.getpixel((28, 4)), RED)  # top left went to top right
    assert close(decoded.image.getpixel((4, 4)), BLUE)


@pytest.mark.parametrize(
    ("size", "orientation", "decoded_size", "full_size"),
    [
        ((2048, 1536), 1, (512, 384), (2048, 1536)),  # 1/4: the smallest at least 256 high
        ((2048, 1536), 6, (384, 512), (1536, 2048)),  # turned a quarter by its EXIF
        ((1000, 700), 1, (500, 350), (1000, 700)),  # 1/2 (1/4 would be 175 high)
        ((640, 480), 1, (640, 480), (640, 480)),  # already small: decoded whole
    ],
)
def test_a_big_jpeg_is_decoded_at_a_reduced_size_but_keeps_its_dimensions(
    size: tuple[int, int],
    orientation: int,
    decoded_size: tuple[int, int],
    full_size: tuple[int, int],
) -> None:
    picture = red_left_blue_right(*size)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(picture, "JPEG", exif=exif.tobytes())
    reduced = decode_image(data, max_pixels=MAX_PIXELS, shorter_side=256)
    assert reduced.image.size == decoded_size and reduced.image.mode == "RGB"
    assert (reduced.width, reduced.height) == full_size
    whole = decode(data)
    assert (whole.width, whole.height) == full_size == whole.image.size
    # The same picture: the halves are where they were.
    small = whole.image.resize(reduced.image.size, Image.Resampling.BOX)
    difference = np.abs(np.asarray(small, dtype=int) - np.asarray(reduced.image, dtype=int))
    assert difference.mean() < 2, difference.mean()


def test_only_jpegs_are_decoded_at_a_reduced_size() -> None:
    decoded = decode_image(
        encode(red_left_blue_right(1024, 768), "PNG"), max_pixels=MAX_PIXELS, shorter_side=256
    )
    assert decoded.image.size == (1024, 768) == (decoded.width, decoded.height)


def test_broken_exif_keeps_the_picture_as_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(Image.new("RGB", (30, 20), RED), "JPEG", exif=b"Exif\0\0II*\0\xff\xff\xff\x7f")

    def unreadable(image: Image.Image) -> Image.Image:
        raise SyntaxError("not a TIFF file")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow may warn "Corrupt EXIF data"
        assert decode(data).image.size == (30, 20)
        monkeypatch.setattr(ImageOps, "exif_transpose", unreadable)
        assert decode(data).image.size == (30, 20)


def test_transparency_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (4, 1), (0, 0, 0, 0))
    rgba.putpixel((1, 0), (255, 0, 0, 255))
    rgba.putpixel((2, 0), (255, 0, 0, 128))
    decoded = decode(encode(rgba, "PNG")).image
    assert decoded.mode == "RGB"
    assert decoded.getpixel((0, 0)) == WHITE
    assert decoded.getpixel((1, 0)) == RED
    assert close(decoded.getpixel((2, 0)), (255, 127, 127), tolerance=2)

    palette = Image.new("P", (3, 1), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255])
    palette.putpixel((1, 0), 1)
    palette.putpixel((2, 0), 2)
    decoded = decode(encode(palette, "PNG", transparency=0)).image
    assert [decoded.getpixel((x, 0)) for x in range(3)] == [WHITE, RED, BLUE]

    grey_alpha = Image.new("LA", (2, 1), (0, 0))
    grey_alpha.putpixel((1, 0), (0, 255))
    decoded = decode(encode(grey_alpha, "PNG")).image
    assert [decoded.getpixel((x, 0)) for x in range(2)] == [WHITE, (0, 0, 0)]


@pytest.mark.parametrize(
    ("image", "fmt"),
    [
        (Image.new("L", (8, 8), 200), "PNG"),
        (Image.new("1", (8, 8), 1), "BMP"),
        (Image.new("P", (8, 8), 3), "GIF"),
        (Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG"),
        (Image.new("RGBA", (8, 8), (255, 0, 0, 255)), "WEBP"),
    ],
)
def test_other_modes_become_rgb(image: Image.Image, fmt: str) -> None:
    decoded = decode(encode(image, fmt)).image
    assert decoded.mode == "RGB"
    assert close(decoded.getpixel((4, 4)), image.convert("RGB").getpixel((4, 4)))


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    grey = Image.fromarray(np.array([[0, 256 * 64, 256 * 128, 65535]], dtype=np.uint16))
    data = encode(grey, "PNG")
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode.startswith("I")
    decoded = decode(data).image
    assert [decoded.getpixel((x, 0)) for x in range(4)] == [
        (0, 0, 0),
        (64, 64, 64),
        (128, 128, 128),
        (255, 255, 255),
    ]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF"])
def test_a_truncated_file_is_refused(fmt: str) -> None:
    noise = Image.effect_noise((120, 90), 60).convert("RGB")
    data = encode(noise, fmt)
    assert rejected(data[: len(data) // 2]) == f"the {fmt} data is truncated or corrupt"
    assert rejected(data[:12]) == f"the {fmt} data is truncated or corrupt"


def test_a_damaged_file_is_refused() -> None:
    data = bytearray(encode(Image.effect_noise((64, 64), 60).convert("RGB"), "PNG"))
    data[len(data) // 2] ^= 0xFF  # breaks the IDAT chunk's CRC
    assert rejected(bytes(data)) == "the PNG data is truncated or corrupt"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file is empty"),
        (
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
            "not an image (looks like a PDF)",
        ),
        (b"PK\x03\x04\x14\x00\x00\x00", "not an image (looks like a zip archive)"),
        (
            b"<!DOCTYPE html><html><body>Not found</body></html>",
            "not an image (looks like an HTML page)",
        ),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00", "not an image (looks like a video)"),
        (b"just some text, renamed to .jpg\n", "not an image"),
    ],
)
def test_what_is_not_an_image_is_refused(data: bytes, reason: str) -> None:
    assert rejected(data) == reason


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (encode(Image.new("RGB", (8, 8)), "TIFF"), "TIFF"),
        (encode(Image.new("RGB", (16, 16)), "ICO"), "ICO"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1", "AVIF"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
    ],
)
def test_other_image_formats_are_refused_by_name(data: bytes, name: str) -> None:
    assert rejected(data) == f"unsupported image format {name}; accepted: JPEG, PNG, WebP, BMP, GIF"


@pytest.fixture(scope="module")
def png_bomb() -> bytes:
    """20000 x 20000 pixels (400 MB once decoded) in about 50 KB."""
    data = png_header_bomb(20_000, 20_000)
    assert len(data) < 100_000
    return data


def test_a_png_bomb_is_refused_from_its_header(
    png_bomb: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    # Pillow's own limit (2 x 89M pixels) raises first with its defaults ...
    assert rejected(png_bomb) == "the image has too many pixels (a decompression bomb?)"
    # ... and without it, this module's check stops it all the same.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert rejected(png_bomb) == (
        "the image is too large: 20000x20000 pixels, at most 50000000 allowed"
    )
    assert time.perf_counter() - started < 1.0
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 50 * 1024  # the pixels (400 MB) were never allocated


def test_max_pixels_is_checked_below_pillows_limit() -> None:
    data = png_header_bomb(8_000, 7_000)  # 56M pixels: Pillow would decode it
    started = time.perf_counter()
    assert rejected(data) == "the image is too large: 8000x7000 pixels, at most 50000000 allowed"
    assert time.perf_counter() - started < 1.0
    assert decode_image(encode(Image.new("RGB", (10, 10)), "PNG"), max_pixels=100).width == 10
    assert "10x11 pixels" in rejected(encode(Image.new("RGB", (10, 11)), "PNG"), max_pixels=100)


def test_pillows_bomb_warning_is_a_refusal_too() -> None:
    data = png_header_bomb(10_000, 10_000)  # 100M pixels: above Pillow's warning threshold
    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < 100_000_000
    assert rejected(data, max_pixels=200_000_000) == (
        "the image has too many pixels (a decompression bomb?)"
    )


def test_a_webp_with_a_huge_canvas_is_refused_fast() -> None:
    data = webp_canvas_bomb(8_000, 8_000)
    assert len(data) < 200
    started = time.perf_counter()
    assert rejected(data) == "the image is too large: 8000x8000 pixels, at most 50000000 allowed"
    assert time.perf_counter() - started < 1.0
    assert decode_image(webp_canvas_bomb(40, 30), max_pixels=MAX_PIXELS).image.size == (40, 30)


def test_lenient_truncation_is_never_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        decode(encode(Image.new("RGB", (8, 8)), "PNG"))


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1000, 500), (256, 128)), ((300, 900), (85, 256)), ((100, 50), (100, 50))],
)
def test_thumbnails_fit_and_keep_the_aspect_ratio(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    image = decode(encode(red_left_blue_right(*size), "PNG")).image
    thumbnail = thumbnail_jpeg(image)
    with Image.open(io.BytesIO(thumbnail)) as check:
        assert (check.format, check.size) == ("JPEG", expected)
        assert close(check.getpixel((2, check.height // 2)), RED)
    assert image.size == size  # the original is untouched
    with Image.open(io.BytesIO(thumbnail_jpeg(image, size=64, quality=50))) as small:
        assert max(small.size) == min(64, max(size))


def test_a_thumbnail_of_a_transparent_image_is_on_white() -> None:
    thumbnail = thumbnail_jpeg(Image.new("RGBA", (40, 40), (0, 0, 0, 0)), size=16)
    with Image.open(io.BytesIO(thumbnail)) as check:
        assert close(check.getpixel((8, 8)), WHITE, tolerance=3)


def test_the_content_key_is_the_sha256_of_the_bytes() -> None:
    data = encode(red_left_blue_right(), "PNG")
    assert content_key(data) == hashlib.sha256(data).hexdigest() == content_key(bytes(data))
    assert content_key(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert content_key(data) != content_key(encode(red_left_blue_right(), "BMP"))
