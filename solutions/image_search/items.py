"""An image item: what is stored about it, its bytes, its picture for encoding, its thumbnail."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import ConfigDict
from sqlalchemy import Integer, String

from common import Collection, Column, Encoder, ItemCodec, Record
from common.encoders.efficientnet import SOURCE_SIDE, NetworkInput, network_input
from common.images import content_key, decode_image, thumbnail_jpeg

MAX_NAME = 255
MAX_LABEL = 200
MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "GIF": "image/gif",
}


class ImageRecord(Record):
    """What is stored about one image; searches can filter on its label."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "filename": "photos/chelsea_the_cat.jpg",
                    "label": "photos",
                    "format": "JPEG",
                    "width": 451,
                    "height": 300,
                    "size_bytes": 31589,
                }
            ]
        }
    )

    filename: Annotated[str, Column(String(MAX_NAME))]
    label: Annotated[str, Column(String(MAX_LABEL), filter="varchar")]
    format: Annotated[str, Column(String(8))]
    width: Annotated[int, Column(Integer())]
    height: Annotated[int, Column(Integer())]
    size_bytes: Annotated[int, Column(Integer())]


@dataclass(frozen=True)
class ImageFile:
    """One image ready to encode and store."""

    data: bytes
    record: ImageRecord
    picture: NetworkInput  # upright, cropped and resized the way the image encoder sees it
    thumbnail: bytes


def read_image(data: bytes, name: str, label: str, *, max_pixels: int) -> ImageFile:
    """Decode and prepare one image; raises ImageRejected with the reason.

    ``name`` is for people only: the file's name or its path in its folder or archive;
    ``label`` is the folder it came from, or the label given with the load.
    """
    decoded = decode_image(data, max_pixels=max_pixels, shorter_side=SOURCE_SIDE)
    record = ImageRecord(
        filename=name[-MAX_NAME:],
        label=label[:MAX_LABEL],
        format=decoded.format,
        width=decoded.width,
        height=decoded.height,
        size_bytes=len(data),
    )
    # Cropped for the network here, on the thread that decodes: the encoder only encodes.
    return ImageFile(data, record, network_input(decoded.image), thumbnail_jpeg(decoded.image))


def image_codec(encoder: Encoder, collection: Collection | None = None) -> ItemCodec[ImageFile]:
    """Every image collection is stored alike: ``collection`` is not needed."""

    def encode(images: Sequence[ImageFile]) -> np.ndarray | Sequence[Any]:
        return encoder.encode([image.picture for image in images])

    return ItemCodec(
        key=lambda image: content_key(image.data),
        record=lambda image: image.record.model_dump(),
        encode=encode,
        files=lambda image: {"original": image.data, "thumbnail": image.thumbnail},
    )
