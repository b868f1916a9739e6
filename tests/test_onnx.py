"""Both neural encoders choose between ONNX Runtime and torch the same way."""

import sys
from pathlib import Path

import pytest

from common.encoders.efficientnet import EfficientNetLite0Encoder
from common.encoders.minilm import MiniLMEncoder
from common.encoders.onnx import OnnxUnavailable


@pytest.mark.parametrize(
    ("encoder", "what"),
    [(MiniLMEncoder, "texts"), (EfficientNetLite0Encoder, "images")],
    ids=["minilm", "efficientnet"],
)
def test_without_onnx_runtime_auto_falls_back_to_torch_and_onnx_refuses(
    encoder: type[MiniLMEncoder] | type[EfficientNetLite0Encoder],
    what: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    assert encoder(cache_dir=tmp_path).backend == "torch"
    assert f"encoding {what} with torch" in caplog.text
    with pytest.raises(OnnxUnavailable, match="pip install onnxruntime"):
        encoder(backend="onnx", cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
