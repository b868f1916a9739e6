"""Test pictures: real photos from scikit-image, and the alterations a copy goes through."""

import io
import random
import zipfile
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

# Photos only: homogeneous textures (brick, grass, gravel) are near-duplicates of themselves
# under blur, which says little about a search engine.
PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "camera",
    "coins",
    "clock",
    "horse",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "cell",
    "page",
    "text",
    "moon",
    "logo",
    "colorwheel",
)
ALTERATIONS = ("crop70", "flip", "rotate", "brightness_contrast", "blur_downscale", "jpeg_q30")


def photos() -> dict[str, Image.Image]:
    pictures = {}
    for name in PHOTOS:
        pixels = getattr(skimage.data, name)()
        if pixels.dtype == bool:
            pixels = pixels.astype(np.uint8) * 255
        if pixels.ndim == 3 and pixels.shape[2] == 4:
            pixels = pixels[..., :3]
        pictures[name] = Image.fromarray(pixels).convert("RGB")
    return pictures


def altered(picture: Image.Image, how: str, seed: int) -> Image.Image:
    rng = random.Random(seed)
    width, height = picture.size
    if how == "crop70":
        w, h = int(width * 0.7), int(height * 0.7)
        x, y = rng.randint(0, width - w), rng.randint(0, height - h)
        return picture.crop((x, y, x + w, y + h))
    if how == "flip":
        return ImageOps.mirror(picture)
    if how == "rotate":
        angle = rng.choice([-1, 1]) * rng.uniform(10, 15)
        return picture.rotate(angle, Image.Resampling.BICUBIC, expand=True)
    if how == "brightness_contrast":
        brighter = ImageEnhance.Brightness(picture).enhance(1.3)
        return ImageEnhance.Contrast(brighter).enhance(0.75)
    if how == "blur_downscale":
        blurred = picture.filter(ImageFilter.GaussianBlur(2))
        return blurred.resize((width // 3, height // 3), Image.Resampling.BILINEAR)
    if how == "jpeg_q30":
        return Image.open(io.BytesIO(encoded(picture, "JPEG", quality=30))).convert("RGB")
    raise ValueError(how)


def encoded(picture: Image.Image, image_format: str = "PNG", **options: int) -> bytes:
    out = io.BytesIO()
    picture.save(out, image_format, **options)
    return out.getvalue()


def zip_of(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path
