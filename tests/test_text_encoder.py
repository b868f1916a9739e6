"""The all-MiniLM-L6-v2 text encoder on ONNX Runtime, against the same model on torch."""

from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from common.encoders.minilm import MiniLMEncoder

TEXTS = [
    "",
    "why?",
    "How do I pick values for nlist and nprobe?",
    "Ünïcödé, accents and CASE are folded the way the model was trained",
    "向量数据库是什么",  # Chinese characters are split one by one
    "an emoji 🤖 and a tab\there",
    "a very long text " * 120,  # beyond the 256 tokens the model reads
]


def test_tokens_are_those_of_the_transformers_tokenizer(minilm: MiniLMEncoder) -> None:
    """tokenizer.json itself pads and cuts at 128 tokens: the encoder must read up to 256,
    padded to the longest text, exactly as the transformers tokenizer did before."""
    reference = AutoTokenizer.from_pretrained(minilm.path, local_files_only=True)
    expected = reference(TEXTS, padding=True, truncation=True, max_length=256, return_tensors="np")
    tokens = minilm.tokens(TEXTS)
    assert tokens["input_ids"].shape == (len(TEXTS), 256)
    np.testing.assert_array_equal(tokens["input_ids"], expected["input_ids"])
    np.testing.assert_array_equal(tokens["attention_mask"], expected["attention_mask"])


def test_onnx_and_torch_give_the_same_vectors(
    minilm: MiniLMEncoder, tmp_path_factory: pytest.TempPathFactory
) -> None:
    torch_minilm = MiniLMEncoder(backend="torch", cache_dir=tmp_path_factory.mktemp("unused"))
    assert (minilm.backend, torch_minilm.backend) == ("onnx", "torch")
    onnx_vectors, torch_vectors = minilm.encode(TEXTS), torch_minilm.encode(TEXTS)
    assert onnx_vectors.shape == (len(TEXTS), 384) and onnx_vectors.dtype == np.float32
    np.testing.assert_allclose(onnx_vectors, torch_vectors, atol=1e-5)
    # Alone, each text is padded to nothing: still the same vector.
    np.testing.assert_allclose(minilm.encode([TEXTS[2]])[0], torch_vectors[2], atol=1e-5)


def test_the_export_is_checked_made_once_and_reused(tmp_path: Path) -> None:
    first = MiniLMEncoder(cache_dir=tmp_path)
    path = first.onnx_path
    assert first.exported and path is not None and path.parent == tmp_path
    assert first.export_max_abs_diff is not None and first.export_max_abs_diff <= 1e-4
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left over
    mtime = path.stat().st_mtime_ns

    again = MiniLMEncoder(cache_dir=tmp_path)
    assert again.backend == "onnx" and not again.exported and again.onnx_path == path
    assert path.stat().st_mtime_ns == mtime
    np.testing.assert_allclose(again.encode(TEXTS), first.encode(TEXTS), atol=1e-6)

    path.write_bytes(b"not a model")  # a damaged cache is exported again, not fatal
    repaired = MiniLMEncoder(cache_dir=tmp_path)
    assert repaired.backend == "onnx" and repaired.exported
    np.testing.assert_allclose(repaired.encode(TEXTS), first.encode(TEXTS), atol=1e-6)
