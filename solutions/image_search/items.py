"""An image item: the file's bytes, where it came from, its decoded picture and thumbnail."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from sqlalchemy import Integer, String

from common.collection import Collection
from common.encoder import Encoder
from common.loading import ItemCodec
from common.record_store import RecordField
from solutions.image_search.images import DecodedImage, content_key, decode_image, thumbnail_jpeg

# Pictures are reduced to this shorter side before encoding (the encoder itself works at
# 224 px), so a batch of 12-megapixel photos does not sit in memory at full size.
ENCODE_SIDE = 512
MAX_NAME = 255
MAX_LABEL = 200
MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "GIF": "image/gif",
}


@dataclass(frozen=True)
class ImageFile:
    """One image ready to encode and store."""

    data: bytes
    name: str  # for people only: the file's name or path in its folder or archive
    label: str  # the folder it came from, or the label given with the upload
    format: str
    width: int
    height: int
    picture: Image.Image  # RGB, upright, reduced for encoding
    thumbnail: bytes


def for_encoding(image: Image.Image) -> Image.Image:
    shorter = min(image.size)
    if shorter <= ENCODE_SIDE:
        return image
    scale = ENCODE_SIDE / shorter
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)


def read_image(data: bytes, name: str, label: str, *, max_pixels: int) -> ImageFile:
    """Decode and prepare one image; raises ImageRejected with the reason."""
    decoded: DecodedImage = decode_image(data, max_pixels=max_pixels)
    return ImageFile(
        data=data,
        name=name[-MAX_NAME:],
        label=label[:MAX_LABEL],
        format=decoded.format,
        width=decoded.width,
        height=decoded.height,
        picture=for_encoding(decoded.image),
        thumbnail=thumbnail_jpeg(decoded.image),
    )


RECORD_FIELDS = (
    RecordField("filename", String(MAX_NAME)),
    RecordField("label", String(MAX_LABEL)),
    RecordField("format", String(8)),
    RecordField("width", Integer()),
    RecordField("height", Integer()),
    RecordField("size_bytes", Integer()),
)


def image_codec(encoder: Encoder, collection: Collection | None = None) -> ItemCodec[ImageFile]:
    """Every image collection is stored alike: ``collection`` is not needed."""

    def encode(images: Sequence[ImageFile]) -> np.ndarray:
        return encoder.encode([image.picture for image in images])

    return ItemCodec(
        key=lambda image: content_key(image.data),
        record=lambda image: {
            "filename": image.name,
            "label": image.label,
            "format": image.format,
            "width": image.width,
            "height": image.height,
            "size_bytes": len(image.data),
        },
        encode=encode,
        files=lambda image: {"original": image.data, "thumbnail": image.thumbnail},
    )
