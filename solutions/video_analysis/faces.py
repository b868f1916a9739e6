"""Faces: found with dlib's HOG detector, described by dlib's ResNet as 128 numbers.

The models are the files of the ``face_recognition_models`` package (found without importing
it: its ``__init__`` needs ``pkg_resources``); the detector is built into dlib. Landmarks are
the 5-point model (the 68-point one is trained on a data set that forbids commercial use).
Descriptors are scaled to unit length, so that Milvus compares them by cosine similarity.
dlib's own rule is "the same person below a Euclidean distance of 0.6"; its descriptors are
about 1.45 long, so that is a cosine similarity above about 0.91 (measured here: frames of
one man 0.94-1.0, him against another person 0.81-0.83).
"""

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

# The detector needs faces of about 80 px. Pictures are reduced to this shorter side at
# most; those under UPSAMPLE_BELOW are enlarged twice by the detector itself (faces down to
# about 40 px: a 640x360 frame, a phone clip), which on larger ones mostly finds false faces.
DETECT_SIDE = 540
UPSAMPLE_BELOW = 400
# A detection scoring under this share of the picture's best one is dropped: enlarged
# pictures give weak false faces (a badge, a helmet) beside the real one.
RELATIVE_SCORE = 0.4
# Cosine similarity from which two faces are taken for the same person.
SAME_PERSON = 0.91


class FaceModelsMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Face:
    """A face in a picture: its box (in the picture's pixels) and its unit descriptor."""

    left: int
    top: int
    width: int
    height: int
    vector: np.ndarray


def models_folder() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelsMissing(
            "the face models are not installed: pip install face-recognition-models"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class FaceReader:
    """Finds and describes faces; one picture at a time (dlib's models are not shared
    between threads), so callers on several threads take turns."""

    dim = 128

    def __init__(self) -> None:
        import dlib  # here, not at import time: loading dlib's models takes a second

        folder = models_folder()
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        self._describe = dlib.face_recognition_model_v1(
            str(folder / "dlib_face_recognition_resnet_model_v1.dat")
        )
        self._lock = threading.Lock()

    def find(self, picture: Image.Image) -> list[Face]:
        """Every face in the picture, largest first, boxes in the picture's own pixels."""
        scale = DETECT_SIDE / min(picture.size)
        upsample = 1 if min(picture.size) < UPSAMPLE_BELOW else 0
        shown = picture.convert("RGB")
        if scale < 1:
            size = (round(picture.width * scale), round(picture.height * scale))
            shown = shown.resize(size, Image.Resampling.BILINEAR)
        else:
            scale = 1.0
        pixels = np.asarray(shown)
        with self._lock:
            found, scores, _ = self._detector.run(pixels, upsample, 0.0)
            best = max(scores, default=0.0)
            boxes = [
                b for b, score in zip(found, scores, strict=True) if score >= RELATIVE_SCORE * best
            ]
            shapes = [self._landmarks(pixels, box) for box in boxes]
            vectors = [
                np.asarray(self._describe.compute_face_descriptor(pixels, shape))
                for shape in shapes
            ]
        faces = []
        for box, vector in zip(boxes, vectors, strict=True):
            left, top = max(0, box.left()), max(0, box.top())
            right, bottom = min(shown.width, box.right()), min(shown.height, box.bottom())
            faces.append(
                Face(
                    left=round(left / scale),
                    top=round(top / scale),
                    width=round((right - left) / scale),
                    height=round((bottom - top) / scale),
                    vector=(vector / np.linalg.norm(vector)).astype(np.float32),
                )
            )
        return sorted(faces, key=lambda f: -f.width * f.height)


def crop(picture: Image.Image, face: Face, side: int = 96) -> Image.Image:
    """The face with a margin around it, as a square thumbnail."""
    margin = face.width // 3
    box = (
        max(0, face.left - margin),
        max(0, face.top - margin),
        min(picture.width, face.left + face.width + margin),
        min(picture.height, face.top + face.height + margin),
    )
    square = picture.convert("RGB").crop(box)
    square.thumbnail((side, side), Image.Resampling.BICUBIC)
    return square
