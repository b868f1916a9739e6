"""On-screen text: RapidOCR (PP-OCR detection and recognition models inside its wheel).

The model files are named explicitly, from the installed package, so nothing is looked up
or downloaded at run time. Lines read with less confidence than ``MIN_CONFIDENCE`` are
left out (mostly textures read as letters).
"""

import threading
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from common.errors import MissingModel

PACKAGE = "rapidocr"
MODELS = {
    "Det.model_path": "PP-OCRv6_det_small.onnx",
    "Rec.model_path": "PP-OCRv6_rec_small.onnx",
    "Cls.model_path": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}
MIN_CONFIDENCE = 0.8


class ScreenText:
    """Reads the lines of text in pictures; safe to call from several threads."""

    def __init__(self, threads: int = 2) -> None:
        spec = find_spec(PACKAGE)
        if spec is None or spec.origin is None:
            raise MissingModel(f"on-screen text needs {PACKAGE!r}: pip install {PACKAGE}")
        folder = Path(spec.origin).parent / "models"
        missing = [name for name in MODELS.values() if not (folder / name).is_file()]
        if missing:
            raise MissingModel(
                f"the {PACKAGE} package lacks its models ({', '.join(missing)}); reinstall it: "
                f"pip install --force-reinstall {PACKAGE}"
            )
        from rapidocr import RapidOCR

        params: dict[str, Any] = {key: str(folder / name) for key, name in MODELS.items()}
        params |= {
            "Global.log_level": "error",  # not a warning per picture without text
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
        self._engine = RapidOCR(params=params)
        self._lock = threading.Lock()  # one picture at a time: each run uses every core

    def read(self, pictures: Sequence[Image.Image]) -> list[str]:
        """The text of each picture, its lines joined by newlines ("" when there is none)."""
        texts = []
        for picture in pictures:
            pixels = np.ascontiguousarray(np.asarray(picture.convert("RGB"))[:, :, ::-1])
            with self._lock:
                found: Any = self._engine(pixels)
            lines = zip(found.txts or (), found.scores or (), strict=True)
            texts.append(
                "\n".join(t.strip() for t, s in lines if s >= MIN_CONFIDENCE and t.strip())
            )
        return texts
